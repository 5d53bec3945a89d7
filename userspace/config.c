/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config: defaults, the YAML file, validation. See config.h for the format
 * and the contracts.
 *
 * The file is loaded with libyaml's document API and walked against two key
 * tables (top level and capture:). Each key says its type and range, so a
 * new option is one table line. Values land in a copy of the caller's config
 * that is copied back only when the whole file is valid: a bad file never
 * leaves a half-applied configuration behind.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "config.h"
#include "log.h"
#include "topology.h"

#define CONFIG_RING_MIN 4096ULL
#define CONFIG_RING_MAX (1ULL << 30)
#define CONFIG_SHARD_MIN 1024ULL
#define CONFIG_SHARD_MAX (1ULL << 24)
#define CONFIG_NET_IF_MAX (1ULL << 20)
#define CONFIG_SHOW_MAX 64 /* bytes of a bad value quoted back in a message */

enum config_kind {
	CONFIG_KIND_STR,
	CONFIG_KIND_U32,
	CONFIG_KIND_U64,
	CONFIG_KIND_BOOL,
	CONFIG_KIND_LOG_LEVEL,
	CONFIG_KIND_PROBES,
	CONFIG_KIND_RETENTION,
	CONFIG_KIND_MAP,
	CONFIG_KIND_HEADERS, /* otlp.headers: a mapping of HTTP field names to values */
	CONFIG_KIND_AUTH_MODE,
};

struct config_key {
	const char *name;
	enum config_kind kind;
	size_t off; /* offset of the field in struct config */
	size_t size; /* CONFIG_KIND_STR: size of the buffer */
	bool allow_empty; /* CONFIG_KIND_STR */
	bool pow2; /* integers: must be a power of two */
	uint64_t min, max; /* integers, inclusive */
	const struct config_key *children; /* CONFIG_KIND_MAP */
};

#define CONFIG_STR(n, f, empty)                                                        \
	{                                                                              \
		.name = n, .kind = CONFIG_KIND_STR, .off = offsetof(struct config, f), \
		.size = sizeof(((struct config *)0)->f), .allow_empty = empty          \
	}
#define CONFIG_INT(n, k, f, lo, hi, p2)                                                        \
	{                                                                                      \
		.name = n, .kind = k, .off = offsetof(struct config, f), .min = lo, .max = hi, \
		.pow2 = p2                                                                     \
	}

static const struct config_key config_capture_keys[] = {
	{ .name = "enabled",
	  .kind = CONFIG_KIND_BOOL,
	  .off = offsetof(struct config, capture_enabled) },
	{ .name = "probes", .kind = CONFIG_KIND_PROBES, .off = offsetof(struct config, probes) },
	CONFIG_INT("ring_bytes", CONFIG_KIND_U64, ring_bytes, CONFIG_RING_MIN, CONFIG_RING_MAX,
		   true),
	/* < ring_bytes, checked once both are known */
	CONFIG_INT("wakeup_bytes", CONFIG_KIND_U64, wakeup_bytes, 0, CONFIG_RING_MAX, false),
	CONFIG_INT("poll_interval_ms", CONFIG_KIND_U32, poll_interval_ms, 1, 1000, false),
	CONFIG_INT("net_max_interfaces", CONFIG_KIND_U32, net_max_interfaces, 1, CONFIG_NET_IF_MAX,
		   false),
	CONFIG_INT("shard_entries", CONFIG_KIND_U32, shard_entries, CONFIG_SHARD_MIN,
		   CONFIG_SHARD_MAX, true),
	CONFIG_STR("topology", topology, true),
	{ .name = NULL },
};

#define CONFIG_YEAR_S (366ull * 86400)

static const struct config_key config_store_keys[] = {
	{ .name = "enabled", .kind = CONFIG_KIND_BOOL, .off = offsetof(struct config, store_enabled) },
	CONFIG_INT("retention_raw_seconds", CONFIG_KIND_U64, retention_raw_seconds, 60,
		   10 * CONFIG_YEAR_S, false),
	CONFIG_INT("retention_1m_seconds", CONFIG_KIND_U64, retention_1m_seconds, 0,
		   10 * CONFIG_YEAR_S, false),
	CONFIG_INT("retention_1h_seconds", CONFIG_KIND_U64, retention_1h_seconds, 0,
		   10 * CONFIG_YEAR_S, false),
	{ .name = "retention_by_prefix", .kind = CONFIG_KIND_RETENTION },
	CONFIG_INT("checkpoint_interval_seconds", CONFIG_KIND_U32, checkpoint_interval_seconds, 10,
		   86400, false),
	CONFIG_STR("key_file", key_file, true),
	{ .name = NULL },
};

static const struct config_key config_analytics_keys[] = {
	{ .name = "enabled",
	  .kind = CONFIG_KIND_BOOL,
	  .off = offsetof(struct config, analytics_enabled) },
	CONFIG_INT("max_series", CONFIG_KIND_U32, analytics_max_series, 1, 1u << 24, false),
	CONFIG_INT("seasonal_period_seconds", CONFIG_KIND_U32, analytics_seasonal_period_seconds,
		   2, 7 * 86400, false),
	{ .name = "score_series",
	  .kind = CONFIG_KIND_BOOL,
	  .off = offsetof(struct config, analytics_score_series) },
	{ .name = NULL },
};

