/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "probe.h"

static const char *const tracefs_events[] = {
	"/sys/kernel/tracing/events",
	"/sys/kernel/debug/tracing/events",
};

static bool is_dir(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

static const char *find_tracefs(void)
{
	size_t i;

	for (i = 0; i < sizeof(tracefs_events) / sizeof(tracefs_events[0]); i++)
		if (is_dir(tracefs_events[i]))
			return tracefs_events[i];
	return NULL;
}

int probe_env__init(struct probe_env *env)
{
	env->vcpu_of_tid_fd = -1;
	env->vmlinux_btf = btf__load_vmlinux_btf();
	if (!env->vmlinux_btf)
		env->vmlinux_btf = NULL;
	env->tracefs = find_tracefs();
	/*
	 * Classic tracepoints are found through tracefs. Mount it as perf and
	 * bpftrace need it; only root can, and then it is what they would do.
	 */
	if (!env->tracefs && is_dir("/sys/kernel/tracing") &&
	    !mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL))
		env->tracefs = find_tracefs();
	return 0;
}

void probe_env__destroy(struct probe_env *env)
{
	btf__free(env->vmlinux_btf);
	env->vmlinux_btf = NULL;
}

struct probe_status *probe_report__add(struct probe_report *rep, const char *family,
				       const char *program, const char *tracepoint, bool attached,
				       const char *reason_fmt, ...)
{
	struct probe_status *s;
	va_list ap;

	if (rep->n >= PROBE_MAX_STATUS)
		return NULL;
	s = &rep->items[rep->n++];
	memset(s, 0, sizeof(*s));
	snprintf(s->family, sizeof(s->family), "%s", family);
	snprintf(s->program, sizeof(s->program), "%s", program);
	snprintf(s->tracepoint, sizeof(s->tracepoint), "%s", tracepoint);
	s->attached = attached;
	va_start(ap, reason_fmt);
	vsnprintf(s->reason, sizeof(s->reason), reason_fmt, ap);
	va_end(ap);
	return s;
}

bool probe_btf_has(const struct probe_env *env, const char *name, int kind)
{
	return env->vmlinux_btf && btf__find_by_name_kind(env->vmlinux_btf, name, kind) > 0;
}

bool probe_tracepoint_exists(const struct probe_env *env, const char *category, const char *name)
{
	char path[256], btf_name[128];

	if (env->tracefs) {
		snprintf(path, sizeof(path), "%s/%s/%s", env->tracefs, category, name);
		return is_dir(path);
	}
	snprintf(btf_name, sizeof(btf_name), "btf_trace_%s", name);
	return probe_btf_has(env, btf_name, BTF_KIND_TYPEDEF);
}

int probe_btf_tp_nargs(const struct probe_env *env, const char *name)
{
	const struct btf_type *t;
	char btf_name[128];
	int id;

	if (!env->vmlinux_btf)
		return -1;
	snprintf(btf_name, sizeof(btf_name), "btf_trace_%s", name);
	id = btf__find_by_name_kind(env->vmlinux_btf, btf_name, BTF_KIND_TYPEDEF);
	if (id <= 0)
		return -1;
	t = btf__type_by_id(env->vmlinux_btf, id);
	t = btf__type_by_id(env->vmlinux_btf, t->type); /* pointer */
	if (!t || !btf_is_ptr(t))
		return -1;
	t = btf__type_by_id(env->vmlinux_btf, t->type); /* prototype */
	if (!t || !btf_is_func_proto(t))
		return -1;
	return btf_vlen(t) - 1; /* the first argument is the tracepoint's void *data */
}

/* "tracepoint/kvm/kvm_pio" -> "kvm/kvm_pio"; "tp_btf/x" -> "x"; "fentry/f" -> "fentry/f". */
static const char *attach_point(const struct bpf_program *prog)
{
	const char *sec = bpf_program__section_name(prog);
	const char *slash = strchr(sec, '/');

	if (!strncmp(sec, "tracepoint/", 11) || !strncmp(sec, "tp_btf/", 7))
		return slash + 1;
	return sec;
}

void probe_skip(struct probe_env *env, const char *family, struct bpf_program *prog,
		const char *reason)
{
	bpf_program__set_autoload(prog, false);
	probe_report__add(env->report, family, bpf_program__name(prog), attach_point(prog), false,
			  "%s", reason);
}

const char *probe_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case EPERM:
	case EACCES:
		return "permission denied: run as root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)";
	case ENOENT:
		return "not found in this kernel";
	case ESRCH:
		return "kernel BTF has no such target";
	case ENOTSUP:
		return "not supported by this kernel";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

int probe_attach_all(struct probe_env *env, const char *family, struct bpf_object *obj,
		     struct bpf_link **links, int max_links)
{
	struct bpf_program *prog;
	struct bpf_link *link;
	int attached = 0, err;

	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__autoload(prog))
			continue;
		link = bpf_program__attach(prog);
		err = libbpf_get_error(link);
		if (err) {
			probe_report__add(env->report, family, bpf_program__name(prog),
					  attach_point(prog), false, "attach failed: %s",
					  probe_strerror(err));
			continue;
		}
		if (attached >= max_links) {
			bpf_link__destroy(link);
			continue;
		}
		probe_report__add(env->report, family, bpf_program__name(prog), attach_point(prog),
				  true, "%s", "");
		links[attached++] = link;
	}
	return attached;
}

void probe_links_destroy(struct bpf_link **links, int n)
{
	while (n-- > 0)
		bpf_link__destroy(links[n]);
}
