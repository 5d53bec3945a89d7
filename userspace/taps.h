/* SPDX-License-Identifier: Apache-2.0 */
/*
 * taps: which VM owns which tap interface. A qemu process holds its taps as
 * /dev/net/tun fds, and the kernel names the interface in the fd's fdinfo
 * ("iff:\tvnet3"), with or without libvirt. Rebuilt from the registry's VMs
 * at most every TAPS_REFRESH_MS, and on demand for an interface not seen yet.
 * Owned by the tick thread; not thread safe.
 */
#ifndef NOVAMON_TAPS_H
#define NOVAMON_TAPS_H

#include <stdint.h>

#define TAPS_REFRESH_MS 10000

struct registry;
struct taps;

/* proc_root is "/proc" in production. Returns NULL with errno set. */
struct taps *taps__new(const char *proc_root);
void taps__free(struct taps *t);

/* Rescan the taps of every VM in reg when the last scan is older than TAPS_REFRESH_MS. */
int taps__refresh(struct taps *t, struct registry *reg, uint64_t now_ms);

/* The tgid of the VM owning interface ifname, or 0 when none does. */
uint32_t taps__owner(const struct taps *t, const char *ifname);

#endif /* NOVAMON_TAPS_H */