static const struct config_key config_remote_write_keys[] = {
	CONFIG_STR("url", remote_write_url, true),
	CONFIG_STR("authorization", remote_write_authorization, true),
	CONFIG_INT("queue_bytes", CONFIG_KIND_U64, remote_write_queue_bytes, 1ull << 20,
		   1ull << 40, false),
	{ .name = NULL },
};

static const struct config_key config_spans_keys[] = {
	{ .name = "enabled", .kind = CONFIG_KIND_BOOL, .off = offsetof(struct config, spans_enabled) },
	CONFIG_INT("budget_per_second", CONFIG_KIND_U32, spans_budget_per_second, 1, 10000000,
		   false),
	CONFIG_INT("slow_factor", CONFIG_KIND_U32, spans_slow_factor, 1, 1000, false),
	CONFIG_INT("vm_period_seconds", CONFIG_KIND_U32, spans_vm_period_seconds, 1, 3600, false),
	CONFIG_INT("max_exemplars", CONFIG_KIND_U32, spans_max_exemplars, 1, 10000000, false),
	{ .name = "mask_personal_data",
	  .kind = CONFIG_KIND_BOOL,
	  .off = offsetof(struct config, spans_mask_personal_data) },
	{ .name = NULL },
};

static const struct config_key config_otlp_keys[] = {
	CONFIG_STR("endpoint", otlp_endpoint, true),
	{ .name = "headers", .kind = CONFIG_KIND_HEADERS },
	{ .name = "gzip", .kind = CONFIG_KIND_BOOL, .off = offsetof(struct config, otlp_gzip) },
	{ .name = "tls_skip_verify",
	  .kind = CONFIG_KIND_BOOL,
	  .off = offsetof(struct config, otlp_tls_skip_verify) },
	CONFIG_STR("ca_file", otlp_ca_file, true),
	CONFIG_INT("queue_max_bytes", CONFIG_KIND_U64, otlp_queue_max_bytes, 1ull << 20, 1ull << 40,
		   false),
	CONFIG_INT("batch_max_items", CONFIG_KIND_U32, otlp_batch_max_items, 1, 100000, false),
	CONFIG_INT("batch_max_delay_ms", CONFIG_KIND_U32, otlp_batch_max_delay_ms, 1, 600000,
		   false),
	{ .name = NULL },
};

static const struct config_key config_dashboards_keys[] = {
	CONFIG_STR("store", dashboards_store, true),
	{ .name = NULL },
};

static const struct config_key config_auth_keys[] = {
	{ .name = "mode", .kind = CONFIG_KIND_AUTH_MODE, .off = offsetof(struct config, auth_mode) },
	CONFIG_STR("hs256_secret_file", auth_hs256_secret_file, true),
	CONFIG_STR("rs256_public_key_file", auth_rs256_public_key_file, true),
	CONFIG_STR("issuer", auth_issuer, true),
	CONFIG_STR("audience", auth_audience, true),
	{ .name = "public_metrics",
	  .kind = CONFIG_KIND_BOOL,
	  .off = offsetof(struct config, auth_public_metrics) },
	{ .name = NULL },
};

static const struct config_key config_tls_keys[] = {
	CONFIG_STR("cert_file", tls_cert_file, true),
	CONFIG_STR("key_file", tls_key_file, true),
	{ .name = NULL },
};

static const struct config_key config_root_keys[] = {
	CONFIG_STR("listen", listen, false),
	CONFIG_STR("state_dir", state_dir, false),
	{ .name = "log_level",
	  .kind = CONFIG_KIND_LOG_LEVEL,
	  .off = offsetof(struct config, log_level) },
	CONFIG_INT("series_expire_seconds", CONFIG_KIND_U32, series_expire_seconds, 1, UINT32_MAX,
		   false),
	{ .name = "capture", .kind = CONFIG_KIND_MAP, .children = config_capture_keys },
	CONFIG_STR("kvm_debugfs", kvm_debugfs, false),
	{ .name = "store", .kind = CONFIG_KIND_MAP, .children = config_store_keys },
	{ .name = "analytics", .kind = CONFIG_KIND_MAP, .children = config_analytics_keys },
	{ .name = "remote_write", .kind = CONFIG_KIND_MAP, .children = config_remote_write_keys },
	{ .name = "otlp", .kind = CONFIG_KIND_MAP, .children = config_otlp_keys },
	{ .name = "spans", .kind = CONFIG_KIND_MAP, .children = config_spans_keys },
	{ .name = "auth", .kind = CONFIG_KIND_MAP, .children = config_auth_keys },
	{ .name = "tls", .kind = CONFIG_KIND_MAP, .children = config_tls_keys },
	{ .name = "dashboards", .kind = CONFIG_KIND_MAP, .children = config_dashboards_keys },
	{ .name = NULL },
};

