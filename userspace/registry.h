/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry: who is who on this host. Maps a process (tgid) that uses KVM to
 * a VM identity, and a thread (tid) of it to a vCPU index.
 *
 * Sources, in order of preference:
 *   - libvirt (when built with it and libvirtd answers): domain name, UUID,
 *     and the tenant from the domain metadata;
 *   - the qemu command line in <proc>/<tgid>/cmdline: `-name guest=NAME,...`
 *     or `-name NAME`, and `-uuid UUID`;
 *   - otherwise the VM is called "pid-<tgid>".
 * vCPU threads are those whose <proc>/<tgid>/task/<tid>/comm reads
 * "CPU <n>/KVM" (qemu names them so with debug-threads=on, which libvirt sets).
 *
 * The registry is owned and used by one thread (the 1 Hz tick); it is not
 * thread safe. Nothing here runs on the per-event path. With libvirt, it
 * also runs libvirt's default event loop in a thread of its own (one per
 * process, registered with virEventRegisterDefaultImpl() on the first
 * connection, stopped and joined when the last registry is freed), which
 * only queues lifecycle events for the next registry__refresh().
 */
#ifndef NOVAMON_REGISTRY_H
#define NOVAMON_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm_info {
	uint32_t tgid;
	char name[128]; /* never empty: "pid-<tgid>" when nothing better is known */
	char uuid[40]; /* "" when unknown */
	char tenant[64]; /* "" when unknown */
	int is_kvm; /* the process holds a KVM VM fd (anon_inode:kvm-vm) */
	uint64_t last_seen_ms;
};

struct registry;

/*
 * Create a registry reading proc_root ("/proc" in production, a fake tree in
 * tests). Returns NULL with errno set on failure.
 */
struct registry *registry__new(const char *proc_root);
/* Free the registry; NULL is fine. */
void registry__free(struct registry *r);

/*
 * Rescan proc_root for KVM users (processes holding anon_inode:kvm-vm),
 * resolve their names and vCPU threads, and forget processes that are gone.
 * The VM of a process that is gone stays resolvable by registry__vm() and
 * registry__vcpu() (for late events) until it has been unused for 60 s, but
 * is no longer counted, iterated or listed. Returns the number of live KVM
 * VMs known, or a negative errno. now_ms is any monotonic clock in ms.
 */
int registry__refresh(struct registry *r, uint64_t now_ms);

/*
 * The VM of tgid. A tgid not known yet is resolved on the spot from
 * proc_root (so a VM that appeared since the last refresh is named right);
 * a process that is already gone gets name "pid-<tgid>". Never returns NULL
 * except on allocation failure. The pointer is valid until the next refresh.
 */
const struct vm_info *registry__vm(struct registry *r, uint32_t tgid);
/*
 * registry__vm() between refreshes, at now_ms (the clock of
 * registry__refresh()): a young process (first seen after the first
 * refresh, less than REGISTRY_RECHECK_WINDOW_MS ago) known not to hold a
 * VM has its fds checked again when its last check is REGISTRY_RECHECK_MS
 * old, so that qemu's events of the instants after it created its VM are
 * its VM's, not a plain process's until the next refresh. Older processes
 * cost nothing more (the refresh keeps rechecking young ones, backing off).
 */
#define REGISTRY_RECHECK_MS 100
#define REGISTRY_RECHECK_WINDOW_MS 5000 /* qemu creates its VM within its first seconds */
const struct vm_info *registry__vm_at(struct registry *r, uint32_t tgid, uint64_t now_ms);

/*
 * The vCPU index of thread tid in tgid from its comm ("CPU 3/KVM" -> 3), or
 * -1 when the thread is not a named vCPU thread or is gone.
 */
int registry__vcpu(struct registry *r, uint32_t tgid, uint32_t tid);

/*
 * Fill tids with up to max vCPU thread ids of all known VMs (for the
 * scheduler probe's filter). Returns how many were written.
 */
size_t registry__vcpu_tids(struct registry *r, uint32_t *tids, size_t max);

/*
 * Call fn(tgid, tid, index, ctx) for every named vCPU thread of the live VMs.
 * Stops early and returns fn's value when it is non-zero; returns 0 otherwise.
 */
int registry__for_each_vcpu(struct registry *r,
			    int (*fn)(uint32_t tgid, uint32_t tid, int index, void *ctx),
			    void *ctx);

/*
 * Iterate over known KVM VMs: call fn(info, ctx) for each. Stops early and
 * returns fn's value when it is non-zero; returns 0 otherwise.
 */
int registry__for_each_vm(struct registry *r, int (*fn)(const struct vm_info *, void *), void *ctx);

/*
 * Talk to libvirt at uri instead of "qemu:///system" (a config option, and
 * "test:///default" in tests); uri NULL restores the default. The default
 * is only tried when libvirtd's read-only socket exists; a set uri always
 * is. Takes effect at the next refresh. Returns 0, -ENOMEM, or -EOPNOTSUPP
 * when built without libvirt.
 */
int registry__set_libvirt_uri(struct registry *r, const char *uri);

/*
 * Call fn(vm, event, count, ctx) for every libvirt domain lifecycle event
 * seen while connected: vm is the domain name, event the lower-case libvirt
 * lifecycle name ("defined", "undefined", "started", "suspended", "resumed",
 * "stopped", "shutdown", "pmsuspended", "crashed"), count the cumulative
 * number of such events, never 0. Events are counted by registry__refresh(),
 * which also matches all domains again after any event (so a domain that
 * just started is named at once). Counts of a VM whose last event was
 * "undefined" or "stopped" over an hour ago are forgotten, and so are those
 * of the least recently active VM beyond 1024 VMs. Stops early and returns
 * fn's value when it is non-zero; returns 0 otherwise, and calls nothing
 * without libvirt.
 */
