/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvmstat: KVM's own statistics from debugfs, the numbers kvm_stat shows.
 *
 * Layout of <dir> (/sys/kernel/debug/kvm in production):
 *   <stat>                    host-wide sums (not exported: the per-VM files
 *                             hold the same numbers split by VM)
 *   <pid>-<fd>/<stat>         one directory per VM, named by the owning
 *                             process and the VM fd (older kernels: anything
 *                             after "<pid>-")
 *   <pid>-<fd>/vcpu<N>/<stat> one directory per vCPU
 * Every stat file holds a single integer. Files that are unreadable or hold
 * anything else (tables, hex) are skipped quietly: the kernel decides which
 * files exist and their permissions, and a VM may vanish mid-scan.
 *
 * Runs at 1 Hz on the tick thread; allocates.
 */
#ifndef NOVAMON_KVMSTAT_H
#define NOVAMON_KVMSTAT_H

#include <stdint.h>

struct registry;
struct metric_set;

#define KVMSTAT_DEFAULT_DIR "/sys/kernel/debug/kvm"

/*
 * Read every VM and vCPU stat under dir (NULL means KVMSTAT_DEFAULT_DIR) and
 * add them to set as two gauge families:
 *   novamon_kvm_debugfs_vm_stat{vm,stat}
 *   novamon_kvm_debugfs_vcpu_stat{vm,vcpu,stat}
 * vm is registry__vm(reg, pid)->name. Several VMs of one process (same vm
 * name) are summed per stat, so every series is unique.
 *
 * Returns 0; -ENOENT when dir does not exist (debugfs not mounted, or kvm
 * not loaded), leaving set untouched; -EACCES/-ENOTDIR/... when dir cannot
 * be read; -ENOMEM; or the error of the metric set.
 */
int kvmstat__collect(const char *dir, struct registry *reg, struct metric_set *set);

/*
 * kvmstat__collect() with the VM naming done by vm_name(ctx, pid) instead of
 * the registry (kvmstat__collect() is this with registry__vm()). vm_name
 * returns the name to use, or NULL on allocation failure (-ENOMEM); the
 * string need only stay valid until the next call. For unit tests and
 * tools that have no registry.
 */
int kvmstat__collect_named(const char *dir, const char *(*vm_name)(void *ctx, uint32_t pid),
			   void *ctx, struct metric_set *set);

#endif /* NOVAMON_KVMSTAT_H */
