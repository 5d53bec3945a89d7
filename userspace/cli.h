/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli: the `novamon` subcommands. Each takes the arguments after "novamon",
 * so argv[0] is the subcommand's name ("run", "top", ...), parses its own
 * options (getopt state is reset on entry), and returns the process exit
 * status.
 */
#ifndef NOVAMON_CLI_H
#define NOVAMON_CLI_H

#include <stddef.h>
#include <stdio.h>

/* `novamon run`: the daemon. */
int cli_run(int argc, char **argv);

/*
 * `novamon top`: a live terminal view of a running daemon, like kvm_stat.
 * Fetches http://HOST:PORT/metrics every interval, computes per-second rates
 * and shows the busiest vCPUs, block devices and interfaces. Returns 0, or 1
 * when the daemon cannot be reached or answers badly, 2 on bad usage.
 */
int cli_top(int argc, char **argv);

/*
 * `novamon query 'EXPR'`: a PromQL query against a running daemon's
 * Prometheus API, printed as a table or (--json) the raw answer. Returns 0,
 * 1 when the daemon cannot be reached or rejects the query, 2 on bad usage.
 */
int cli_query(int argc, char **argv);

/*
 * `novamon detect --input IN.csv --output OUT.csv [--detector NAME]`:
 * offline anomaly scoring of a timestamp,value CSV (cli_detect.c). Returns
 * 0, 1 on bad input or an I/O error (no output file left), 2 on bad usage.
 */
int cli_detect(int argc, char **argv);

/*
 * `novamon token create --role ROLE [--tenant T] [--subject S] [--ttl SECONDS]
 * [--secret-file F | --config F]`: print an HS256 bearer token for the API
 * (cli_token.c). Returns 0, 1 when the secret cannot be read, 2 on bad usage.
 */
int cli_token(int argc, char **argv);

/*
 * novamon top internals, exposed for the unit tests (tests/unit/
 * test_cli_top.c) and not meant for other callers.
 */

/* Where to fetch the metrics from. */
struct cli_top_target {
	char host[256];
	char port[8];
	char path[256];
	char display[272]; /* "host:port" or "[v6]:port", for messages */
};

/*
 * Parse "http://HOST[:PORT][/PATH]", "HOST:PORT", "[V6]:PORT" or ":PORT"
 * (host 127.0.0.1). The port defaults to 9477 without a scheme and 80 with
 * "http://"; the path defaults to /metrics. Returns 0, or -EINVAL (also for
 * https, which is not supported).
 */
int cli_top_target__parse(struct cli_top_target *t, const char *s);

/*
 * Decode an HTTP/1.1 response held in buf[0..len). eof says the peer has
 * closed. On success returns 0 with *status and a malloc'd, NUL-terminated
 * *body of *body_len bytes (Content-Length, chunked, or up to EOF).
 * Returns -EAGAIN when more data is needed (only when !eof), -EPROTO for a
 * malformed or truncated response, or -ENOMEM.
 */
int cli_top_http_decode(const char *buf, size_t len, int eof, int *status, char **body,
			size_t *body_len);

/* The counters of one /metrics fetch that the view uses. */
struct cli_top_snapshot;

/*
 * Pick the counters novamon top uses out of exposition text. t_sec is the
 * time of the fetch; when samples carry timestamps the newest one is used
 * instead. Malformed lines are skipped. Returns the snapshot, or NULL with
 * errno set (ENOMEM).
 */
struct cli_top_snapshot *cli_top_snapshot__parse(const char *text, size_t len, double t_sec);
/* Free a snapshot; NULL is fine. Returns NULL. */
struct cli_top_snapshot *cli_top_snapshot__free(struct cli_top_snapshot *s);

/* One vCPU (or VM-level series with no vcpu label: vcpu ""), rates per second. */
struct cli_top_vcpu_row {
	char vm[128];
	char vcpu[16];
	double exits;
	double pio;
	double mmio;
	double emulated;
	double run_delay_ms; /* ms of run-queue delay per second */
};

struct cli_top_dev_row {
	char device[64];
	double iops;
	double mbps; /* 10^6 bytes per second */
	double lat_ms; /* mean request latency over the interval */
	int has_lat; /* 0 when no request completed in the interval */
};

struct cli_top_if_row {
	char iface[64];
	double rx_pps;
	double tx_pps;
	double rx_mbps;
	double tx_mbps;
};

/* What one refresh shows: rates between two snapshots, rows sorted busiest first. */
struct cli_top_view {
	double interval; /* seconds between the snapshots */
	double events; /* events/s */
	double lost; /* lost events/s */
	struct cli_top_vcpu_row *vcpus;
	size_t nvcpus;
	struct cli_top_dev_row *devs;
	size_t ndevs;
	struct cli_top_if_row *ifs;
	size_t nifs;
};

/*
 * Compute the view from prev to cur: per-series deltas (a counter that went
 * down was reset and counts from 0; a series not in prev contributes
 * nothing yet) summed per row and divided by the time between them. Rows
 * exist for everything in cur. Returns 0, -EAGAIN when cur is no newer than
 * prev (the daemon has not published since), or -ENOMEM. Release with
 * cli_top_view__release() after success and failure alike.
 */
int cli_top_view__build(struct cli_top_view *v, const struct cli_top_snapshot *prev,
			const struct cli_top_snapshot *cur);
void cli_top_view__release(struct cli_top_view *v);

/*
 * Print the view as text tables under the title line. max_vcpus and
 * max_rows cap the vCPU table and the device and interface tables (0: no
 * cap); what is cut is summarised in one "... N more" line.
 */
void cli_top_view__render(const struct cli_top_view *v, FILE *f, const char *title,
			  size_t max_vcpus, size_t max_rows);

#endif /* NOVAMON_CLI_H */