int registry__for_each_lifecycle(struct registry *r,
				 int (*fn)(const char *vm, const char *event, uint64_t count,
					   void *ctx),
				 void *ctx);

/*
 * The number of lifecycle events lost because more than 256 arrived between
 * two refreshes (cumulative; 0 without libvirt).
 */
uint64_t registry__lifecycle_dropped(const struct registry *r);

/* What libvirt's job info says of a domain's long job; see struct vm_job_obs. */
enum vm_job_op {
	VM_JOB_OP_UNKNOWN = 0,
	VM_JOB_OP_MIGRATION_OUT,
	VM_JOB_OP_MIGRATION_IN,
	VM_JOB_OP_SAVE,
	VM_JOB_OP_RESTORE,
	VM_JOB_OP_DUMP,
	VM_JOB_OP_SNAPSHOT,
	VM_JOB_OP_OTHER, /* start, snapshot revert/delete, backup, ... */
};

enum vm_job_result {
	VM_JOB_RUNNING = 0,
	VM_JOB_COMPLETED,
	VM_JOB_FAILED,
	VM_JOB_CANCELLED,
	VM_JOB_UNKNOWN, /* ended, but libvirt kept no statistics of it */
};

/* VM_JOB_HAVE_* bits: which fields of struct vm_job_stats libvirt reported. */
#define VM_JOB_HAVE_ELAPSED (1u << 0)
#define VM_JOB_HAVE_SETUP (1u << 1)
#define VM_JOB_HAVE_DOWNTIME (1u << 2)
#define VM_JOB_HAVE_DATA (1u << 3) /* data_total/processed/remaining */
#define VM_JOB_HAVE_MEMORY (1u << 4) /* mem_total/processed/remaining */
#define VM_JOB_HAVE_DIRTY_RATE (1u << 5)
#define VM_JOB_HAVE_ITERATION (1u << 6)
#define VM_JOB_HAVE_PAGE_SIZE (1u << 7)

/* libvirt's typed job statistics (virDomainGetJobStats), as plain values. */
struct vm_job_stats {
	uint32_t have; /* VM_JOB_HAVE_* */
	uint8_t op; /* enum vm_job_op */
	uint8_t result; /* enum vm_job_result */
	uint64_t elapsed_ms, setup_ms, downtime_ms;
	uint64_t data_total, data_processed, data_remaining; /* bytes */
	uint64_t mem_total, mem_processed, mem_remaining; /* bytes */
	uint64_t dirty_rate; /* pages per second */
	uint64_t page_size; /* bytes */
	uint64_t iteration; /* passes over guest memory so far */
	char errmsg[64]; /* failed jobs, when libvirt says why; else "" */
};

/* What a job-related lifecycle event (VM_JOB_OBS_LIFECYCLE) says. */
enum vm_job_lc {
	VM_JOB_LC_NONE = 0,
	VM_JOB_LC_INCOMING, /* started for an incoming migration */
	VM_JOB_LC_RESTORED, /* started from a saved state file (the restore is over) */
	VM_JOB_LC_PAUSED, /* paused for migration (stop-and-copy) or post-copy */
	VM_JOB_LC_RESUMED, /* resumed after migration (or into post-copy) */
	VM_JOB_LC_STOPPED, /* stopped: migrated away, or saved */
	VM_JOB_LC_POSTCOPY_FAILED, /* post-copy migration failed */
};

enum vm_job_obs_kind {
	VM_JOB_OBS_STATS, /* polled: the job is active, stats are its progress */
	VM_JOB_OBS_ITERATION, /* event: a new pass over guest memory began */
	VM_JOB_OBS_LIFECYCLE, /* event: a lifecycle event that concerns jobs */
	VM_JOB_OBS_COMPLETED, /* event: the job completed, stats are final */
	VM_JOB_OBS_GONE, /* polled: no job any more; stats are final if result set */
};

/*
 * One observation of a domain's long job (migration, save, dump, ...), in
 * the order registry__refresh() made or received them. Events carry the
 * time libvirt delivered them; polls the time of the poll.
 */
struct vm_job_obs {
	char name[128];
	char uuid[40];
	uint8_t kind; /* enum vm_job_obs_kind */
	uint8_t lc; /* VM_JOB_OBS_LIFECYCLE: enum vm_job_lc */
	uint64_t iteration; /* VM_JOB_OBS_ITERATION */
	uint64_t ts_ms; /* CLOCK_MONOTONIC */
	struct vm_job_stats stats; /* _STATS, _COMPLETED, _GONE */
};

/*
 * Call fn(obs, ctx) for every job observation of the last registry__refresh().
 *
 * A refresh drains libvirt's migration-iteration, job-completed and
 * job-related lifecycle events (migrated, saved, restored, ...) queued by
 * libvirt's event thread, then polls virDomainGetJobStats() on the tick
 * thread: once a refresh (so at most once a second) for domains whose job
 * is known to be active, and for all active domains every 5 s to find jobs
 * that announced themselves with no event. When a job is no longer active
 * it is reported _GONE, with the completed job's statistics when libvirt
 * kept them (read with VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED, so other
 * clients still see them). Stops early and returns fn's value when it is
 * non-zero; returns 0 otherwise, and calls nothing without libvirt.
 */
int registry__for_each_job(struct registry *r, int (*fn)(const struct vm_job_obs *obs, void *ctx),
			   void *ctx);

/*
 * Poll libvirt's job statistics at every refresh (on: the span synthesizer's
 * registry), or not (off, the default: the tick's registry needs no jobs).
 * Events are observed either way.
 */
void registry__track_jobs(struct registry *r, bool on);

#endif /* NOVAMON_REGISTRY_H */
