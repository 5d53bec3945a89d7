/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics.h"
#include "store_sink.h"
#include "tsdb/tsdb.h"

static int sink_sample(void *ctx, const struct tsdb_label *labels, size_t nlabels, int64_t t_ms,
		       double v)
{
	return tsdb__append(ctx, labels, nlabels, t_ms, v);
}

static int sink_flush(void *ctx, int64_t now_ms)
{
	int err = tsdb__commit(ctx);

	tsdb__maintain(ctx, now_ms);
	return err;
}

static int sink_describe(void *ctx, struct metric_set *set)
{
	struct tsdb_stats st;

	tsdb__stats(ctx, &st);
	metric_set__add_value(set, "novamon_tsdb_series", "Series held by the local store.",
			      METRIC_GAUGE, NULL, st.series);
	metric_set__add_value(set, "novamon_tsdb_samples", "Raw samples held by the local store.",
			      METRIC_GAUGE, NULL, st.samples);
	metric_set__add_value(set, "novamon_tsdb_chunk_bytes",
			      "Compressed bytes of the raw samples held.", METRIC_GAUGE, NULL,
			      st.chunk_bytes);
	metric_set__add_value(set, "novamon_tsdb_appended_samples_total",
			      "Samples appended to the local store.", METRIC_COUNTER, NULL,
			      st.appended_total);
	metric_set__add_value(set, "novamon_tsdb_out_of_order_samples_total",
			      "Samples refused for being older than their series' last one.",
			      METRIC_COUNTER, NULL, st.out_of_order_total);
	metric_set__add_value(set, "novamon_tsdb_wal_bytes",
			      "Write-ahead log bytes since the last checkpoint.", METRIC_GAUGE,
			      NULL, st.wal_bytes);
	metric_set__add_value(set, "novamon_tsdb_wal_corruptions_total",
			      "Corrupted write-ahead log records skipped at start-up.",
			      METRIC_COUNTER, NULL, st.wal_corruptions_total);
	metric_set__add_value(set, "novamon_tsdb_checkpoints_total", "Checkpoints written.",
			      METRIC_COUNTER, NULL, st.checkpoints_total);
	metric_set__add_value(set, "novamon_tsdb_memory_bytes",
			      "Approximate memory held by the local store.", METRIC_GAUGE, NULL,
			      st.memory_bytes);
	return 0;
}

struct tick_sink store_sink(struct tsdb *db)
{
	return (struct tick_sink){
		.name = "store",
		.sample = sink_sample,
		.flush = sink_flush,
		.describe = sink_describe,
		.ctx = db,
	};
}
