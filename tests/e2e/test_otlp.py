# SPDX-License-Identifier: Apache-2.0
"""OTLP export checked by an independent decoder (issue #5).

tests/e2e/otlp_sink/sink.js is an OTLP/HTTP sink in Node that decodes every
request with OpenTelemetry's own generated protobufjs definitions
(@opentelemetry/otlp-grpc-exporter-base@0.41.2, build/src/generated/root.js)
and records it. This test runs `novamon run --otlp-endpoint` against it, with
real block I/O (O_DIRECT reads on a loop device) and, where /dev/kvm is usable,
a real qemu/KVM guest, and checks what arrives against what novamon observed:

  test_0  the sink's own selftest (node round trips through the same decoder)
  test_1  traces: 200 O_DIRECT 4 KiB reads -> exactly 200 "block read" spans on
          that device: attributes, ids, root parentage, timing in the test's
          wall-clock window, end - start = queue + service time
  test_2  metrics: novamon_block_requests_total as a monotonic cumulative Sum
          whose last point equals /metrics; the latency histogram as an OTLP
          Histogram whose explicit bounds and counts are /metrics' buckets
  test_3  logs: a "capture.attach" log record
  test_4  KVM: block reads issued by a qemu guest's threads are children of a
          "vm activity" span of that VM, and the VM's metric points carry
          exemplars whose trace and span IDs are that VM's exported spans
          (skipped without a usable /dev/kvm)
  test_5  faults: 503 + Retry-After for 3 requests, then the sink killed for
          about 5 s, then restarted on the same port: every item novamon counts
          as sent arrived, every span generated arrived once, and a request
          body arrives twice only after an attempt that failed

Assertions are tagged with what they depend on:
  [sink]     the sink only (verified when this file was written)
  [exporter] api/otlp.c: --otlp-endpoint, the otlp: config section, gzip,
             headers, batching, retries, the on-disk queue and its metrics
  [spans]    userspace/spans/: span synthesis, sampling, daemon-event logs
  [metrics]  the OTLP mapping of /metrics (names, labels, types, buckets)

Environment: NOVAMON_BIN (set by meson), NOVAMON_REQUIRE_E2E=1 (a missing
node/npm, npm packages, root or BTF is a failure, not a skip),
NOVAMON_REQUIRE_KVM=1 (test_4 may not skip), NOVAMON_E2E_KEEP=1 (keep the
temporary directories: sink state, logs).

Run as root: /usr/bin/python3 tests/e2e/test_otlp.py [-v] [-k PATTERN]
Exit status: 0 pass, 1 fail, 77 skip.
"""
import json
import mmap
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import e2e  # noqa: E402
import harness  # noqa: E402
from e2e import log, wait_for  # noqa: E402

SINK_DIR = os.path.join(HERE, "otlp_sink")
N_READS = 200
BS = 4096
# Span times are kernel timestamps converted to the Unix epoch: allow this much
# clock-conversion slack around the test's own wall-clock window.
WINDOW_SLACK_NS = 250_000_000
TICK_S = 1.0
API_HEADER = ("X-Novamon-Test", "otlp-e2e")
EXPORTER_CONFIG = f"""store:
  enabled: false
otlp:
  headers:
    {API_HEADER[0]}: {API_HEADER[1]}
  batch_max_items: 50
  batch_max_delay_ms: 200
  queue_max_bytes: 67108864
spans:
  budget_per_second: 100000
"""


def skip_all(msg):
    """Skip the whole file (exit 77), or fail under NOVAMON_REQUIRE_E2E=1 (or
    NOVAMON_REQUIRE_BPF=1 for what the kernel tests also need)."""
    for var in ("NOVAMON_REQUIRE_E2E", "NOVAMON_REQUIRE_BPF"):
        if os.environ.get(var) == "1":
            e2e.fail(f"{msg} (and {var}=1, so this skip is a failure)")
    log(f"SKIP: {msg}")
    sys.exit(e2e.SKIP)


# --------------------------------------------------------------------------
# The sink