/* Index i names bit 1 << i of enum config_probe. */
static const char *const config_probe_names[] = {
	"kvm",
	"block",
	"net",
	"sched",
};
_Static_assert((1U << (sizeof(config_probe_names) / sizeof(config_probe_names[0]))) - 1 ==
		       CONFIG_PROBE_ALL,
	       "config_probe_names must name every enum config_probe bit");

static const char *const config_level_names[] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

/* One load: where messages go, and what has been read so far. */
struct config_loader {
	const char *path;
	char *err;
	size_t errlen;
	yaml_document_t *doc;
	struct config cfg; /* the caller's config with the file applied */
	bool have_ring, have_wakeup;
	yaml_mark_t ring_mark, wakeup_mark;
};

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen, sizeof(cfg->listen), "%s", "127.0.0.1:9477");
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", "/var/lib/novamon");
	cfg->log_level = LOG_LVL_INFO;
	cfg->series_expire_seconds = 600;
	cfg->capture_enabled = true;
	cfg->probes = CONFIG_PROBE_ALL;
	cfg->ring_bytes = 8ULL << 20;
	cfg->wakeup_bytes = 256ULL << 10;
	cfg->poll_interval_ms = 10;
	cfg->net_max_interfaces = 4096;
	cfg->shard_entries = 16384;
	cfg->topology[0] = '\0';
	snprintf(cfg->kvm_debugfs, sizeof(cfg->kvm_debugfs), "%s", "/sys/kernel/debug/kvm");
	cfg->store_enabled = true;
	cfg->retention_raw_seconds = 86400;
	cfg->retention_1m_seconds = 30 * 86400;
	cfg->retention_1h_seconds = 400 * 86400;
	cfg->checkpoint_interval_seconds = 300;
	cfg->analytics_enabled = true;
	cfg->analytics_max_series = 65536;
	cfg->analytics_seasonal_period_seconds = 86400;
	cfg->analytics_score_series = true;
	cfg->remote_write_queue_bytes = 512ull << 20;
	cfg->otlp_gzip = true;
	cfg->otlp_queue_max_bytes = 128ull << 20;
	cfg->otlp_batch_max_items = 512;
	cfg->otlp_batch_max_delay_ms = 1000;
	cfg->spans_enabled = true;
	cfg->spans_budget_per_second = 1000;
	cfg->spans_slow_factor = 4;
	cfg->spans_vm_period_seconds = 10;
	cfg->spans_max_exemplars = 100000; /* EXEMPLARS_DEFAULT_MAX, Prometheus' default */
	cfg->spans_mask_personal_data = false;
	cfg->auth_mode = CONFIG_AUTH_AUTO;
	cfg->auth_public_metrics = true;
}

/* The bit of one probe name (len bytes, not NUL-terminated), or 0 when unknown. */
static uint32_t config_probe_bit(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(config_probe_names) / sizeof(config_probe_names[0]); i++)
		if (strlen(config_probe_names[i]) == len &&
		    !memcmp(config_probe_names[i], name, len))
			return 1U << i;
	return 0;
}

/*
 * Walk a comma-separated list, blanks around names allowed. On an unknown
 * or empty name, -EINVAL with *bad and *badlen pointing at it.
 */
