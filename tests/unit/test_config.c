/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config: defaults, a full file, every validation error (each message must
 * name the file, the line and the key), missing files, config_parse_probes.
 * Each test writes its YAML into a private temporary directory.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "config.h"
#include "log.h"

static char tmpdir[64];
static char yaml_path[PATH_MAX];

static void config_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/novamon-config-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(yaml_path, sizeof(yaml_path), "%s/novamon.yaml", tmpdir);
}

static void config_teardown(void)
{
	unlink(yaml_path);
	rmdir(tmpdir);
}

TestSuite(config, .init = config_setup, .fini = config_teardown);

static void write_yaml(const char *text)
{
	FILE *f = fopen(yaml_path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	cr_assert_eq(fclose(f), 0);
}

/* Load text over the defaults; the message lands in err. */
static int load_text(const char *text, struct config *cfg, char *err, size_t errlen)
{
	write_yaml(text);
	config_defaults(cfg);
	return config_load(cfg, yaml_path, true, err, errlen);
}

static void assert_defaults(const struct config *c)
{
	cr_assert_str_eq(c->listen, "127.0.0.1:9477");
	cr_assert_str_eq(c->state_dir, "/var/lib/novamon");
	cr_assert_eq(c->log_level, LOG_LVL_INFO);
	cr_assert_eq(c->series_expire_seconds, 600);
	cr_assert(c->capture_enabled);
	cr_assert_eq(c->probes, CONFIG_PROBE_ALL);
	cr_assert_eq(c->ring_bytes, 8ULL << 20);
	cr_assert_eq(c->wakeup_bytes, 256ULL << 10);
	cr_assert_eq(c->poll_interval_ms, 10);
	cr_assert_eq(c->net_max_interfaces, 4096);
	cr_assert_eq(c->shard_entries, 16384);
	cr_assert_str_eq(c->topology, "");
	cr_assert_str_eq(c->kvm_debugfs, "/sys/kernel/debug/kvm");
}

/*
 * The file must be rejected with -EINVAL and a message that carries the file
 * name, ":line:" and the key (and, when given, a phrase of the reason).
 */
static void assert_rejected(const char *text, int line, const char *key, const char *phrase)
{
	struct config cfg;
	char err[512] = "";
	char at[PATH_MAX + 32];

	cr_assert_eq(load_text(text, &cfg, err, sizeof(err)), -EINVAL, "accepted:\n%s", text);
	snprintf(at, sizeof(at), "%s:%d:", yaml_path, line);
	cr_assert(strstr(err, at) == err, "\"%s\" does not start with \"%s\"", err, at);
	if (key)
		cr_assert_not_null(strstr(err, key), "\"%s\" does not name %s", err, key);
	if (phrase)
		cr_assert_not_null(strstr(err, phrase), "\"%s\" does not say \"%s\"", err, phrase);
	/* All or nothing: a rejected file changes nothing. */
	assert_defaults(&cfg);
}

Test(config, defaults)
{
	struct config cfg;

	memset(&cfg, 0xa5, sizeof(cfg));
	config_defaults(&cfg);
	assert_defaults(&cfg);
}

Test(config, missing_file_optional)
{
	struct config cfg;
	char err[256] = "x";

	config_defaults(&cfg);
	cr_assert_eq(config_load(&cfg, "/nonexistent/novamon.yaml", false, err, sizeof(err)), 0);
	cr_assert_str_eq(err, "");
	assert_defaults(&cfg);
}

Test(config, missing_file_required)
{
	struct config cfg;
	char err[256] = "";

	config_defaults(&cfg);
	cr_assert_eq(config_load(&cfg, "/nonexistent/novamon.yaml", true, err, sizeof(err)),
		     -ENOENT);
	cr_assert_not_null(strstr(err, "/nonexistent/novamon.yaml"), "%s", err);
	assert_defaults(&cfg);
}

Test(config, directory_is_an_error)
{
	struct config cfg;
	char err[256] = "";

	config_defaults(&cfg);
	cr_assert_eq(config_load(&cfg, tmpdir, false, err, sizeof(err)), -EISDIR);
	cr_assert_not_null(strstr(err, tmpdir), "%s", err);
}

Test(config, empty_file)
{
	struct config cfg;
	char err[256] = "";

	cr_assert_eq(load_text("", &cfg, err, sizeof(err)), 0, "%s", err);
	assert_defaults(&cfg);
	cr_assert_eq(load_text("# nothing set\n\n", &cfg, err, sizeof(err)), 0, "%s", err);
	assert_defaults(&cfg);
	cr_assert_eq(load_text("---\n", &cfg, err, sizeof(err)), 0, "%s", err);
	assert_defaults(&cfg);
	cr_assert_eq(load_text("capture:\n#  ring_bytes: 4096\n", &cfg, err, sizeof(err)), 0, "%s",
		     err);
	assert_defaults(&cfg);
}

Test(config, full_file)
{
	struct config cfg;
	char err[256] = "";
	const char *text = "# every key\n"
			   "listen: \"[::1]:9000\"\n"
			   "state_dir: /srv/novamon\n"
			   "log_level: debug\n"
			   "series_expire_seconds: 3600\n"
			   "capture:\n"
			   "  enabled: false\n"
			   "  probes: [kvm, sched]\n"
			   "  ring_bytes: 0x100000\n"
			   "  wakeup_bytes: 65536\n"
			   "  poll_interval_ms: 1000\n"
			   "  net_max_interfaces: 64\n"
			   "  shard_entries: 1024\n"
			   "  topology: \"0:0-3;1:4-7,12\"\n"
			   "kvm_debugfs: /mnt/debug/kvm\n";

	cr_assert_eq(load_text(text, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.listen, "[::1]:9000");
	cr_assert_str_eq(cfg.state_dir, "/srv/novamon");
	cr_assert_eq(cfg.log_level, LOG_LVL_DEBUG);
	cr_assert_eq(cfg.series_expire_seconds, 3600);
	cr_assert_not(cfg.capture_enabled);
	cr_assert_eq(cfg.probes, CONFIG_PROBE_KVM | CONFIG_PROBE_SCHED);
	cr_assert_eq(cfg.ring_bytes, 1ULL << 20);
	cr_assert_eq(cfg.wakeup_bytes, 65536);
	cr_assert_eq(cfg.poll_interval_ms, 1000);
	cr_assert_eq(cfg.net_max_interfaces, 64);
	cr_assert_eq(cfg.shard_entries, 1024);
	cr_assert_str_eq(cfg.topology, "0:0-3;1:4-7,12");
	cr_assert_str_eq(cfg.kvm_debugfs, "/mnt/debug/kvm");
}

Test(config, partial_file_keeps_the_rest)
{
	struct config cfg;
	char err[256] = "";

	cr_assert_eq(load_text("capture:\n  poll_interval_ms: 1\n", &cfg, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(cfg.poll_interval_ms, 1);
	cfg.poll_interval_ms = 10;
	assert_defaults(&cfg);
}

Test(config, values_over_a_loaded_config)
{
	struct config cfg;
	char err[256] = "";

	config_defaults(&cfg);
	cfg.shard_entries = 2048;
	write_yaml("log_level: warn\n");
	cr_assert_eq(config_load(&cfg, yaml_path, true, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.log_level, LOG_LVL_WARN);
	cr_assert_eq(cfg.shard_entries, 2048);
}

Test(config, probes_as_string)
{
	struct config cfg;
	char err[256] = "";

	cr_assert_eq(load_text("capture:\n  probes: kvm, net\n", &cfg, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(cfg.probes, CONFIG_PROBE_KVM | CONFIG_PROBE_NET);
	cr_assert_eq(load_text("capture:\n  probes: \"block\"\n", &cfg, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(cfg.probes, CONFIG_PROBE_BLOCK);
	cr_assert_eq(load_text("capture: {probes: [net, net]}\n", &cfg, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(cfg.probes, CONFIG_PROBE_NET);
}

Test(config, bounds_are_inclusive)
{
	struct config cfg;
	char err[256] = "";
	const char *text = "capture:\n"
			   "  ring_bytes: 1073741824\n"
			   "  wakeup_bytes: 0\n"
			   "  poll_interval_ms: 1\n"
			   "  shard_entries: 16777216\n";

	cr_assert_eq(load_text(text, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.ring_bytes, 1ULL << 30);
	cr_assert_eq(cfg.wakeup_bytes, 0);
	cr_assert_eq(cfg.shard_entries, 1U << 24);
	text = "capture:\n  ring_bytes: 4096\n  wakeup_bytes: 4095\n  shard_entries: 1024\n";
	cr_assert_eq(load_text(text, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.ring_bytes, 4096);
}

Test(config, booleans)
{
	struct config cfg;
	char err[256] = "";

	cr_assert_eq(load_text("capture:\n  enabled: no\n", &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(cfg.capture_enabled);
	cr_assert_eq(load_text("capture:\n  enabled: True\n", &cfg, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert(cfg.capture_enabled);
}

Test(config, err_may_be_null)
{
	struct config cfg;

	cr_assert_eq(load_text("bogus: 1\n", &cfg, NULL, 0), -EINVAL);
	assert_defaults(&cfg);
}

Test(config, short_err_buffer_is_terminated)
{
	struct config cfg;
	char err[8];

	memset(err, 'x', sizeof(err));
	cr_assert_eq(load_text("bogus: 1\n", &cfg, err, sizeof(err)), -EINVAL);
	cr_assert_eq(strnlen(err, sizeof(err)), sizeof(err) - 1);
}

Test(config, unknown_keys)
{
	assert_rejected("listen: 127.0.0.1:1\nlisten_addr: x\n", 2, "listen_addr", "unknown key");
	assert_rejected("capture:\n  enabled: true\n  ring_byte: 4096\n", 3, "capture.ring_byte",
			"unknown key");
	/* A capture key at the top level is a typo too. */
	assert_rejected("ring_bytes: 4096\n", 1, "ring_bytes", "unknown key");
}

Test(config, duplicate_key)
{
	assert_rejected("log_level: info\nlog_level: debug\n", 2, "log_level", "duplicate");
}

Test(config, wrong_types)
{
	assert_rejected("capture:\n  ring_bytes: lots\n", 2, "capture.ring_bytes", "integer");
	assert_rejected("capture:\n  ring_bytes: \"4096\"\n", 2, "capture.ring_bytes", "integer");
	assert_rejected("capture:\n  ring_bytes: 4096.0\n", 2, "capture.ring_bytes", "integer");
	assert_rejected("capture:\n  ring_bytes: -4096\n", 2, "capture.ring_bytes", "integer");
	assert_rejected("capture:\n  poll_interval_ms: 99999999999999999999999\n", 2,
			"capture.poll_interval_ms", "integer");
	assert_rejected("capture:\n  ring_bytes: [4096]\n", 2, "capture.ring_bytes", "a list");
	assert_rejected("capture:\n  enabled: maybe\n", 2, "capture.enabled", "true or false");
	assert_rejected("capture:\n  enabled: \"true\"\n", 2, "capture.enabled", "true or false");
	assert_rejected("\ncapture: 5\n", 2, "capture", "mapping");
	assert_rejected("listen: [a, b]\n", 1, "listen", "a list");
	assert_rejected("state_dir: {a: b}\n", 1, "state_dir", "a mapping");
	assert_rejected("series_expire_seconds:\n", 1, "series_expire_seconds", "no value");
	assert_rejected("capture:\n  probes: {kvm: 1}\n", 2, "capture.probes", "mapping");
	assert_rejected("capture:\n  probes: [kvm, [net]]\n", 2, "capture.probes", "a list");
	assert_rejected("- listen\n", 1, NULL, "top level");
}

Test(config, ring_bytes)
{
	assert_rejected("capture:\n  ring_bytes: 1000\n", 2, "capture.ring_bytes",
			"1000 is not a power of two >= 4096");
	assert_rejected("capture:\n  ring_bytes: 2048\n", 2, "capture.ring_bytes",
			"not a power of two");
	assert_rejected("capture:\n  ring_bytes: 12288\n", 2, "capture.ring_bytes",
			"not a power of two");
	assert_rejected("capture:\n  ring_bytes: 0\n", 2, "capture.ring_bytes",
			"not a power of two");
	assert_rejected("capture:\n  ring_bytes: 2147483648\n", 2, "capture.ring_bytes",
			"larger than 1073741824");
}

Test(config, wakeup_bytes)
{
	/* Reported at wakeup_bytes when the file sets it... */
	assert_rejected("capture:\n  ring_bytes: 65536\n  wakeup_bytes: 65536\n", 3,
			"capture.wakeup_bytes", "less than capture.ring_bytes");
	assert_rejected("capture:\n  wakeup_bytes: 8388608\n", 2, "capture.wakeup_bytes",
			"less than capture.ring_bytes");
	/* ...and at ring_bytes when only that is set (default wakeup is 256 KiB). */
	assert_rejected("capture:\n  ring_bytes: 4096\n", 2, "capture.ring_bytes",
			"greater than capture.wakeup_bytes");
}

Test(config, shard_entries)
{
	assert_rejected("capture:\n  shard_entries: 512\n", 2, "capture.shard_entries",
			"power of two");
	assert_rejected("capture:\n  shard_entries: 3000\n", 2, "capture.shard_entries",
			"power of two");
	assert_rejected("capture:\n  shard_entries: 33554432\n", 2, "capture.shard_entries",
			"larger than 16777216");
}

Test(config, poll_interval_ms)
{
	assert_rejected("capture:\n  poll_interval_ms: 0\n", 2, "capture.poll_interval_ms",
			"outside [1, 1000]");
	assert_rejected("capture:\n  poll_interval_ms: 1001\n", 2, "capture.poll_interval_ms",
			"outside [1, 1000]");
}

Test(config, other_ranges)
{
	assert_rejected("series_expire_seconds: 0\n", 1, "series_expire_seconds", "outside");
	assert_rejected("series_expire_seconds: 4294967296\n", 1, "series_expire_seconds",
			"outside");
	assert_rejected("capture:\n  net_max_interfaces: 0\n", 2, "capture.net_max_interfaces",
			"outside");
}

Test(config, strings)
{
	char text[512];

	snprintf(text, sizeof(text), "listen: %0128d\n", 0);
	assert_rejected(text, 1, "listen", "limit is 127");
	snprintf(text, sizeof(text), "listen: %0127d\n", 0);
	{
		struct config cfg;
		char err[256] = "";

		cr_assert_eq(load_text(text, &cfg, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(strlen(cfg.listen), 127);
	}
	assert_rejected("state_dir: \"\"\n", 1, "state_dir", "empty");
	assert_rejected("kvm_debugfs: \"a\\0b\"\n", 1, "kvm_debugfs", "NUL");
}

Test(config, probes)
{
	assert_rejected("capture:\n  probes: [kvm, disk]\n", 2, "capture.probes", "\"disk\"");
	assert_rejected("capture:\n  probes: kvm,disk\n", 2, "capture.probes", "\"disk\"");
	assert_rejected("capture:\n  probes: kvm,\n", 2, "capture.probes", "unknown probe");
	assert_rejected("capture:\n  probes: []\n", 2, "capture.probes", "empty");
	assert_rejected("capture:\n  probes:\n", 2, "capture.probes", "empty");
}

Test(config, log_level)
{
	assert_rejected("log_level: verbose\n", 1, "log_level", "\"verbose\"");
	assert_rejected("log_level: 3\n", 1, "log_level", "unknown level");
}

Test(config, topology)
{
	struct config cfg;
	char err[256] = "";

	assert_rejected("capture:\n  topology: \"0:0-3;1:3\"\n", 2, "capture.topology",
			"NODE:CPULIST");
	assert_rejected("capture:\n  topology: banana\n", 2, "capture.topology", "banana");
	cr_assert_eq(load_text("capture:\n  topology: \"\"\n", &cfg, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_str_eq(cfg.topology, "");
}

Test(config, syntax_error_has_line_and_column)
{
	assert_rejected("capture:\n  ring_bytes: [4096\n  probes: kvm\n", 3, NULL,
			"YAML syntax error");
	assert_rejected("listen: a\n bad indent: b\n", 2, NULL, "YAML syntax error");
	{
		struct config cfg;
		char err[256] = "";
		char at[PATH_MAX + 32];

		/* line 2, column 1: the tab YAML refuses as indentation */
		cr_assert_eq(load_text("capture:\n\tenabled: true\n", &cfg, err, sizeof(err)),
			     -EINVAL);
		snprintf(at, sizeof(at), "%s:2:1: YAML syntax error", yaml_path);
		cr_assert(strstr(err, at) == err, "%s", err);
	}
}

Test(config, two_documents)
{
	assert_rejected("log_level: info\n---\nlog_level: debug\n", 2, NULL, "more than one");
}

Test(config, bad_encoding)
{
	struct config cfg;
	char err[256] = "";

	cr_assert_eq(load_text("listen: \xff\xfe\n", &cfg, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, yaml_path), "%s", err);
	assert_defaults(&cfg);
}

Test(config, parse_probes)
{
	uint32_t p = 0;

	cr_assert_eq(config_parse_probes("kvm,block", &p), 0);
	cr_assert_eq(p, CONFIG_PROBE_KVM | CONFIG_PROBE_BLOCK);
	cr_assert_eq(config_parse_probes(" sched , net ", &p), 0);
	cr_assert_eq(p, CONFIG_PROBE_SCHED | CONFIG_PROBE_NET);
	cr_assert_eq(config_parse_probes("kvm,block,net,sched", &p), 0);
	cr_assert_eq(p, CONFIG_PROBE_ALL);

	p = 42;
	cr_assert_eq(config_parse_probes("", &p), -EINVAL);
	cr_assert_eq(config_parse_probes("kvm,", &p), -EINVAL);
	cr_assert_eq(config_parse_probes(",kvm", &p), -EINVAL);
	cr_assert_eq(config_parse_probes("kvm,,net", &p), -EINVAL);
	cr_assert_eq(config_parse_probes("KVM", &p), -EINVAL);
	cr_assert_eq(config_parse_probes("kvmx", &p), -EINVAL);
	cr_assert_eq(config_parse_probes("kv", &p), -EINVAL);
	cr_assert_eq(p, 42);
	cr_assert_eq(config_parse_probes(NULL, &p), -EINVAL);
}

Test(config, retention_by_prefix)
{
	struct config c;
	char err[256] = "";

	cr_assert_eq(load_text("store:\n"
			       "  retention_by_prefix:\n"
			       "    novamon_sched_:\n"
			       "      raw_seconds: 3600\n"
			       "      h1_seconds: 0\n"
			       "    bench:\n"
			       "      m1_seconds: 60\n",
			       &c, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(c.nretention, 2);
	cr_assert_str_eq(c.retention[0].prefix, "novamon_sched_");
	cr_assert_eq(c.retention[0].raw_seconds, 3600);
	cr_assert_eq(c.retention[0].m1_seconds, CONFIG_RETENTION_INHERIT);
	cr_assert_eq(c.retention[0].h1_seconds, 0);
	cr_assert_str_eq(c.retention[1].prefix, "bench");
	cr_assert_eq(c.retention[1].m1_seconds, 60);
	cr_assert_eq(c.retention[1].raw_seconds, CONFIG_RETENTION_INHERIT);

	assert_rejected("store:\n  retention_by_prefix: 5\n", 2, "store.retention_by_prefix",
			"expected a mapping");
	assert_rejected("store:\n  retention_by_prefix:\n    1x:\n      raw_seconds: 60\n", 3,
			"store.retention_by_prefix", "is not a metric-name prefix");
	assert_rejected("store:\n  retention_by_prefix:\n    a_:\n      raw_seconds: 59\n", 4,
			"store.retention_by_prefix.a_.raw_seconds", "outside");
	assert_rejected("store:\n  retention_by_prefix:\n    a_:\n      days: 1\n", 4,
			"store.retention_by_prefix.a_", "unknown key \"days\"");
	assert_rejected("store:\n  retention_by_prefix:\n    a_:\n      raw_seconds: 60\n"
			"      raw_seconds: 70\n",
			5, "store.retention_by_prefix.a_.raw_seconds", "duplicate key");
	assert_rejected("store:\n  retention_by_prefix:\n    a_: 3\n", 3,
			"store.retention_by_prefix.a_", "expected a mapping");
}