def ensure_sink_installed():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        skip_all("node and npm are needed for the OTLP sink (apt-get install nodejs npm)")
    try:
        ver = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
        major = int(ver.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        skip_all(f"cannot run node: {e}")
    if major < 18:
        skip_all(f"node {ver.strip()} is too old for the sink (needs >= 18)")
    root_js = os.path.join(SINK_DIR, "node_modules", "@opentelemetry", "otlp-grpc-exporter-base",
                           "build", "src", "generated", "root.js")
    if not os.path.exists(root_js) or not os.path.isdir(os.path.join(SINK_DIR, "node_modules", "protobufjs")):
        log(f"npm ci in {SINK_DIR}")
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SINK_DIR,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0 or not os.path.exists(root_js):
            skip_all(f"npm ci in {SINK_DIR} failed (is the npm registry reachable?): "
                     f"{(r.stderr or r.stdout).strip()[-800:]}")
    return node


class Sink(e2e.Process):
    """sink.js on 127.0.0.1:port with a state file, so that it can be killed and
    started again on the same port without losing what it recorded."""

    def __init__(self, node, port=None):
        self.dir = quiet_tmpdir("novamon-e2e-otlp-sink-")
        self.port = port or e2e.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = os.path.join(self.dir, "received.jsonl")
        argv = [node, os.path.join(SINK_DIR, "sink.js"), "--port", str(self.port), "--state", self.state]
        super().__init__("otlp-sink", argv, os.path.join(self.dir, "sink.log"), cwd=SINK_DIR)
        self.kills = []  # (instance pid, time.time() of the kill)
        self._cache = {}  # path -> records fetched so far

    def start(self, timeout=30):
        super().start()
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if not self.alive():
                e2e.fail(f"the OTLP sink exited at start-up:\n{self.log_tail()}")
            st, text = e2e.http_get(self.url + "/_health", timeout=2)
            if st == 200 and json.loads(text)["instance"]["pid"] == self.proc.pid:
                return self
            time.sleep(0.1)
        e2e.fail(f"the OTLP sink is not serving after {timeout} s:\n{self.log_tail()}")

    def kill9(self):
        pid = self.proc.pid
        super().kill9()
        self.kills.append((pid, time.time()))

    def _post(self, path, obj):
        req = urllib.request.Request(self.url + path, data=json.dumps(obj).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def mode(self, **kw):
        return self._post("/_mode", kw)

    def reset(self):
        self._cache.clear()
        return self._post("/_reset", {})

    def records(self, path=None, fresh=False):
        """The recorded requests (to `path` only, if given), oldest first.
        Polls fetch only what is new since the last call; fresh=True fetches
        everything again (a record's "done" flag is set after it is fetched)."""
        seen = [] if fresh else self._cache.get(path, [])
        q = [f"since={seen[-1]['seq']}"] if seen else []
        q += [f"path={path}"] if path else []
        st, text = e2e.http_get(self.url + "/_received?" + "&".join(q), timeout=60)
        if st != 200:
            e2e.fail(f"GET {self.url}/_received: {st} {text[:300]}")
        recs = seen + json.loads(text)["requests"]
        self._cache[path] = recs
        return list(recs)


# --------------------------------------------------------------------------
# Reading decoded OTLP (the sink's JSON: protobufjs toObject, ids as hex,
# 64-bit integers as decimal strings, enums by name)

def any_value(v):
    if not v or not v.get("value"):
        return None
    kind = v["value"]
    x = v[kind]
    if kind == "intValue":
        return int(x)
    if kind == "arrayValue":
        return [any_value(e) for e in x.get("values", [])]
    if kind == "kvlistValue":
        return attrs(x.get("values", []))
    return x


def attrs(kvs):
    return {kv["key"]: any_value(kv.get("value")) for kv in kvs or []}


def accepted(recs):
    return [r for r in recs if r["status"] == 200 and r["decoded"] is not None]


def spans_of(recs):
    """(record, resource attributes, scope, span with .attrs) of every span."""
    out = []
    for r in recs:
        if r["signal"] != "traces":
            continue
        for rs in r["decoded"]["resourceSpans"]:
            ra = attrs(rs.get("resource", {}).get("attributes"))
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    sp = dict(sp, attrs=attrs(sp["attributes"]))
                    out.append((r, ra, ss.get("scope"), sp))
    return out


def metrics_of(recs):
    """(record, resource attributes, metric) of every metric."""
    out = []
    for r in recs:
        if r["signal"] != "metrics":
            continue
        for rm in r["decoded"]["resourceMetrics"]:
            ra = attrs(rm.get("resource", {}).get("attributes"))
            for sm in rm["scopeMetrics"]:
                for m in sm["metrics"]:
                    out.append((r, ra, m))
    return out


def logs_of(recs):
    out = []
    for r in recs:
        if r["signal"] != "logs":
            continue
        for rl in r["decoded"]["resourceLogs"]:
            ra = attrs(rl.get("resource", {}).get("attributes"))
            for sl in rl["scopeLogs"]:
                for lr in sl["logRecords"]:
                    out.append((r, ra, dict(lr, attrs=attrs(lr["attributes"]))))
    return out


def point_value(dp):
    return float(dp[dp["value"]]) if dp.get("value") else None


def series_points(recs, name, kind, **want):
    """Data points of metric `name` (of `kind`) whose attributes include want."""
    pts = []
    for _, _, m in metrics_of(recs):
        if m["name"] != name or m.get("data") != kind:
            continue
        for dp in m[kind]["dataPoints"]:
            a = attrs(dp["attributes"])
            if all(a.get(k) == v for k, v in want.items()):
                pts.append((m, dp, a))
    pts.sort(key=lambda x: int(x[1]["timeUnixNano"]))
    return pts


def transport_problems(recs):
    """Requests the sink could not take (decode errors, wrong media type, wrong
    path) and spec violations it noticed, as readable lines. [exporter]"""
    out = []
    for r in recs:
        if r["error"]:
            out.append(f"#{r['seq']} {r['method']} {r['path']}: answered {r['status']}: {r['error']}")
        for p in r["problems"]:
            out.append(f"#{r['seq']} {r['path']}: {p}")
    return out


def quiet_tmpdir(prefix):
    """A temporary directory on tmpfs where there is one: files written there
    are no block I/O, so neither the sink's records nor novamon's own OTLP
    queue turn into spans that novamon then sends to the sink."""
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix=prefix, dir=shm)
    e2e._tmpdirs.append(d)  # removed at exit (kept with NOVAMON_E2E_KEEP=1)
    return d


def daemon_start(config, probes, endpoint):
    """novamon run --otlp-endpoint ENDPOINT with its own state_dir: the OTLP
    queue lives in state_dir/otlp, and a shared or stale one would replay
    another run's data to this sink."""
    if not os.environ.get("NOVAMON_BIN"):
        os.environ["NOVAMON_BIN"] = e2e.novamon_bin()
    state = quiet_tmpdir("novamon-e2e-otlp-state-")
    return harness.Daemon("--otlp-endpoint", endpoint, probes=probes,
                          config=f"state_dir: {state}\n{config}")


def otlp_counters(d):
    """The exporter's own counters from /metrics, {(name, labels dict items): v}. [exporter]"""
    m = d.metrics()
    return {k: v for k, v in m.items() if k[0].startswith("novamon_otlp_")}


def sum_of(counters, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in counters.items() if n == name and want <= set(ls))


# --------------------------------------------------------------------------

class OtlpExport(unittest.TestCase):
    """One sink, one daemon (block, kvm, sched probes), one loop device with
    N_READS O_DIRECT reads; test_1..4 read what arrived."""

    @classmethod
    def setUpClass(cls):
        cls.node = NODE
        cls.sink = Sink(NODE).start()
        cls.loop = harness.LoopDevice()
        cls.addClassCleanup(cls.loop.__exit__, None, None, None)
        cls.t_daemon = time.time_ns()
        cls.d = daemon_start(EXPORTER_CONFIG, "block,kvm,sched", cls.sink.url)
        cls.addClassCleanup(cls.d.stop)
        cls.d.require_attached("block", ["block_rq_issue", "block_rq_complete"])
        # The exporter is up once a metrics request has arrived. [exporter]
        wait_for("a first /v1/metrics request at the sink", lambda: cls.sink.records("/v1/metrics"), 30,
                 on_timeout=lambda: f"\nnovamon log:\n{cls.d.logs()[-3000:]}")
        cls.d.wait_tick(1)
        cls.before = cls.d.metrics()
        cls.t0 = time.time_ns()
        cls.loop.direct_reads(N_READS)
        cls.t1 = time.time_ns()
        cls.tid = threading.get_native_id()
        log(f"{N_READS} O_DIRECT reads on {cls.loop.name} in {(cls.t1 - cls.t0) / 1e6:.1f} ms")

    def block_spans(self, recs, device, name="block read"):
        return [s for s in spans_of(accepted(recs))
                if s[3]["name"] == name and s[3]["attrs"].get("system.device") == device]

    def test_0_sink_selftest(self):
        """[sink] the decoder itself round-trips what OpenTelemetry's definitions encode."""
        r = subprocess.run([self.node, "selftest.js"], cwd=SINK_DIR, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, f"sink selftest failed:\n{r.stdout}{r.stderr}")

    def test_1_block_spans(self):
        dev = self.loop.name
        # [spans][exporter] all N_READS spans arrive (budget far above the rate)
        wait_for(f"{N_READS} 'block read' spans on {dev}",
                 lambda: len(self.block_spans(self.sink.records("/v1/traces"), dev)) >= N_READS, 30,
                 on_timeout=lambda: f" (have {len(self.block_spans(self.sink.records('/v1/traces'), dev))})"
                                    f"\nnovamon log:\n{self.d.logs()[-3000:]}")
        time.sleep(2 * TICK_S)  # anything extra would have arrived by now
        recs = self.sink.records("/v1/traces")
        self.assertEqual(transport_problems(recs), [])  # [exporter]
        spans = self.block_spans(recs, dev)
        after = self.d.metrics()
        observed = (harness.value(after, "novamon_block_requests_total", device=dev, op="read")
                    - harness.value(self.before, "novamon_block_requests_total", device=dev, op="read"))
        log(f"{dev}: {len(spans)} 'block read' spans; /metrics counted {observed} read requests")
        self.assertEqual(observed, N_READS, "novamon's own count of the reads (test_block's invariant)")
        self.assertEqual(len(spans), N_READS, "one span per request, none sampled away")  # [spans]

        problems = []
        sectors = []
        for r, ra, scope, sp in spans:
            a, sid = sp["attrs"], sp["spanId"]
            # [exporter] transport and resource
            if r["headers"].get("content-encoding") != "gzip":
                problems.append(f"{sid}: request #{r['seq']} not gzipped ({r['headers'].get('content-encoding')})")
            if r["headers"].get(API_HEADER[0].lower()) != API_HEADER[1]:
                problems.append(f"{sid}: request #{r['seq']} lacks the configured header {API_HEADER[0]}")
            if ra.get("service.name") != "novamon" or ra.get("host.name") != socket.gethostname():
                problems.append(f"{sid}: resource {ra}")
            # [spans] conventions
            if sp["kind"] != "SPAN_KIND_INTERNAL":
                problems.append(f"{sid}: kind {sp['kind']}")
            if a.get("disk.io.direction") != "read" or a.get("novamon.block.bytes") != BS:
                problems.append(f"{sid}: direction {a.get('disk.io.direction')}, bytes {a.get('novamon.block.bytes')}")
            if a.get("novamon.sample_rate") != 1.0:
                problems.append(f"{sid}: novamon.sample_rate {a.get('novamon.sample_rate')} (kept unsampled: 1.0)")
            if (sp.get("status") or {}).get("code") == "STATUS_CODE_ERROR":
                problems.append(f"{sid}: status ERROR for a read that succeeded")
            if a.get("process.pid") != os.getpid() or a.get("thread.id") != self.tid:
                problems.append(f"{sid}: process.pid {a.get('process.pid')} thread.id {a.get('thread.id')}, "
                                f"the reads came from {os.getpid()}/{self.tid}")
            if sp["parentSpanId"] != "" or "novamon.vm" in a:
                problems.append(f"{sid}: parent {sp['parentSpanId']!r} vm {a.get('novamon.vm')!r} for a "
                                "thread outside any VM (must be a root span)")
            start, end = int(sp["startTimeUnixNano"]), int(sp["endTimeUnixNano"])
            if not start < end:
                problems.append(f"{sid}: start {start} not before end {end}")
            if start < self.t0 - WINDOW_SLACK_NS or end > self.t1 + WINDOW_SLACK_NS:
                problems.append(f"{sid}: [{start}, {end}] outside the reads' window [{self.t0}, {self.t1}] "
                                f"(+- {WINDOW_SLACK_NS} ns)")
            q, s = a.get("novamon.block.queue_ns"), a.get("novamon.block.service_ns")
            if not isinstance(q, int) or not isinstance(s, int) or q < 0 or s <= 0:
                problems.append(f"{sid}: queue_ns {q!r} service_ns {s!r}")
            elif abs((end - start) - (q + s)) > 1000:
                problems.append(f"{sid}: end - start = {end - start} ns, queue + service = {q + s} ns")
            sectors.append(a.get("novamon.block.sector"))
        for p in problems[:20]:
            log(f"  MISMATCH: {p}")
        self.assertEqual(problems, [], f"{len(problems)} span problem(s)")
        # [spans] read i was at byte offset i * 4096: sector i * 8, each once
        self.assertEqual(sorted(sectors), [i * BS // 512 for i in range(N_READS)], "sectors")
        # [spans] ids: every span id in the whole run unique and non-zero; a root
        # span starts its own trace
        all_ids = [sp["spanId"] for _, _, _, sp in spans_of(accepted(recs))]
        self.assertEqual(len(all_ids), len(set(all_ids)), "span ids unique across everything received")
        self.assertEqual(len({sp["traceId"] for _, _, _, sp in spans}), N_READS, "one trace per root span")

    def test_2_metrics(self):
        dev = self.loop.name
        # Wait for a point taken well after the reads: the counter is then stable.
        t_stable = self.t1 + int(1.5e9 * TICK_S)

        def stable_point():
            recs = accepted(self.sink.records("/v1/metrics"))
            pts = series_points(recs, "novamon_block_requests_total", "sum", device=dev, op="read")
            return recs if pts and int(pts[-1][1]["timeUnixNano"]) > t_stable else None

        recs = wait_for(f"a novamon_block_requests_total point for {dev} after the reads", stable_point, 30,
                        on_timeout=lambda: f"\nnovamon log:\n{self.d.logs()[-3000:]}")
        prom = self.d.metrics()
        self.assertEqual(transport_problems(self.sink.records("/v1/metrics")), [])  # [exporter]

        # [metrics] a cumulative monotonic Sum, non-decreasing, one start time
        pts = series_points(recs, "novamon_block_requests_total", "sum", device=dev, op="read")
        m = pts[-1][0]
        self.assertEqual(m["sum"]["aggregationTemporality"], "AGGREGATION_TEMPORALITY_CUMULATIVE")
        self.assertTrue(m["sum"]["isMonotonic"])
        vals = [point_value(dp) for _, dp, _ in pts]
        self.assertEqual(vals, sorted(vals), f"{dev} read counter not monotonic: {vals}")
        self.assertEqual(len({dp["startTimeUnixNano"] for _, dp, _ in pts}), 1, "one start time per cumulative series")
        # [metrics] the last point equals /metrics (the counter no longer moves)
        prom_v = harness.value(prom, "novamon_block_requests_total", device=dev, op="read")
        log(f"{dev}: {len(pts)} Sum points, last {vals[-1]}, /metrics {prom_v}")
        self.assertEqual(vals[-1], prom_v)
        self.assertGreaterEqual(vals[-1], N_READS)

        # [metrics] the latency histogram: explicit bounds = /metrics' le values,
        # bucket counts = differences of the cumulative buckets, count and sum
        hpts = series_points(recs, "novamon_block_request_duration_seconds", "histogram", device=dev, op="read")
        self.assertTrue(hpts, "novamon_block_request_duration_seconds arrives as an OTLP Histogram")
        hm, hp, _ = hpts[-1]
        self.assertEqual(hm["histogram"]["aggregationTemporality"], "AGGREGATION_TEMPORALITY_CUMULATIVE")
        bounds = hp["explicitBounds"]
        self.assertTrue(bounds, "explicit bounds")
        counts = [int(c) for c in hp["bucketCounts"]]
        self.assertEqual(len(counts), len(bounds) + 1)
        prom_buckets = sorted((float(dict(ls)["le"]), v) for (n, ls), v in prom.items()
                              if n == "novamon_block_request_duration_seconds_bucket"
                              and dict(ls).get("device") == dev and dict(ls).get("op") == "read")
        self.assertEqual([b for b, _ in prom_buckets], bounds + [float("inf")], "bounds = /metrics le values")
        cum = [sum(counts[:i + 1]) for i in range(len(counts))]
        self.assertEqual(cum, [v for _, v in prom_buckets], "bucket counts = /metrics buckets")
        self.assertEqual(int(hp["count"]), harness.value(
            prom, "novamon_block_request_duration_seconds_count", device=dev, op="read"))
        prom_sum = harness.value(prom, "novamon_block_request_duration_seconds_sum", device=dev, op="read")
        self.assertAlmostEqual(hp["sum"], prom_sum, delta=1e-9 + 1e-6 * abs(prom_sum))

        # [metrics] every exported metric name is a /metrics family
        families = set()
        for (n, _) in prom:
            families.add(n)
            for suf in ("_bucket", "_count", "_sum"):
                if n.endswith(suf):
                    families.add(n[: -len(suf)])
        # A VM's families go from /metrics with the VM (any qemu on the host,
        # not only the tests'): an exported name that only VMs' points carry
        # may be gone by now; any other must still be there.
        def vm_only(name):
            pts = [dp for _, _, m in metrics_of(recs) if m["name"] == name
                   for kind in ("sum", "gauge", "histogram") if kind in m
                   for dp in m[kind].get("dataPoints", [])]
            return pts and all("vm" in attrs(dp.get("attributes")) for dp in pts)
        unknown = sorted(n for n in {m["name"] for _, _, m in metrics_of(recs)} - families
                         if not vm_only(n))
        self.assertEqual(unknown, [], "OTLP metric names that /metrics does not have")

    def test_3_logs(self):
        def attach_logs():
            return [x for x in logs_of(accepted(self.sink.records("/v1/logs")))
                    if x[2]["attrs"].get("novamon.event") == "capture.attach"]

        got = wait_for("a 'capture.attach' log record", attach_logs, 30)  # [spans][exporter]
        self.assertEqual(transport_problems(self.sink.records("/v1/logs")), [])
        r, ra, lr = got[0]
        log(f"{len(got)} capture.attach log record(s), first: {lr['severityNumber']} {any_value(lr['body'])!r}")
        self.assertEqual(ra.get("service.name"), "novamon")
        self.assertNotEqual(lr["severityNumber"], "SEVERITY_NUMBER_UNSPECIFIED")
        t = int(lr["timeUnixNano"]) or int(lr["observedTimeUnixNano"])
        self.assertTrue(self.t_daemon - WINDOW_SLACK_NS <= t <= time.time_ns(), "log time within the daemon's life")

    def test_4_kvm_guest(self):
        """[spans] block reads issued by a qemu/KVM guest's I/O threads are
        children of that VM's "vm activity" span."""
        if not harness.kvm_usable():
            reason = "no usable /dev/kvm (missing, or KVM_CREATE_VM fails): cannot run a KVM test guest"
            if os.environ.get("NOVAMON_REQUIRE_KVM") == "1":
                self.fail(reason + " (and NOVAMON_REQUIRE_KVM=1)")
            self.skipTest(reason)
        qemu = shutil.which("qemu-system-x86_64")
        if not qemu:
            self.skipTest("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
        name = f"novamon-otlp-{os.getpid()}"
        with harness.LoopDevice() as disk:
            q = harness.boot_disk_guest(qemu, name, disk.path)
            try:
                def vm_reads():
                    if q.poll() is not None:
                        self.fail(f"qemu exited with {q.returncode}: {q.stderr.read()}")
                    return harness.value(self.d.metrics(), "novamon_vm_block_requests_total",
                                         vm=name, device=disk.name, op="read")
                wait_for(f"block reads by VM {name} on {disk.name} in /metrics", vm_reads, 40, interval=1)
            finally:
                q.terminate()
                q.wait(10)
            # count only once the guest is gone: SeaBIOS may read again at any time
            self.d.wait_tick(2)
            n = harness.value(self.d.metrics(), "novamon_vm_block_requests_total",
                              vm=name, device=disk.name, op="read")
            # the VM's last period ends when it goes away: its span is exported
            # then, maybe after the block spans it parents and after earlier periods'
            def all_parents():
                recs = self.sink.records("/v1/traces")
                spans = [s[3] for s in spans_of(accepted(recs))]
                ids = {s["spanId"] for s in spans if s["name"] == "vm activity"
                       and s["attrs"].get("novamon.vm") == name}
                reads = [s for s in spans if s["name"] == "block read"
                         and s["attrs"].get("system.device") == disk.name]
                return ids and reads and all(s["parentSpanId"] in ids for s in reads) and recs
            def orphans():
                spans = [s[3] for s in spans_of(accepted(self.sink.records("/v1/traces")))]
                by_id = {s["spanId"]: s for s in spans}
                reads = [s for s in spans if s["name"] == "block read"
                         and s["attrs"].get("system.device") == disk.name]
                return "; reads and their parents: " + "; ".join(
                    f"{s['spanId']} (pid {s['attrs'].get('process.pid')}, tid {s['attrs'].get('thread.id')}, "
                    f"vm {s['attrs'].get('novamon.vm')}, start {s['startTimeUnixNano']}) -> {s['parentSpanId']} "
                    f"{by_id[s['parentSpanId']]['name'] if s['parentSpanId'] in by_id else 'not received'}"
                    for s in reads) + "; vm spans: " + "; ".join(
                    f"{s['name']} {s['spanId']} {s['attrs'].get('novamon.vm')} "
                    f"{s['startTimeUnixNano']}-{s['endTimeUnixNano']}" for s in spans
                    if s["name"].startswith("vm "))
            recs = wait_for("the 'vm activity' spans of the guest, parents of its reads", all_parents, 30,
                            on_timeout=orphans)
            spans = [s[3] for s in spans_of(accepted(recs))]
            by_id = {s["spanId"]: s for s in spans}
            reads = [s for s in spans if s["name"] == "block read" and s["attrs"].get("system.device") == disk.name]
            log(f"{name}: /metrics {n} VM block reads on {disk.name}; {len(reads)} spans")
            self.assertEqual(len(reads), n, "one span per VM read")
            for s in reads:
                self.assertEqual(s["attrs"].get("novamon.vm"), name)
                self.assertEqual(s["attrs"].get("process.pid"), q.pid)
                p = by_id.get(s["parentSpanId"])
                self.assertIsNotNone(p, f"parent {s['parentSpanId']!r} of {s['spanId']} not received")
                self.assertEqual(p["name"], "vm activity")
                self.assertEqual(p["attrs"].get("novamon.vm"), name)
                self.assertEqual(p["traceId"], s["traceId"])
                self.assertTrue(int(p["startTimeUnixNano"]) <= int(s["startTimeUnixNano"])
                                and int(s["endTimeUnixNano"]) <= int(p["endTimeUnixNano"]),
                                "the VM's span covers the request")
            # [metrics][spans] the VM's metric points carry exemplars naming its exported
            # spans (a period still open when the guest went is exported a moment later)
            mrecs = accepted(self.sink.records("/v1/metrics"))
            exemplars = []
            for _, _, m in metrics_of(mrecs):
                kind = m.get("data")
                if kind not in ("sum", "histogram"):
                    continue
                for dp in m[kind]["dataPoints"]:
                    if attrs(dp["attributes"]).get("vm") == name:
                        exemplars += [(m["name"], ex) for ex in dp.get("exemplars") or []]
            log(f"{name}: {len(exemplars)} exemplars on its OTLP metric points, "
                f"{len({ex['traceId'] for _, ex in exemplars})} traces")
            self.assertTrue(exemplars, f"exemplars on the OTLP metric points of {name}")

            def vm_spans_now():
                got = {s[3]["spanId"]: s[3] for s in spans_of(accepted(self.sink.records("/v1/traces")))
                       if s[3]["attrs"].get("novamon.vm") == name}
                return got if all(ex["spanId"] in got for _, ex in exemplars) else None
            vm_spans = wait_for("the spans the exemplars name", vm_spans_now, 30)
            vm_traces = {s["traceId"] for s in vm_spans.values()}
            for mname, ex in exemplars:
                self.assertIn(ex["traceId"], vm_traces, f"{mname}: exemplar trace of {name} exported")
                self.assertEqual(vm_spans[ex["spanId"]]["traceId"], ex["traceId"])
                self.assertGreater(int(ex["timeUnixNano"]), 0)
                self.assertGreater(float(ex.get("asDouble", 0)), 0)
            vm_logs = [lr for _, _, lr in logs_of(accepted(self.sink.records("/v1/logs")))
                       if lr["attrs"].get("novamon.event") == "vm.appeared"
                       and (name in json.dumps(lr["attrs"]) or name in str(any_value(lr["body"])))]
            self.assertTrue(vm_logs, f"a vm.appeared log record naming {name}")


class OtlpFaults(unittest.TestCase):
    """[exporter] 503 + Retry-After, then the sink gone, then back."""

    def test_5_faults(self):
        sink = Sink(NODE).start()
        with harness.LoopDevice() as loop:
            d = daemon_start(EXPORTER_CONFIG, "block", sink.url)
            try:
                self.run_faults(sink, loop, d)
            finally:
                d.stop()

    def run_faults(self, sink, loop, d):
        dev = loop.name
        d.require_attached("block", ["block_rq_issue", "block_rq_complete"])
        wait_for("a first accepted /v1/metrics request", lambda: accepted(sink.records("/v1/metrics")), 30,
                 on_timeout=lambda: f"\nnovamon log:\n{d.logs()[-3000:]}")
        before = d.metrics()
        t_start = time.time_ns()

        def reads(phase, n=100):
            # distinct offsets per phase: the sectors tell the phases apart
            fd = os.open(loop.path, os.O_RDONLY | os.O_DIRECT)
            buf = mmap.mmap(-1, BS)
            try:
                for i in range(n):
                    if os.preadv(fd, [buf], (phase * n + i) * BS) != BS:
                        self.fail("short O_DIRECT read")
            finally:
                os.close(fd)
                buf.close()

        # 1. 503 with Retry-After: 1 for the next 3 requests
        sink.mode(status=503, retry_after="1", count=3)
        reads(0)
        wait_for("3 requests answered 503",
                 lambda: sum(r["status"] == 503 for r in sink.records()) >= 3, 30)
        # 2. gone: killed, about 5 s of reads and ticks with nobody listening
        sink.kill9()
        t_kill = time.time()
        reads(1)
        time.sleep(max(0.0, 5.0 - (time.time() - t_kill)))
        st, _ = e2e.http_get(sink.url + "/_health", timeout=1)
        self.assertIsNone(st, "the sink is really gone")
        # 3. back on the same port, with everything it recorded
        sink.start()
        reads(2)
        n_gen = 300

        def loop_spans():
            return {s[3]["spanId"] for s in spans_of(accepted(sink.records("/v1/traces")))
                    if s[3]["name"] == "block read" and s[3]["attrs"].get("system.device") == dev}

        # Background I/O on the host keeps the traces queue moving: wait for the
        # spans of the test's reads, not for an empty queue. [spans] Without
        # any span at all after 30 s, span synthesis is missing: go on to the
        # transport checks, which the metrics alone exercise.
        t_back = time.monotonic()
        while len(loop_spans()) < n_gen and time.monotonic() - t_back < 120:
            if time.monotonic() - t_back > 30 and not any(
                    r["items"]["spans"] for r in accepted(sink.records("/v1/traces"))):
                break
            time.sleep(1)
        # 4. freeze: from now on nothing is accepted, so after the in-flight
        # requests settle, "sent" and "arrived" must agree exactly
        sink.mode(status=503, retry_after="1", count=-1)
        time.sleep(2.5)
        c = otlp_counters(d)
        after = d.metrics()
        recs = sink.records(fresh=True)
        sink.mode(status=200)
        by_seq = sorted(recs, key=lambda r: r["seq"])
        log(f"{len(recs)} requests: " + ", ".join(
            f"{sig} {sum(r['signal'] == sig for r in recs)} ({sum(r['signal'] == sig and r['status'] != 200 for r in recs)} refused)"
            for sig in ("traces", "metrics", "logs")))

        with self.subTest("every request decodes, no spec violation"):  # [exporter]
            self.assertEqual(transport_problems(recs), [])

        # Duplicates: a body (decompressed, by hash) may come again only after an
        # attempt that failed (non-2xx), whose answer was not written in full, or
        # that was answered by an instance killed within 1 s after the answer
        # (the client may not have read it). Same rule for span ids.
        def retry_allowed(prev):
            if prev["status"] != 200 or not prev["done"]:
                return True
            return any(prev["instance"]["pid"] == pid and prev.get("done_time", 0) / 1000 >= t - 1.0
                       for pid, t in sink.kills)

        with self.subTest("nothing sent twice beyond what the spec allows"):  # [exporter]
            dups = []
            seen = {}
            for r in by_seq:
                h = r["body_sha256"]
                if h is not None and h in seen and not retry_allowed(seen[h]):
                    dups.append(f"#{r['seq']} {r['path']}: same body as #{seen[h]['seq']}, which was accepted")
                seen[h] = r
            span_seen = {}
            for r, _, _, sp in spans_of(accepted(by_seq)):
                prev = span_seen.get(sp["spanId"])
                if prev is not None and prev["seq"] != r["seq"] and not retry_allowed(prev):
                    dups.append(f"span {sp['spanId']} in #{r['seq']} and in #{prev['seq']}, which was accepted")
                span_seen[sp["spanId"]] = r
            for p in dups[:20]:
                log(f"  DUPLICATE: {p}")
            self.assertEqual(dups, [])

        with self.subTest("Retry-After: 1 honoured"):  # [exporter]
            early, n_503 = [], 0
            for i, r in enumerate(by_seq):
                if r["status"] == 503:
                    n_503 += 1
                    nxt = next((x for x in by_seq[i + 1:] if x["body_sha256"] == r["body_sha256"]), None)
                    if nxt and nxt["time"] - r["time"] < 900:
                        early.append(f"#{r['seq']} retried as #{nxt['seq']} after {nxt['time'] - r['time']} ms")
            self.assertGreaterEqual(n_503, 3)
            self.assertEqual(early, [], "a refused body came back before Retry-After")

        uniq = {}
        for r in accepted(by_seq):
            uniq.setdefault(r["body_sha256"], r)
        uniq = list(uniq.values())

        with self.subTest("nothing lost: every read arrived as one span"):  # [spans][exporter]
            read_spans = {sp["spanId"]: sp for _, _, _, sp in spans_of(uniq)
                          if sp["name"] == "block read" and sp["attrs"].get("system.device") == dev}
            observed = (harness.value(after, "novamon_block_requests_total", device=dev, op="read")
                        - harness.value(before, "novamon_block_requests_total", device=dev, op="read"))
            sectors = sorted(sp["attrs"].get("novamon.block.sector") for sp in read_spans.values())
            log(f"{dev}: generated {n_gen} reads, /metrics {observed}, {len(read_spans)} spans arrived "
                f"(reads since {t_start})")
            self.assertEqual(observed, n_gen)
            self.assertEqual(len(read_spans), n_gen)
            self.assertEqual(sectors, [i * BS // 512 for i in range(n_gen)])

        # Everything novamon counts as sent arrived (unique bodies, accepted), and
        # nothing it does not count: items are spans, log records and metric data
        # points (api/otlp.h, as the Collector counts them).
        items = {"traces": 0, "logs": 0, "metrics": 0}
        for r in uniq:
            it = r["items"]
            items[r["signal"]] += (it["spans"] if r["signal"] == "traces" else
                                   it["log_records"] if r["signal"] == "logs" else it["data_points"])
        sent = {s: sum_of(c, "novamon_otlp_sent_items_total", signal=s) for s in ("traces", "metrics", "logs")}
        dropped = sum_of(c, "novamon_otlp_dropped_items_total")
        retries = sum_of(c, "novamon_otlp_retries_total")
        log(f"novamon_otlp_sent_items_total {sent}; arrived (unique, accepted) {items}; "
            f"dropped {dropped}; retries {retries}")
        with self.subTest("the exporter's metrics are on /metrics"):  # [exporter]
            for name in ("novamon_otlp_sent_items_total", "novamon_otlp_dropped_items_total",
                         "novamon_otlp_queue_bytes", "novamon_otlp_retries_total"):
                self.assertIn(name, {n for n, _ in c})
        for sig in ("traces", "metrics", "logs"):
            with self.subTest(f"{sig}: every item counted as sent arrived, and no other"):  # [exporter]
                self.assertEqual(sent[sig], items[sig])
        with self.subTest("nothing dropped within the queue size"):  # [exporter]
            self.assertEqual(dropped, 0)
        with self.subTest("refused and failed requests were retried"):  # [exporter]
            self.assertGreaterEqual(retries, 3)


NODE = None
DEADLINE_S = 580


class Interrupted(KeyboardInterrupt):
    """Raised by the deadline alarm and by SIGTERM/SIGINT: unittest lets a
    KeyboardInterrupt through (a SystemExit it would record and carry on), the
    tests' finally blocks stop their daemons and loop devices on the way out,
    and main() runs the class cleanups."""


def _interrupt(signum, frame):
    what = "deadline" if signum == signal.SIGALRM else signal.Signals(signum).name
    raise Interrupted(f"test_otlp interrupted ({what})")


def _raise(msg):
    raise AssertionError(msg)


def main():
    global NODE
    if os.geteuid() != 0:
        skip_all("needs root (loop devices, BPF capture)")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        skip_all("needs kernel BTF (/sys/kernel/btf/vmlinux) for block capture")
    if not shutil.which("losetup"):
        skip_all("needs losetup (util-linux)")
    NODE = ensure_sink_installed()
    e2e.novamon_bin()
    # From here on a helper's fail() fails the test at hand instead of exiting
    # the process past unittest's cleanups.
    harness.fail = _raise
    e2e.fail = _raise
    for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupt)
    signal.alarm(DEADLINE_S)
    try:
        prog = unittest.main(module=__name__, exit=False, verbosity=2)
    except Interrupted as e:
        log(f"FAIL: {e}")
        OtlpExport.doClassCleanups()
        sys.exit(1)
    signal.alarm(0)
    res = prog.result
    if not res.wasSuccessful():
        sys.exit(1)
    if res.testsRun and len(res.skipped) == res.testsRun:
        sys.exit(e2e.SKIP)
    sys.exit(0)


if __name__ == "__main__":
    main()