static int config_probe_list(const char *list, uint32_t *probes, const char **bad, size_t *badlen)
{
	const char *p = list;
	uint32_t bits = 0;

	for (;;) {
		const char *start, *end;
		uint32_t bit;

		while (*p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		bit = config_probe_bit(start, end - start);
		if (!bit) {
			*bad = start;
			*badlen = end - start;
			return -EINVAL;
		}
		bits |= bit;
		if (!*p)
			break;
		p++; /* a trailing ',' leaves an empty name: rejected above */
	}
	*probes = bits;
	return 0;
}

int config_parse_probes(const char *list, uint32_t *probes)
{
	const char *bad;
	size_t badlen;

	if (!list || !probes)
		return -EINVAL;
	return config_probe_list(list, probes, &bad, &badlen);
}

/*
 * Write "path:line: key: message" to the caller's buffer. line is 1-based
 * from the yaml mark; key may be NULL. Always returns -EINVAL so call sites
 * read `return config_fail(...)`.
 */
static __attribute__((format(printf, 4, 5))) int
config_fail(struct config_loader *l, const yaml_mark_t *mark, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!l->err || !l->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(l->err, l->errlen, "%s:%zu: %s%s%s", l->path, mark->line + 1, key ? key : "",
		 key ? ": " : "", msg);
	return -EINVAL;
}

/*
 * Copy a scalar into out for quoting in a message: at most CONFIG_SHOW_MAX
 * bytes, control bytes replaced by '?', "..." when cut.
 */
static const char *config_show(const yaml_node_t *n, char *out, size_t size)
{
	size_t i, o = 0, len = n->data.scalar.length;
	const unsigned char *v = n->data.scalar.value;

	for (i = 0; i < len && i < CONFIG_SHOW_MAX && o + 4 < size; i++)
		out[o++] = (v[i] < 0x20 || v[i] == 0x7f) ? '?' : (char)v[i];
	if (i < len && o + 4 <= size) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static bool config_is_null(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !strcmp(v, "") || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

static const char *config_node_type(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return config_is_null(n) ? "nothing" : "a string";
	}
}

/* Parse a plain, unsigned decimal or 0x-hex integer scalar. Returns 0 or -EINVAL. */
static int config_parse_u64(const yaml_node_t *n, uint64_t *out)
{
	const char *v = (const char *)n->data.scalar.value;
	unsigned long long x;
	char *end;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return -EINVAL; /* "4096" in quotes is a string */
	if (v[0] < '0' || v[0] > '9')
		return -EINVAL; /* strtoull would take blanks, '+' and '-' */
	errno = 0;
	x = strtoull(v, &end, (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) ? 16 : 10);
	if (errno || end == v || *end || (size_t)(end - v) != n->data.scalar.length)
		return -EINVAL;
	*out = x;
	return 0;
}

static int config_parse_bool(const yaml_node_t *n, bool *out)
{
	static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes",
					   "YES",  "on",   "On",   "ON" };
	static const char *const no[] = { "false", "False", "FALSE", "no", "No",
					  "NO",	   "off",   "Off",   "OFF" };
	const char *v = (const char *)n->data.scalar.value;
	size_t i;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return -EINVAL;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int config_set_int(struct config_loader *l, const struct config_key *k, const char *key,
			  const yaml_node_t *n)
{
	char *field = (char *)&l->cfg + k->off;
	char show[CONFIG_SHOW_MAX + 4];
	uint64_t v;

	if (config_parse_u64(n, &v))
		return config_fail(l, &n->start_mark, key,
				   "expected a non-negative integer, got \"%s\"",
				   config_show(n, show, sizeof(show)));
	if (k->pow2 && (v < k->min || (v & (v - 1))))
		return config_fail(l, &n->start_mark, key, "%llu is not a power of two >= %llu",
				   (unsigned long long)v, (unsigned long long)k->min);
	if (k->pow2 && v > k->max)
		return config_fail(l, &n->start_mark, key, "%llu is larger than %llu",
				   (unsigned long long)v, (unsigned long long)k->max);
	if (v < k->min || v > k->max)
		return config_fail(l, &n->start_mark, key, "%llu is outside [%llu, %llu]",
				   (unsigned long long)v, (unsigned long long)k->min,
				   (unsigned long long)k->max);

	if (k->kind == CONFIG_KIND_U32) {
		uint32_t v32 = (uint32_t)v; /* max <= UINT32_MAX in the table */

		memcpy(field, &v32, sizeof(v32));
	} else {
		memcpy(field, &v, sizeof(v));
	}
	if (k->off == offsetof(struct config, ring_bytes)) {
		l->have_ring = true;
		l->ring_mark = n->start_mark;
	} else if (k->off == offsetof(struct config, wakeup_bytes)) {
		l->have_wakeup = true;
		l->wakeup_mark = n->start_mark;
	}
	return 0;
}

static int config_set_str(struct config_loader *l, const struct config_key *k, const char *key,
			  const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	char *field = (char *)&l->cfg + k->off;
	char show[CONFIG_SHOW_MAX + 4];

	if (strlen(v) != len)
		return config_fail(l, &n->start_mark, key, "contains a NUL byte");
	if (len >= k->size)
		return config_fail(l, &n->start_mark, key, "is %zu bytes long, the limit is %zu",
				   len, k->size - 1);
	if (!len && !k->allow_empty)
		return config_fail(l, &n->start_mark, key, "must not be empty");
	if (k->off == offsetof(struct config, topology) && len) {
		struct topology *t = topology__parse(v);

		if (!t)
			return config_fail(l, &n->start_mark, key,
					   "\"%s\" is not a NODE:CPULIST[;NODE:CPULIST...] layout",
					   config_show(n, show, sizeof(show)));
		topology__free(t);
	}
	if (k->off == offsetof(struct config, otlp_endpoint) && len &&
	    !(len > 7 && !strncmp(v, "http://", 7)) && !(len > 8 && !strncmp(v, "https://", 8)))
		return config_fail(l, &n->start_mark, key,
				   "\"%s\" is not an http:// or https:// URL",
				   config_show(n, show, sizeof(show)));
	if (k->off == offsetof(struct config, dashboards_store) && len &&
	    !(len > 7 && !strncmp(v, "sqlite:", 7)) && strncmp(v, "postgresql://", 13) &&
	    strncmp(v, "postgres://", 11))
		return config_fail(l, &n->start_mark, key,
				   "\"%s\" is neither sqlite:PATH nor a postgresql:// URI",
				   config_show(n, show, sizeof(show)));
	memcpy(field, v, len + 1);
	return 0;
}

/* An HTTP field name (RFC 9110 token) of len bytes. */
static bool config_http_token(const unsigned char *v, size_t len)
{
	size_t i;

	if (!len)
		return false;
	for (i = 0; i < len; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		      (v[i] >= '0' && v[i] <= '9') || (v[i] && strchr("!#$%&'*+-.^_`|~", v[i]))))
			return false;
	return true;
}

/*
 * otlp.headers: a mapping of field names to values, kept as "Name: value"
 * lines. Names novamon sets itself are refused, as are duplicates (HTTP
 * names are case-insensitive) and values curl would split or drop.
 */
static int config_set_headers(struct config_loader *l, const char *key, const yaml_node_t *n)
{
	static const char *const reserved[] = { "Content-Type", "Content-Encoding",
						"Content-Length" };
	char show[CONFIG_SHOW_MAX + 4], hkey[240];
	yaml_node_pair_t *pair;
	uint32_t count = 0;
	size_t i, j;

	if (config_is_null(n)) {
		l->cfg.otlp_nheaders = 0;
		return 0;
	}
	if (n->type != YAML_MAPPING_NODE)
		return config_fail(l, &n->start_mark, key,
				   "expected a mapping of header names to values, got %s",
				   config_node_type(n));
	for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = yaml_document_get_node(l->doc, pair->key);
		yaml_node_t *vn = yaml_document_get_node(l->doc, pair->value);
		const unsigned char *name, *val;
		size_t nlen, vlen;

		if (kn->type != YAML_SCALAR_NODE)
			return config_fail(l, &kn->start_mark, key,
					   "a header name must be a string, not %s",
					   config_node_type(kn));
		name = kn->data.scalar.value;
		nlen = kn->data.scalar.length;
		snprintf(hkey, sizeof(hkey), "%s.%s", key, config_show(kn, show, sizeof(show)));
		if (!config_http_token(name, nlen))
			return config_fail(l, &kn->start_mark, hkey,
					   "not a valid HTTP header name");
		for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
			if (strlen(reserved[i]) == nlen &&
			    !strncasecmp(reserved[i], (const char *)name, nlen))
				return config_fail(l, &kn->start_mark, hkey,
						   "is set by novamon and cannot be configured");
		for (j = 0; j < count; j++)
			if (!strncasecmp(l->cfg.otlp_headers[j], (const char *)name, nlen) &&
			    l->cfg.otlp_headers[j][nlen] == ':')
				return config_fail(l, &kn->start_mark, hkey, "duplicate header");
		if (vn->type != YAML_SCALAR_NODE || config_is_null(vn))
			return config_fail(l, &vn->start_mark, hkey, "expected a value, got %s",
					   config_node_type(vn));
		val = vn->data.scalar.value;
		vlen = vn->data.scalar.length;
		if (!vlen)
			return config_fail(l, &vn->start_mark, hkey, "must not be empty");
		for (i = 0; i < vlen; i++)
			if ((val[i] < 0x20 && val[i] != '\t') || val[i] == 0x7f)
				return config_fail(l, &vn->start_mark, hkey,
						   "the value contains a control character");
		if (count == CONFIG_OTLP_MAX_HEADERS)
			return config_fail(l, &kn->start_mark, hkey, "more than %d headers",
					   CONFIG_OTLP_MAX_HEADERS);
		if (nlen + 2 + vlen >= CONFIG_OTLP_HEADER_LEN)
			return config_fail(l, &vn->start_mark, hkey,
					   "name and value are %zu bytes long, the limit is %d",
					   nlen + vlen, CONFIG_OTLP_HEADER_LEN - 3);
		snprintf(l->cfg.otlp_headers[count], CONFIG_OTLP_HEADER_LEN, "%.*s: %.*s",
			 (int)nlen, (const char *)name, (int)vlen, (const char *)val);
		count++;
	}
	l->cfg.otlp_nheaders = count;
	return 0;
}

