/* SPDX-License-Identifier: Apache-2.0 */
/*
 * span_file: finished spans and log records as JSON lines in a file, for
 * operators without an OTLP backend and for tests (`novamon run
 * --spans-file PATH`). One object per line:
 *
 *   {"type":"span","trace_id":"<32 hex>","span_id":"<16 hex>",
 *    "parent_span_id":"<16 hex>" or "","name":"block read","kind":1,
 *    "start_ns":N,"end_ns":N,"status":0,"status_message":"",
 *    "attributes":{"system.device":"loop3","novamon.block.bytes":4096,...}}
 *   {"type":"log","time_ns":N,"severity":9,"trace_id":"..." or "",
 *    "span_id":"..." or "","body":"...","attributes":{...}}
 *
 * Used from the synthesizer's thread only (its sink); writes are buffered
 * and flushed once per synthesizer round.
 */
#ifndef NOVAMON_SPAN_FILE_H
#define NOVAMON_SPAN_FILE_H

#include <stdio.h>

#include "span.h"
#include "spans.h"

struct span_file;

/* Open path for appending ("-" is stdout). Returns NULL with errno set. */
struct span_file *span_file__open(const char *path);
/* Flush and close; NULL is fine. Returns NULL. */
struct span_file *span_file__close(struct span_file *f);

/* Write one record. Returns 0 or a negative errno. */
int span_file__write_span(struct span_file *f, const struct span *s);
int span_file__write_log(struct span_file *f, const struct log_record *r);
/* Flush buffered lines to the file. Returns 0 or a negative errno. */
int span_file__flush(struct span_file *f);

/* A synthesizer sink (spans.h) writing into f, flushed after each round. */
struct spans_sink span_file__sink(struct span_file *f);

/* Append s as a JSON string (quotes included) to out; exposed for tests. */
void span_file_json_string(FILE *out, const char *s);

#endif /* NOVAMON_SPAN_FILE_H */
