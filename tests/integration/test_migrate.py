#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Live migration spans from a real migration between two real libvirtds.

Two libvirtd 9.0 (each with its virtlogd) run as plain processes on this
machine, each in its own mount namespace with private /etc/libvirt (its own
host_uuid), /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and
/var/log/libvirt. A TCG domain (type='qemu', 256 MiB, no disk but a floppy
whose boot sector fills 192 MiB of guest memory once and then keeps
rewriting 16 MiB, so that a migration takes seconds and needs more than one
pass) is live-migrated with `virsh migrate --live` over loopback TCP at
100 MiB/s from A to B, back from B to A, and once more from A to B, aborted
with `virsh domjobabort`. A `novamon run --spans-file` in A's mount
namespace (so that it finds A at /run/libvirt) must write:

1. one "vm migrate" span, direction out, status OK, with libvirt's byte
   counts, iterations and downtime, and its phases as children: setup, the
   passes (the first with the bytes still to send from a poll of the job
   stats), stop_and_copy (as long as the downtime) and completion;
2. one "vm migrate", direction in, status OK, with a stop_and_copy child;
3. one "vm migrate", direction out, status ERROR, for the aborted one.

Skips (exit 77) without root, libvirtd, virsh, qemu-system-x86_64, as/ld or
unshare/nsenter, or when libvirtd does not come up; fails instead when
NOVAMON_REQUIRE_E2E=1 or NOVAMON_REQUIRE_BPF=1. Every process it starts
(libvirtd, virtlogd, qemu, novamon) is stopped by pid, also on failure.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from harness import Daemon, fail, free_port, skip

REQUIRE = ("NOVAMON_REQUIRE_E2E", "NOVAMON_REQUIRE_BPF")
MIB = 1 << 20
NAME = f"novamon-mig-{os.getpid()}"

# Real mode -> flat 32-bit protected mode; fill 192 MiB from 1 MiB once,
# then write one word per page of the first 16 MiB, forever.
BOOT_S = r"""
.code16
.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	lgdt gdtr
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmp $0x08, $pm
.code32
pm:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7c00, %esp
	cld
	mov $0x100000, %edi
	mov $(192 * 1024 * 1024 / 4), %ecx
	mov $0x12345678, %eax
	rep stosl
	xor %ebx, %ebx
hot:
	inc %ebx
	mov $0x100000, %edi
	mov $(16 * 1024 * 1024 / 4096), %ecx
1:	mov %ebx, (%edi)
	add $4096, %edi
	loop 1b
	jmp hot
.p2align 3
gdt:	.quad 0
	.quad 0x00cf9a000000ffff
	.quad 0x00cf92000000ffff
gdtr:	.word 23
	.long gdt
.org 510
.word 0xaa55
"""

DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='fd'/></os>
  <devices>
    <emulator>{qemu}</emulator>
    <disk type='file' device='floppy'>
      <source file='{floppy}'/><target dev='fda' bus='fdc'/><readonly/>
    </disk>
    <memballoon model='none'/>
  </devices>