static int config_set_probes(struct config_loader *l, const char *key, const yaml_node_t *n)
{
	char show[CONFIG_SHOW_MAX + 4];
	uint32_t bits = 0, one;
	const char *bad;
	size_t badlen;

	if (n->type == YAML_SCALAR_NODE) {
		if (config_is_null(n))
			goto empty;
		if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
			return config_fail(l, &n->start_mark, key, "contains a NUL byte");
		if (config_probe_list((const char *)n->data.scalar.value, &bits, &bad, &badlen))
			return config_fail(
				l, &n->start_mark, key,
				"unknown probe \"%.*s\" (known: kvm, block, net, sched)",
				(int)(badlen < CONFIG_SHOW_MAX ? badlen : CONFIG_SHOW_MAX), bad);
	} else if (n->type == YAML_SEQUENCE_NODE) {
		yaml_node_item_t *it;

		for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
			yaml_node_t *item = yaml_document_get_node(l->doc, *it);

			if (item->type != YAML_SCALAR_NODE)
				return config_fail(l, &item->start_mark, key,
						   "expected a probe name, got %s",
						   config_node_type(item));
			one = config_probe_bit((const char *)item->data.scalar.value,
					       item->data.scalar.length);
			if (!one)
				return config_fail(
					l, &item->start_mark, key,
					"unknown probe \"%s\" (known: kvm, block, net, sched)",
					config_show(item, show, sizeof(show)));
			bits |= one;
		}
		if (!bits)
			goto empty;
	} else {
		return config_fail(l, &n->start_mark, key,
				   "expected a list of probes or \"kvm,block,...\", got a mapping");
	}
	l->cfg.probes = bits;
	return 0;

