/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config: the daemon's settings. Every option has a safe default, so
 * `novamon run` with no file works; /etc/novamon/novamon.yaml (or --config)
 * overrides them; command-line flags override the file.
 *
 * File format (YAML, every key optional):
 *
 *   listen: 127.0.0.1:9477
 *   state_dir: /var/lib/novamon
 *   log_level: info               # error | warn | info | debug
 *   series_expire_seconds: 600    # drop series idle this long (vanished VMs, devices)
 *   capture:
 *     enabled: true
 *     probes: [kvm, block, net, sched]
 *     ring_bytes: 8388608         # per CPU, a power of two >= 4096
 *     wakeup_bytes: 262144        # wake the reader when this much is unread
 *     poll_interval_ms: 10        # reader poll timeout (bounded latency)
 *     net_max_interfaces: 4096
 *     shard_entries: 16384        # per worker table, a power of two
 *     topology: ""                # inject NUMA layout "0:0-3;1:4-7" (tests); "" = libnuma
 *   kvm_debugfs: /sys/kernel/debug/kvm
 *   store:
 *     enabled: true               # the 1 s time-series store under state_dir/tsdb
 *     retention_raw_seconds: 86400
 *     retention_1m_seconds: 2592000
 *     retention_1h_seconds: 34560000
 *     retention_by_prefix:        # per metric-name prefix; the longest matching prefix wins,
 *       novamon_sched_:           # keys left out take the three values above
 *         raw_seconds: 3600
 *         m1_seconds: 604800
 *         h1_seconds: 0           # 0: no tier
 *     checkpoint_interval_seconds: 300
 *     key_file: ""                # AES-256-GCM at rest: 32 raw bytes or 64 hex chars
 *   analytics:
 *     enabled: true               # score every stored series each second (needs the store)
 *     max_series: 65536           # series scored at once; the rest wait for a free slot
 *     seasonal_period_seconds: 86400
 *     score_series: true          # also store novamon_anomaly_score{metric="...",...}
 *   remote_write:
 *     url: ""                     # ship every sample to a Prometheus-compatible backend
 *     authorization: ""           # Authorization header value, e.g. "Bearer ..."
 *     queue_bytes: 536870912      # on-disk queue under state_dir/remote-write
 *   otlp:                         # OTLP/HTTP export of traces, metrics and logs
 *     endpoint: ""                # base URL, e.g. http://collector:4318 (/v1/traces... appended)
 *     headers: {}                 # sent with every request, e.g. {Authorization: "Bearer ..."}
 *     gzip: true                  # Content-Encoding: gzip
 *     tls_skip_verify: false      # https: do not verify the server's certificate
 *     ca_file: ""                 # https: PEM bundle to verify the server with ("" = system's)
 *     queue_max_bytes: 134217728  # per signal, on disk under state_dir/otlp/<signal>
 *     batch_max_items: 512        # spans, log records or data points per request
 *     batch_max_delay_ms: 1000    # send a batch at most this long after its first item
 *   spans:                        # trace spans synthesized from kernel events
 *     enabled: true
 *     budget_per_second: 1000     # sampled spans/s; errors and slow spans are always kept
 *     slow_factor: 4              # slow = above this many times its baseline
 *     vm_period_seconds: 10       # one "vm activity" parent span per VM per period
 *     mask_personal_data: false   # mask user names and IPs in log records
 *   auth:                         # bearer tokens (JWT) on every route but /health
 *     mode: auto                  # auto | on | off; auto enforces when a key is set
 *                                 # or listen is not loopback (then, with no key, a
 *                                 # secret is made at state_dir/auth/hs256.secret)
 *     hs256_secret_file: ""       # HS256 secret, >= 32 bytes, not readable by others
 *     rs256_public_key_file: ""   # RS256: the token issuer's PEM public key(s)
 *     issuer: ""                  # require this "iss" ("" = not checked)
 *     audience: ""                # require this "aud" ("" = not checked)
 *     public_metrics: true        # GET /metrics without a token (plain Prometheus scrape)
 *   tls:                          # HTTPS and WSS on the listen port when both are set
 *     cert_file: ""               # PEM certificate (chain)
 *     key_file: ""                # PEM private key
 *   dashboards:
 *     store: ""                   # "" = sqlite:<state_dir>/dashboards.db; "sqlite:PATH"
 *                                 # or a libpq URI "postgresql://user@host/db"
 */
#ifndef NOVAMON_CONFIG_H
#define NOVAMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH "/etc/novamon/novamon.yaml"
#define CONFIG_OTLP_MAX_HEADERS 16
#define CONFIG_OTLP_HEADER_LEN 512 /* "Name: value" with its NUL */

/* auth.mode */
enum config_auth_mode {
	CONFIG_AUTH_AUTO,
	CONFIG_AUTH_ON,
	CONFIG_AUTH_OFF,
};

enum config_probe {
	CONFIG_PROBE_KVM = 1 << 0,
	CONFIG_PROBE_BLOCK = 1 << 1,
	CONFIG_PROBE_NET = 1 << 2,
	CONFIG_PROBE_SCHED = 1 << 3,
	CONFIG_PROBE_ALL = 0xf,
};

#define CONFIG_MAX_RETENTION 32
#define CONFIG_RETENTION_INHERIT UINT64_MAX /* take the store's global value */

/* One store.retention_by_prefix entry. */
struct config_retention {
	char prefix[128];
	uint64_t raw_seconds;
	uint64_t m1_seconds;
	uint64_t h1_seconds;
};

