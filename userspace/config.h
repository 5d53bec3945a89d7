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
 */
#ifndef NOVAMON_CONFIG_H
#define NOVAMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH "/etc/novamon/novamon.yaml"

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
 *   - probes: a list or a "kvm,block" string, not empty;
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