empty:
	return config_fail(l, &n->start_mark, key,
			   "empty probe list (to capture nothing set capture.enabled: false)");
}

/* Whether s is a metric-name prefix: [a-zA-Z_:][a-zA-Z0-9_:]*, non-empty. */
static bool config_is_name_prefix(const char *s, size_t len)
{
	size_t i;

	if (!len)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
		      (i && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/*
 * store.retention_by_prefix: a mapping of metric-name prefix to a mapping of
 * raw_seconds / m1_seconds / h1_seconds; a key left out inherits the store's
 * global value (resolved by the user of the config).
 */
static int config_set_retention(struct config_loader *l, const char *key, const yaml_node_t *n)
{
	static const char *const fields[] = { "raw_seconds", "m1_seconds", "h1_seconds" };
	char show[CONFIG_SHOW_MAX + 4], sub[200];
	yaml_node_pair_t *pair, *fp;
	uint32_t i, f;

	if (config_is_null(n)) {
		l->cfg.nretention = 0;
		return 0;
	}
	if (n->type != YAML_MAPPING_NODE)
		return config_fail(l, &n->start_mark, key,
				   "expected a mapping of metric-name prefix to retention, got %s",
				   config_node_type(n));
	l->cfg.nretention = 0;
	for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = yaml_document_get_node(l->doc, pair->key);
		yaml_node_t *vn = yaml_document_get_node(l->doc, pair->value);
		struct config_retention *r;

		if (kn->type != YAML_SCALAR_NODE ||
		    strlen((const char *)kn->data.scalar.value) != kn->data.scalar.length ||
		    !config_is_name_prefix((const char *)kn->data.scalar.value,
					   kn->data.scalar.length))
			return config_fail(l, &kn->start_mark, key,
					   "\"%s\" is not a metric-name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)",
					   kn->type == YAML_SCALAR_NODE ?
						   config_show(kn, show, sizeof(show)) :
						   config_node_type(kn));
		if (kn->data.scalar.length >= sizeof(r->prefix))
			return config_fail(l, &kn->start_mark, key,
					   "prefix is %zu bytes long, the limit is %zu",
					   kn->data.scalar.length, sizeof(r->prefix) - 1);
		for (i = 0; i < l->cfg.nretention; i++)
			if (!strcmp(l->cfg.retention[i].prefix, (const char *)kn->data.scalar.value))
				return config_fail(l, &kn->start_mark, key,
						   "prefix \"%s\" given twice",
						   config_show(kn, show, sizeof(show)));
		if (l->cfg.nretention == CONFIG_MAX_RETENTION)
			return config_fail(l, &kn->start_mark, key, "more than %d prefixes",
					   CONFIG_MAX_RETENTION);
		snprintf(sub, sizeof(sub), "%s.%s", key, config_show(kn, show, sizeof(show)));
		if (vn->type != YAML_MAPPING_NODE)
			return config_fail(l, &vn->start_mark, sub,
					   "expected a mapping of raw_seconds, m1_seconds, h1_seconds, got %s",
					   config_node_type(vn));
		r = &l->cfg.retention[l->cfg.nretention];
		memcpy(r->prefix, kn->data.scalar.value, kn->data.scalar.length + 1);
		r->raw_seconds = r->m1_seconds = r->h1_seconds = CONFIG_RETENTION_INHERIT;
		for (fp = vn->data.mapping.pairs.start; fp < vn->data.mapping.pairs.top; fp++) {
			yaml_node_t *fk = yaml_document_get_node(l->doc, fp->key);
			yaml_node_t *fv = yaml_document_get_node(l->doc, fp->value);
			uint64_t *field[] = { &r->raw_seconds, &r->m1_seconds, &r->h1_seconds };
			char fkey[260];
			uint64_t v;

			for (f = 0; f < 3 && fk->type == YAML_SCALAR_NODE; f++)
				if (!strcmp(fields[f], (const char *)fk->data.scalar.value))
					break;
			if (fk->type != YAML_SCALAR_NODE || f == 3)
				return config_fail(l, &fk->start_mark, sub,
						   "unknown key \"%s\" (known: raw_seconds, m1_seconds, h1_seconds)",
						   fk->type == YAML_SCALAR_NODE ?
							   config_show(fk, show, sizeof(show)) :
							   config_node_type(fk));
			snprintf(fkey, sizeof(fkey), "%s.%s", sub, fields[f]);
			if (*field[f] != CONFIG_RETENTION_INHERIT)
				return config_fail(l, &fk->start_mark, fkey, "duplicate key");
			if (fv->type != YAML_SCALAR_NODE || config_parse_u64(fv, &v))
				return config_fail(l, &fv->start_mark, fkey,
						   "expected a non-negative integer, got \"%s\"",
						   fv->type == YAML_SCALAR_NODE ?
							   config_show(fv, show, sizeof(show)) :
							   config_node_type(fv));
			if ((f == 0 && v < 60) || v > 10 * CONFIG_YEAR_S)
				return config_fail(l, &fv->start_mark, fkey,
						   "%llu is outside [%u, %llu]", (unsigned long long)v,
						   f == 0 ? 60 : 0, 10 * CONFIG_YEAR_S);
			*field[f] = v;
		}
		l->cfg.nretention++;
	}
	return 0;
}

static int config_set_log_level(struct config_loader *l, const char *key, const yaml_node_t *n)
{
	char show[CONFIG_SHOW_MAX + 4];
	size_t i;

	for (i = 0; i < sizeof(config_level_names) / sizeof(config_level_names[0]); i++) {
		if (strlen(config_level_names[i]) == n->data.scalar.length &&
		    !memcmp(config_level_names[i], n->data.scalar.value, n->data.scalar.length)) {
			l->cfg.log_level = (int)i;
			return 0;
		}
	}
	return config_fail(l, &n->start_mark, key,
			   "unknown level \"%s\" (known: error, warn, info, debug)",
			   config_show(n, show, sizeof(show)));
}

static int config_set_auth_mode(struct config_loader *l, const char *key, const yaml_node_t *n)
{
	static const char *const modes[] = {
		[CONFIG_AUTH_AUTO] = "auto",
		[CONFIG_AUTH_ON] = "on",
		[CONFIG_AUTH_OFF] = "off",
	};
	char show[CONFIG_SHOW_MAX + 4];
	size_t i;

	/* a plain on/off is a YAML 1.1 boolean to some tools: accept it quoted or not */
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strlen(modes[i]) == n->data.scalar.length &&
		    !memcmp(modes[i], n->data.scalar.value, n->data.scalar.length)) {
			l->cfg.auth_mode = (int)i;
			return 0;
		}
	}
	return config_fail(l, &n->start_mark, key, "unknown mode \"%s\" (known: auto, on, off)",
			   config_show(n, show, sizeof(show)));
}