</domain>
"""

# Bind the private state over libvirt's paths, then run virtlogd and libvirtd.
NS_SCRIPT = """set -e
mount --bind "$D/etc" /etc/libvirt
mount --bind "$D/run" /run/libvirt
mount --bind "$D/lib" /var/lib/libvirt
mount --bind "$D/cache" /var/cache/libvirt
mount --bind "$D/log" /var/log/libvirt
virtlogd -p "$D/virtlogd.pid" >"$D/virtlogd.out" 2>&1 &
exec libvirtd -p "$D/libvirtd.pid" >"$D/libvirtd.out" 2>&1
"""

LIBVIRT_DIRS = ("/etc/libvirt", "/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt",
                "/var/log/libvirt")


def kill_pid(pid, timeout=10):
    """SIGTERM pid, SIGKILL after timeout s; reap it when it is our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            if not os.path.exists(f"/proc/{pid}"):
                return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def our_qemu_pids():
    """The qemu processes of our domain (its name is unique to this run)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu" in argv[0] and f"guest={NAME},".encode() in argv:
            pids.append(int(d))
    return pids


class Libvirtd:
    """libvirtd + virtlogd in a mount namespace of their own, state under root/tag."""

    def __init__(self, root, tag, host_uuid):
        self.dir = os.path.join(root, tag)
        self.proc = None
        for sub in ("run", "lib/qemu", "cache/qemu", "log/qemu"):
            os.makedirs(os.path.join(self.dir, sub))
        shutil.copytree("/etc/libvirt", os.path.join(self.dir, "etc"), symlinks=True)
        with open(os.path.join(self.dir, "etc", "libvirtd.conf"), "w") as f:
            f.write(f'host_uuid = "{host_uuid}"\nauth_unix_ro = "none"\n'
                    'auth_unix_rw = "none"\n')
        # No cgroups (both daemons would name the domain's the same), no
        # private /dev, no security driver: two daemons on one host.
        with open(os.path.join(self.dir, "etc", "qemu.conf"), "w") as f:
            f.write('user = "root"\ngroup = "root"\ndynamic_ownership = 0\n'
                    'remember_owner = 0\nsecurity_driver = "none"\n'
                    'cgroup_controllers = [ ]\nnamespaces = [ ]\n')
        self.uri = f"qemu:///system?socket={self.dir}/run/libvirt-sock"

    def start(self):
        env = dict(os.environ, D=self.dir)
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private",
                                      "sh", "-c", NS_SCRIPT], env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                skip(f"libvirtd exited with {self.proc.returncode}: {self.log_tail()}",
                     require=REQUIRE)
            r = subprocess.run(["virsh", "-c", self.uri, "version"], capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.3)
        skip(f"libvirtd did not answer within 30 s: {self.log_tail()}", require=REQUIRE)

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "libvirtd.out")) as f:
                return "".join(f.readlines()[-5:])
        except OSError:
            return "(no log)"

    def virsh(self, *args, check=True, timeout=120):
        r = subprocess.run(["virsh", "-c", self.uri, *args], capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode:
            fail(f"virsh {' '.join(args)}: {r.stderr.strip()}\nlibvirtd: {self.log_tail()}")
        return r

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.virsh("destroy", NAME, check=False, timeout=30)
        kill_pid(self.proc.pid)  # unshare execs sh, sh execs libvirtd
        pid = read_pid(os.path.join(self.dir, "virtlogd.pid"))
        if pid:
            kill_pid(pid)
        self.proc = None


def need_tools():
    if os.geteuid() != 0:
        skip("needs root (libvirtd, mount namespaces)", require=REQUIRE)
    for tool in ("libvirtd", "virtlogd", "virsh", "qemu-system-x86_64", "as", "ld",
                 "unshare", "nsenter"):
        if not shutil.which(tool):
            skip(f"needs {tool} (libvirt-daemon-system, libvirt-clients, qemu-system-x86, "
                 "binutils, util-linux)", require=REQUIRE)
    if not os.path.isdir("/etc/libvirt"):
        skip("needs /etc/libvirt (libvirt-daemon-system)", require=REQUIRE)


def build_floppy(tmp):
    src, obj, img = (os.path.join(tmp, n) for n in ("boot.S", "boot.o", "fd.img"))
    with open(src, "w") as f:
        f.write(BOOT_S)
    subprocess.run(["as", "--32", "-o", obj, src], check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-Ttext", "0x7c00", "--oformat", "binary",
                    "-o", img, obj], check=True)
    if os.path.getsize(img) != 512:
        fail(f"boot sector is {os.path.getsize(img)} bytes")
    os.truncate(img, 1474560)
    return img


def read_spans(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if rec["type"] == "span" and rec["attributes"].get("novamon.vm") == NAME:
                    out.append(rec)
    except FileNotFoundError:
        pass
    return out


def migrate_spans(spans):
    return [s for s in spans if s["name"] == "vm migrate"]


def wait_migrations(path, n, timeout=20):
    deadline = time.time() + timeout
    while True:
        spans = read_spans(path)
        if len(migrate_spans(spans)) >= n or time.time() > deadline:
            return spans
        time.sleep(0.25)


def children(spans, parent):
    return [s for s in spans if s["parent_span_id"] == parent["span_id"]]


def show(spans):
    return "\n".join(f'{s["name"]} {(s["end_ns"] - s["start_ns"]) / 1e6:.0f} ms '
                     f'status={s["status"]} {json.dumps(s["attributes"])}' for s in spans)


def check_out(spans, m, wall_s):
    a = m["attributes"]
    print(f"out: {show([m] + children(spans, m))}", flush=True)
    if m["status"] != 1 or a.get("novamon.job.status") != "completed":
        fail(f"migration out not OK:\n{show([m])}")
    if a.get("novamon.job.data.total_bytes", 0) < 256 * MIB:
        fail(f"data total below the guest's 256 MiB: {a}")
    if a.get("novamon.job.data.processed_bytes", 0) < 150 * MIB:
        fail(f"less than the 192 MiB the guest wrote was sent: {a}")
    if a.get("novamon.job.data.remaining_bytes") != 0:
        fail(f"bytes remain after a completed migration: {a}")
    if a.get("novamon.job.iterations", 0) < 2 or a.get("novamon.job.downtime_ms", 0) <= 0:
        fail(f"no iterations or downtime: {a}")
    dur = (m["end_ns"] - m["start_ns"]) / 1e9
    if not 0.5 <= dur <= wall_s + 1.5:
        fail(f"migration span lasts {dur:.2f} s, virsh took {wall_s:.2f} s")
    kids = children(spans, m)
    for k in kids:
        if k["trace_id"] != m["trace_id"]:
            fail(f"{k['name']} not in the migration's trace")
        if k["start_ns"] < m["start_ns"] or k["end_ns"] > m["end_ns"]:
            fail(f"{k['name']} outside its migration:\n{show([m, k])}")
    names = [k["name"] for k in kids]
    for want in ("vm migrate setup", "vm migrate iteration", "vm migrate stop_and_copy",
                 "vm migrate completion"):
        if want not in names:
            fail(f"no {want!r} phase:\n{show(kids)}")
    iters = sorted((k for k in kids if k["name"] == "vm migrate iteration"),
                   key=lambda k: k["start_ns"])
    numbers = [k["attributes"]["novamon.job.iteration"] for k in iters]
    if numbers != sorted(set(numbers)) or numbers[0] != 1:
        fail(f"passes {numbers}")
    first = iters[0]["attributes"]
    if first.get("novamon.job.memory.remaining_bytes", 0) <= 0:
        fail(f"the first pass (seconds long) has no polled bytes to send: {first}")
    sc = next(k for k in kids if k["name"] == "vm migrate stop_and_copy")
    if sc["attributes"].get("novamon.job.downtime_ms") != a["novamon.job.downtime_ms"]:
        fail(f"stop_and_copy {sc['attributes']} vs downtime {a}")


def main():
    need_tools()
    created_dirs = [d for d in LIBVIRT_DIRS if not os.path.exists(d)]
    tmp = tempfile.mkdtemp(prefix="novamon-migrate-", dir="/var/tmp")
    daemons, nova = [], None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("SIGTERM"))
    try:
        for d in created_dirs:
            os.makedirs(d)
        floppy = build_floppy(tmp)
        a = Libvirtd(tmp, "a", str(uuid.uuid4()))
        b = Libvirtd(tmp, "b", str(uuid.uuid4()))
        daemons = [a, b]
        a.start()
        b.start()
        xml = os.path.join(tmp, "dom.xml")
        with open(xml, "w") as f:
            f.write(DOMAIN_XML.format(name=NAME, qemu=shutil.which("qemu-system-x86_64"),
                                      floppy=floppy))

        spans_path = os.path.join(tmp, "spans.jsonl")
        nova = Daemon("--spans-file", spans_path, probes="block",
                      wrap=["nsenter", f"--mount=/proc/{a.proc.pid}/ns/mnt", "--"])
        a.virsh("create", xml)
        time.sleep(2.5)  # the guest fills its memory

        def migrate(src, dst, *extra):
            port = free_port()
            return ["virsh", "-c", src.uri, "migrate", "--live", "--unsafe", *extra, NAME,
                    dst.uri, "--migrateuri", f"tcp://127.0.0.1:{port}"]

        t0 = time.time()
        subprocess.run(migrate(a, b, "--bandwidth", "100"), check=True, timeout=120)
        wall_out = time.time() - t0
        spans = wait_migrations(spans_path, 1)
        ms = migrate_spans(spans)
        if len(ms) != 1:
            fail(f"{len(ms)} 'vm migrate' spans after one migration:\n{show(spans)}")
        check_out(spans, ms[0], wall_out)

        subprocess.run(migrate(b, a, "--bandwidth", "100"), check=True, timeout=120)
        spans = wait_migrations(spans_path, 2)
        ms = migrate_spans(spans)
        if len(ms) != 2:
            fail(f"{len(ms)} 'vm migrate' spans after two migrations:\n{show(spans)}")
        m = ms[1]
        print(f"in: {show([m] + children(spans, m))}", flush=True)
        if m["attributes"].get("novamon.job.direction") != "in" or m["status"] != 1:
            fail(f"migration in:\n{show([m])}")
        if m["attributes"].get("novamon.job.data.processed_bytes", 0) < 150 * MIB:
            fail(f"migration in bytes: {m['attributes']}")
        if "vm migrate stop_and_copy" not in [k["name"] for k in children(spans, m)]:
            fail(f"migration in without stop_and_copy:\n{show(children(spans, m))}")

        # A migration aborted half-way: slow enough to be caught running.
        p = subprocess.Popen(migrate(a, b, "--bandwidth", "20"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 20
            while "Unbounded" not in a.virsh("domjobinfo", NAME, check=False).stdout:
                if time.time() > deadline or p.poll() is not None:
                    fail("the slow migration never showed as an active job")
                time.sleep(0.2)
            time.sleep(1.5)
            a.virsh("domjobabort", NAME)
            if p.wait(timeout=60) == 0:
                fail("virsh migrate succeeded although aborted")
        finally:
            if p.poll() is None:
                kill_pid(p.pid)
        spans = wait_migrations(spans_path, 3)
        ms = migrate_spans(spans)
        if len(ms) != 3:
            fail(f"{len(ms)} 'vm migrate' spans after an aborted third:\n{show(spans)}")
        m = ms[2]
        print(f"aborted: {show([m] + children(spans, m))}", flush=True)
        at = m["attributes"]
        if m["status"] != 2 or at.get("novamon.job.status") != "failed" or \
                at.get("novamon.job.direction") != "out" or "error.type" not in at:
            fail(f"aborted migration not an error:\n{show([m])}")
        if at.get("novamon.job.data.processed_bytes", 0) >= at.get(
                "novamon.job.data.total_bytes", 0):
            fail(f"aborted migration sent everything? {at}")
        print("PASS", flush=True)
    finally:
        if nova:
            try:
                nova.stop()
            except SystemExit:
                pass  # already said why; clean up the rest
        for d in daemons:
            d.stop()
        for pid in our_qemu_pids():
            kill_pid(pid)
        shutil.rmtree(tmp, ignore_errors=True)
        for d in reversed(created_dirs):
            try:
                os.rmdir(d)
            except OSError:
                pass


if __name__ == "__main__":
    main()
