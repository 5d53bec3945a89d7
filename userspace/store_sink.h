/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_sink: the tick's samples into the local store (tsdb), committed once
 * per tick, with the store's housekeeping and its own metrics.
 */
#ifndef NOVAMON_STORE_SINK_H
#define NOVAMON_STORE_SINK_H

#include "tick.h"

struct tsdb;

/* A tick sink writing into db (which must outlive the tick). */
struct tick_sink store_sink(struct tsdb *db);

#endif /* NOVAMON_STORE_SINK_H */