static int config_walk(struct config_loader *l, const yaml_node_t *map,
		       const struct config_key *keys, const char *prefix);

/* Apply one key's value node. */
static int config_apply(struct config_loader *l, const struct config_key *k, const char *key,
			const yaml_node_t *v)
{
	char *field = (char *)&l->cfg + k->off;

	if (k->kind == CONFIG_KIND_MAP) {
		if (config_is_null(v))
			return 0; /* "capture:" with every child commented out */
		if (v->type != YAML_MAPPING_NODE)
			return config_fail(l, &v->start_mark, key, "expected a mapping, got %s",
					   config_node_type(v));
		return config_walk(l, v, k->children, key);
	}
	if (k->kind == CONFIG_KIND_PROBES)
		return config_set_probes(l, key, v);
	if (k->kind == CONFIG_KIND_HEADERS)
		return config_set_headers(l, key, v);
	if (k->kind == CONFIG_KIND_RETENTION)
		return config_set_retention(l, key, v);

	if (v->type != YAML_SCALAR_NODE)
		return config_fail(l, &v->start_mark, key, "expected a single value, got %s",
				   config_node_type(v));
	if (config_is_null(v) && !(k->kind == CONFIG_KIND_STR && k->allow_empty))
		return config_fail(l, &v->start_mark, key, "has no value");

	switch (k->kind) {
	case CONFIG_KIND_STR:
		return config_set_str(l, k, key, v);
	case CONFIG_KIND_U32:
	case CONFIG_KIND_U64:
		return config_set_int(l, k, key, v);
	case CONFIG_KIND_LOG_LEVEL:
		return config_set_log_level(l, key, v);
	case CONFIG_KIND_AUTH_MODE:
		return config_set_auth_mode(l, key, v);
	case CONFIG_KIND_BOOL: {
		char show[CONFIG_SHOW_MAX + 4];

		if (config_parse_bool(v, (bool *)field))
			return config_fail(l, &v->start_mark, key,
					   "expected true or false, got \"%s\"",
					   config_show(v, show, sizeof(show)));
		return 0;
	}
	default:
		return config_fail(l, &v->start_mark, key, "internal error: bad key kind");
	}
}

/* Apply every pair of map against keys; prefix is the parent's dotted name or NULL. */
static int config_walk(struct config_loader *l, const yaml_node_t *map,
		       const struct config_key *keys, const char *prefix)
{
	yaml_node_pair_t *pair;
	uint32_t seen = 0; /* bit i: keys[i] given; the tables hold fewer than 32 keys */
	int err;

	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = yaml_document_get_node(l->doc, pair->key);
		yaml_node_t *vn = yaml_document_get_node(l->doc, pair->value);
		char show[CONFIG_SHOW_MAX + 4];
		char key[160];
		size_t i;

		if (kn->type != YAML_SCALAR_NODE)
			return config_fail(l, &kn->start_mark, prefix,
					   "a key must be a name, not %s", config_node_type(kn));
		config_show(kn, show, sizeof(show));
		snprintf(key, sizeof(key), "%s%s%s", prefix ? prefix : "", prefix ? "." : "", show);

		for (i = 0; keys[i].name; i++)
			if (strlen(keys[i].name) == kn->data.scalar.length &&
			    !memcmp(keys[i].name, kn->data.scalar.value, kn->data.scalar.length))
				break;
		if (!keys[i].name)
			return config_fail(l, &kn->start_mark, key, "unknown key");
		if (seen & (1U << i))
			return config_fail(l, &kn->start_mark, key, "duplicate key");
		seen |= 1U << i;

		err = config_apply(l, &keys[i], key, vn);
		if (err)
			return err;
	}
	return 0;
}

