# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the integration tests: run a real `novamon run`,
scrape it, and skip (exit 77) or fail when the machine cannot run a test.

Environment:
  NOVAMON_BIN          path to the novamon binary (set by meson)
  NOVAMON_REQUIRE_BPF  =1: a test that would skip for lack of root/BPF/BTF fails
  NOVAMON_REQUIRE_KVM  =1: a test that would skip for lack of /dev/kvm fails
"""
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SKIP = 77


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def skip(msg, require=("NOVAMON_REQUIRE_BPF",)):
    for var in require:
        if os.environ.get(var) == "1":
            fail(f"{msg} (and {var}=1, so this skip is a failure)")
    print(f"SKIP: {msg}", flush=True)
    sys.exit(SKIP)


def need_bpf():
    if os.geteuid() != 0:
        skip("needs root (CAP_BPF, CAP_PERFMON)")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        skip("needs kernel BTF (/sys/kernel/btf/vmlinux)")


def kvm_usable():
    """True when /dev/kvm exists and KVM_CREATE_VM works (a nested PVM host has neither)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        vm = fcntl.ioctl(fd, 0xAE01, 0)  # KVM_CREATE_VM
        os.close(vm)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def need_kvm():
    if not kvm_usable():
        skip("needs a usable /dev/kvm (KVM_CREATE_VM failed or no device)",
             require=("NOVAMON_REQUIRE_KVM",))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_exposition(text):
    """{(name, frozenset(labels.items())): value} from Prometheus text format."""
    out = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        if not m:
            fail(f"unparsable exposition line: {line!r}")
        labels = {}
        if m.group(3):
            for k, v in label_re.findall(m.group(3)):
                labels[k] = v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


class Daemon:
    """A `novamon run` on a free loopback port, stopped on exit."""

    # Capture tests count block I/O exactly: the store's own disk writes (WAL)
    # would be counted too, so they run without it unless a test asks.
    DEFAULT_CONFIG = "store:\n  enabled: false\n"

    def __init__(self, *args, probes=None, config=DEFAULT_CONFIG, wrap=()):
        import tempfile
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = tempfile.NamedTemporaryFile("w", prefix="novamon-", suffix=".yaml")
        self.config.write(config)
        self.config.flush()
        # wrap: a command prefix, e.g. nsenter into a libvirtd's mount namespace
        cmd = list(wrap) + [os.environ.get("NOVAMON_BIN", "novamon"), "run", "--listen",
               f"127.0.0.1:{self.port}", "--config", self.config.name]
        if probes:
            cmd += ["--probes", probes]
        cmd += list(args)
        self.log = open(f"/tmp/novamon-test-{os.getpid()}-{self.port}.log", "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail(f"novamon exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                h = self.health()
                if h.get("status") in ("ok", "degraded"):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        fail(f"novamon did not answer /health within 20 s:\n{self.logs()}")

    def logs(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return r.status, r.headers, r.read().decode()

    def health(self):
        return json.loads(self.get("/health")[2])

    def metrics(self):
        return parse_exposition(self.get("/metrics")[2])

    def require_attached(self, family, programs):
        h = self.health()
        probes = {(p["family"], p["program"]): p for p in h["capture"]["probes"]}
        for prog in programs:
            p = probes.get((family, prog))
            if not p or not p["attached"]:
                reason = p["reason"] if p else "no status"
                fail(f"probe {family}/{prog} not attached: {reason}\n{json.dumps(h, indent=1)}")

    def wait_tick(self, n=2):
        """Wait for n more ticks so that events already produced are published."""
        time.sleep(n + 0.2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                fail("novamon did not stop within 10 s of SIGTERM")
        self.log.close()
        self.config.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def value(metrics, name, **labels):
    """Sum of the samples of name whose labels include the given ones."""
    want = set(labels.items())
    return sum(v for (n, ls), v in metrics.items() if n == name and want <= set(ls))


def boot_disk_guest(qemu, name, disk_path):
    """A qemu/KVM guest named `guest=name` whose SeaBIOS reads the first sectors
    of disk_path looking for a boot sector: cache=none + aio=threads make them
    O_DIRECT preads from qemu's own threads (the VM's block I/O). The caller
    terminates it."""
    return subprocess.Popen([qemu, "-enable-kvm", "-name", f"guest={name},debug-threads=on",
                             "-smp", "1", "-m", "64", "-nodefaults", "-display", "none",
                             "-serial", "null", "-monitor", "none", "-boot", "c",
                             "-drive", f"file={disk_path},format=raw,if=ide,cache=none,aio=threads"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class LoopDevice:
    """A loop device over a sparse 16 MiB file; direct_reads() issues exactly
    n 4 KiB O_DIRECT reads at distinct offsets (one block request each)."""

    SIZE = 16 << 20
    BS = 4096

    def __init__(self):
        import tempfile
        f = tempfile.NamedTemporaryFile(prefix="novamon-loop-", dir="/var/tmp", delete=False)
        f.truncate(self.SIZE)
        f.close()
        self.backing = f.name
        try:
            self.path = run(["losetup", "-f", "--show", self.backing]).stdout.strip()
        except Exception:
            os.unlink(self.backing)
            raise
        self.name = os.path.basename(self.path)

    def direct_reads(self, n):
        import mmap
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, self.BS)  # page aligned, as O_DIRECT wants
        try:
            for i in range(n):
                if os.preadv(fd, [buf], (i * self.BS) % self.SIZE) != self.BS:
                    fail("short O_DIRECT read")
        finally:
            os.close(fd)
            buf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        subprocess.run(["losetup", "-d", self.path], capture_output=True)
        os.unlink(self.backing)