struct config {
	char listen[128];
	char state_dir[256];
	int log_level; /* enum log_level */
	uint32_t series_expire_seconds;
	bool capture_enabled;
	uint32_t probes; /* enum config_probe bits */
	uint64_t ring_bytes;
	uint64_t wakeup_bytes;
	uint32_t poll_interval_ms;
	uint32_t net_max_interfaces;
	uint32_t shard_entries;
	char topology[256];
	char kvm_debugfs[256];
	bool store_enabled;
	uint64_t retention_raw_seconds;
	uint64_t retention_1m_seconds;
	uint64_t retention_1h_seconds;
	struct config_retention retention[CONFIG_MAX_RETENTION];
	uint32_t nretention;
	uint32_t checkpoint_interval_seconds;
	char key_file[256];
	bool analytics_enabled;
	uint32_t analytics_max_series;
	uint32_t analytics_seasonal_period_seconds;
	bool analytics_score_series;
	char remote_write_url[512];
	char remote_write_authorization[512];
	uint64_t remote_write_queue_bytes;
	/* otlp: */
	char otlp_endpoint[512];
	char otlp_headers[CONFIG_OTLP_MAX_HEADERS][CONFIG_OTLP_HEADER_LEN]; /* "Name: value" */
	uint32_t otlp_nheaders;
	bool otlp_gzip;
	bool otlp_tls_skip_verify;
	char otlp_ca_file[256];
	uint64_t otlp_queue_max_bytes;
	uint32_t otlp_batch_max_items;
	uint32_t otlp_batch_max_delay_ms;
	/* spans: */
	bool spans_enabled;
	uint32_t spans_budget_per_second;
	uint32_t spans_slow_factor;
	uint32_t spans_vm_period_seconds;
	uint32_t spans_max_exemplars; /* the exemplar store's ring (query_exemplars) */
	bool spans_mask_personal_data;
	/* auth: */
	int auth_mode; /* enum config_auth_mode */
	char auth_hs256_secret_file[256];
	char auth_rs256_public_key_file[256];
	char auth_issuer[256];
	char auth_audience[256];
	bool auth_public_metrics;
	/* tls: */
	char tls_cert_file[256];
	char tls_key_file[256];
	/* dashboards: */
	char dashboards_store[512]; /* "" = sqlite:<state_dir>/dashboards.db */
};

/* Fill cfg with the defaults above. */
void config_defaults(struct config *cfg);

/*
 * Read the YAML file at path over cfg (keys absent from the file keep their
 * value). When must_exist is false a missing file (ENOENT) is not an error.
 * Returns 0, or a negative errno with a human message in err (errlen bytes),
 * e.g. "novamon.yaml:7: capture.ring_bytes: 1000 is not a power of two >= 4096".
 * Unknown keys are errors (a typo must not silently fall back to a default).
 *
 * All or nothing: on error cfg is unchanged. err may be NULL. Errors:
 * -EINVAL for a YAML syntax error ("path:line:column: YAML syntax error: ...")
 * or a bad value ("path:line: key: ..."), the file's own errno when it cannot
 * be opened (-EISDIR for a directory), -EIO/-ENOMEM from the reader.
 * Rules beyond the comment at the top of this file:
 *   - an empty file, or "capture:" with no children, changes nothing;
 *   - a key given twice, a second YAML document and a null value are errors;
 *   - integers are unquoted decimal or 0x-hex ("4096" in quotes is a string);
 *     booleans are unquoted true/false (also yes/no, on/off);
 *   - listen, state_dir and kvm_debugfs must be non-empty and fit their buffer;
 *   - series_expire_seconds >= 1; net_max_interfaces in [1, 1048576];
 *     ring_bytes a power of two in [4096, 1 GiB]; wakeup_bytes < ring_bytes;
 *     poll_interval_ms in [1, 1000]; shard_entries a power of two in
 *     [1024, 16777216];
 *   - spans.budget_per_second in [1, 10000000]; spans.slow_factor in
 *     [1, 1000]; spans.vm_period_seconds in [1, 3600];
 *   - otlp.endpoint is "" (no export) or an http:// or https:// URL;
 *     otlp.headers is a mapping of at most CONFIG_OTLP_MAX_HEADERS HTTP
 *     field names (not Content-Type, Content-Encoding or Content-Length,
 *     which novamon sets; no duplicates in any case) to non-empty values
 *     without control characters; otlp.queue_max_bytes in [1 MiB, 1 TiB];
 *     otlp.batch_max_items in [1, 100000]; otlp.batch_max_delay_ms in
 *     [1, 600000];
 *   - dashboards.store is "", "sqlite:PATH" (PATH not empty) or a
 *     postgresql:// or postgres:// URI;
 *   - probes: a list or a "kvm,block" string, not empty;
 *   - auth.mode is auto, on or off; tls.cert_file and tls.key_file are
 *     checked when the server starts (both or neither);
 *   - topology must be "" or parse with topology__parse().
 */
int config_load(struct config *cfg, const char *path, bool must_exist, char *err, size_t errlen);

/*
 * Parse a probe list "kvm,block" into enum config_probe bits (blanks around
 * names are fine; names are lower case). Returns 0, or -EINVAL on an unknown
 * or empty name (so "" and "kvm," are errors); *probes is untouched then.
 */
int config_parse_probes(const char *list, uint32_t *probes);

#endif /* NOVAMON_CONFIG_H */