/* Checks that involve more than one key; run once the whole file is applied. */
static int config_check(struct config_loader *l)
{
	const struct config *c = &l->cfg;

	if ((l->have_ring || l->have_wakeup) && c->wakeup_bytes >= c->ring_bytes) {
		if (l->have_wakeup)
			return config_fail(l, &l->wakeup_mark, "capture.wakeup_bytes",
					   "%llu must be less than capture.ring_bytes (%llu)",
					   (unsigned long long)c->wakeup_bytes,
					   (unsigned long long)c->ring_bytes);
		return config_fail(l, &l->ring_mark, "capture.ring_bytes",
				   "%llu must be greater than capture.wakeup_bytes (%llu)",
				   (unsigned long long)c->ring_bytes,
				   (unsigned long long)c->wakeup_bytes);
	}
	return 0;
}

/* Report a libyaml parser failure; returns the negative errno. */
static int config_parser_error(struct config_loader *l, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "unknown error";

	if (p->error == YAML_MEMORY_ERROR) {
		if (l->err && l->errlen)
			snprintf(l->err, l->errlen, "%s: out of memory", l->path);
		return -ENOMEM;
	}
	if (p->error == YAML_READER_ERROR) {
		/* Bad encoding or a read error: libyaml has an offset, not a line. */
		if (l->err && l->errlen)
			snprintf(l->err, l->errlen, "%s: byte %zu: %s", l->path, p->problem_offset,
				 problem);
		return p->problem_value == -1 ? -EIO : -EINVAL;
	}
	if (l->err && l->errlen) {
		if (p->context)
			snprintf(l->err, l->errlen,
				 "%s:%zu:%zu: YAML syntax error: %s %s (started on line %zu)",
				 l->path, p->problem_mark.line + 1, p->problem_mark.column + 1,
				 problem, p->context, p->context_mark.line + 1);
		else
			snprintf(l->err, l->errlen, "%s:%zu:%zu: YAML syntax error: %s", l->path,
				 p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
	}
	return -EINVAL;
}

int config_load(struct config *cfg, const char *path, bool must_exist, char *err, size_t errlen)
{
	struct config_loader l = { .path = path, .err = err, .errlen = errlen };
	yaml_document_t doc, extra;
	bool parser_ready = false;
	yaml_node_t *root;
	yaml_parser_t parser;
	FILE *f = NULL;
	struct stat st;
	int ret;

	/* yaml_document_delete() on a zeroed document is a no-op: NULL-safe cleanup. */
	memset(&doc, 0, sizeof(doc));
	memset(&extra, 0, sizeof(extra));
	if (err && errlen)
		err[0] = '\0';
	if (!cfg || !path) {
		ret = -EINVAL;
		goto cleanup;
	}
	l.cfg = *cfg;
	l.doc = &doc;

	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		if (ret == -ENOENT && !must_exist) {
			ret = 0;
			goto cleanup;
		}
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		goto cleanup;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(EISDIR));
		goto cleanup;
	}

	if (!yaml_parser_initialize(&parser)) {
		ret = -ENOMEM;
		goto cleanup;
	}
	parser_ready = true;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		ret = config_parser_error(&l, &parser);
		goto cleanup;
	}

	root = yaml_document_get_root_node(&doc);
	if (root) {
		/* A second document would be silently ignored: refuse it. */
		if (!yaml_parser_load(&parser, &extra)) {
			ret = config_parser_error(&l, &parser);
			goto cleanup;
		}
		if (yaml_document_get_root_node(&extra)) {
			ret = config_fail(&l, &extra.start_mark, NULL,
					  "more than one YAML document (\"---\") in the file");
			goto cleanup;
		}
		if (root->type == YAML_MAPPING_NODE) {
			ret = config_walk(&l, root, config_root_keys, NULL);
			if (ret)
				goto cleanup;
		} else if (!config_is_null(root)) {
			ret = config_fail(&l, &root->start_mark, NULL,
					  "the top level must be a mapping of keys, got %s",
					  config_node_type(root));
			goto cleanup;
		}
	}

	ret = config_check(&l);
	if (ret)
		goto cleanup;
	*cfg = l.cfg;

cleanup:
	yaml_document_delete(&extra);
	yaml_document_delete(&doc);
	if (parser_ready)
		yaml_parser_delete(&parser);
	if (f)
		fclose(f);
	return ret;
}
