# SPDX-License-Identifier: Apache-2.0
"""Exemplars from a real KVM guest to a real Prometheus (issue #5).

A qemu/KVM guest named `guest=NAME` boots SeaBIOS off a loop device (its block
reads and VM exits are the VM's samples) under `novamon run --spans-file`.
Debian's Prometheus 2.42, started with --enable-feature=exemplar-storage,
scrapes novamon's /metrics every second (its Accept header asks for
OpenMetrics). Then:

  - Prometheus' own /api/v1/query_exemplars returns exemplars on the VM's
    series, and every trace_id/span_id in them is a span novamon exported for
    that VM (its --spans-file lines with novamon.vm=NAME);
  - novamon's /api/v1/query_exemplars answers the same shape, with the same
    kind of trace IDs;
  - /metrics without an Accept header is still the classic text format and
    `promtool check metrics` passes on it; with the OpenMetrics Accept it is
    OpenMetrics (content type, `# EOF`, exemplars on the VM's lines).

Needs root, BTF, a usable /dev/kvm, qemu-system-x86_64, prometheus and
promtool; each missing one skips (exit 77), or fails under
NOVAMON_REQUIRE_E2E=1 / NOVAMON_REQUIRE_BPF=1 (NOVAMON_REQUIRE_KVM=1 for /dev/kvm).
"""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import e2e  # noqa: E402
import harness  # noqa: E402
from e2e import log, wait_for  # noqa: E402

OM_ACCEPT = ("application/openmetrics-text;version=1.0.0,"
             "application/openmetrics-text;version=0.0.1;q=0.75,"
             "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def scrape_health(prom_url):
    """What Prometheus says of its last scrape of novamon: for a failure message."""
    try:
        with urllib.request.urlopen(prom_url + "/api/v1/targets", timeout=5) as r:
            t = json.load(r)["data"]["activeTargets"]
        return "; Prometheus' targets: " + "; ".join(
            f"{x['scrapeUrl']} {x['health']} {x.get('lastError')!r} {x.get('lastScrapeDuration')} s"
            for x in t)
    except Exception as e:  # a diagnostic only
        return f"; Prometheus' targets unavailable: {e}"


def exported_spans(path, vm):
    """{span_id: span} of the spans novamon wrote for VM vm, and the set of their trace IDs."""
    spans = {}
    try:
        with open(path) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if r.get("type") == "span" and r.get("attributes", {}).get("novamon.vm") == vm:
                    spans[r["span_id"]] = r
    except FileNotFoundError:
        pass
    return spans, {s["trace_id"] for s in spans.values()}


def query_exemplars(base, query, start, end):
    st, doc, text = e2e.api_get(base, "/api/v1/query_exemplars",
                                [("query", query), ("start", f"{start:.3f}"), ("end", f"{end:.3f}")])
    if st != 200 or not doc or doc.get("status") != "success":
        e2e.fail(f"{base}/api/v1/query_exemplars?query={query}: HTTP {st} {text[:400]}")
    return doc["data"]


def flat(data):
    """(series __name__, trace_id, span_id, value, timestamp) of every exemplar."""
    return [(d["seriesLabels"].get("__name__"), ex["labels"].get("trace_id"), ex["labels"].get("span_id"),
             float(ex["value"]), float(ex["timestamp"]))
            for d in data for ex in d["exemplars"]]


def main():
    e2e.deadline_guard(300, "test_exemplars")
    require = ("NOVAMON_REQUIRE_E2E", "NOVAMON_REQUIRE_BPF")
    if os.geteuid() != 0 or not os.path.exists("/sys/kernel/btf/vmlinux"):
        harness.skip("needs root and kernel BTF (the KVM guest's samples come from BPF)", require)
    if not harness.kvm_usable():
        # a host without KVM (a nested paravirtual one) is allowed: .ci/run
        # sets NOVAMON_REQUIRE_KVM only where /dev/kvm exists
        harness.skip("no usable /dev/kvm: cannot run a KVM guest", ("NOVAMON_REQUIRE_KVM",))
    qemu = shutil.which("qemu-system-x86_64")
    promtool = shutil.which("promtool")
    if not qemu or not promtool:
        harness.skip("needs qemu-system-x86_64 and promtool (Debian: qemu-system-x86, prometheus)",
                     ("NOVAMON_REQUIRE_E2E",))
    e2e.prometheus_bin()
    os.environ.setdefault("NOVAMON_BIN", e2e.novamon_bin())

    tmp = e2e.make_tmpdir("novamon-e2e-exemplars-")
    spans_path = os.path.join(tmp, "spans.jsonl")
    d = harness.Daemon("--spans-file", spans_path, probes="block,kvm,sched",
                       config=f"state_dir: {tmp}/state\nspans:\n  vm_period_seconds: 2\n")
    try:
        run(d, qemu, promtool, spans_path)
    finally:
        d.stop()


def run(d, qemu, promtool, spans_path):
    prom = e2e.Prometheus(
        scrape_configs=("  - job_name: novamon\n"
                        "    scrape_interval: 1s\n"
                        "    scrape_timeout: 1s\n"
                        "    static_configs:\n"
                        f"      - targets: ['127.0.0.1:{d.port}']\n"),
        extra_args=("--enable-feature=exemplar-storage",))
    prom.start()
    t0 = time.time()
    name = f"novamon-exemplars-{os.getpid()}"
    with harness.LoopDevice() as disk:
        q = harness.boot_disk_guest(qemu, name, disk.path)
        try:
            def vm_reads():
                if q.poll() is not None:
                    e2e.fail(f"qemu exited with {q.returncode}: {q.stderr.read()}")
                return harness.value(d.metrics(), "novamon_vm_block_requests_total", vm=name,
                                     device=disk.name, op="read")
            wait_for(f"block reads by VM {name} on {disk.name} in /metrics", vm_reads, 40)
            log(f"VM {name} read {vm_reads():.0f} times from {disk.name}")

            # Prometheus ingests exemplars on the VM's series from its scrapes.
            sel = f'{{vm="{name}"}}'
            prom_ex = wait_for(f"exemplars of {sel} in Prometheus",
                               lambda: flat(query_exemplars(prom.url, sel, t0 - 5, time.time() + 5)), 40,
                               on_timeout=lambda: scrape_health(prom.url))
            log(f"Prometheus holds {len(prom_ex)} exemplars on {len({e[0] for e in prom_ex})} "
                f"of the VM's families: {sorted({e[0] for e in prom_ex})}")

            # The same on novamon's own query API, and the two formats of /metrics.
            nm_ex = wait_for(f"exemplars of {sel} in novamon",
                             lambda: flat(query_exemplars(d.url, sel, t0 - 5, time.time() + 5)), 20)
            check_formats(d, promtool, name)
        finally:
            q.terminate()
            q.wait(10)

    # The VM's open periods are exported once over; every exemplar must name
    # a trace (and span) that novamon exported for this VM.
    def all_exported():
        spans, traces = exported_spans(spans_path, name)
        missing = [e for e in prom_ex + nm_ex if e[1] not in traces or e[2] not in spans]
        return (spans, traces) if not missing else None
    spans, traces = wait_for("the spans of every exemplar in --spans-file", all_exported, 30)
    for fam, trace_id, span_id, value, ts in prom_ex + nm_ex:
        s = spans[span_id]
        if s["trace_id"] != trace_id:
            e2e.fail(f"exemplar span {span_id} is in trace {s['trace_id']}, not {trace_id}")
        if s["name"] not in ("vm activity", "vm start", "vm shutdown"):
            e2e.fail(f"exemplar on {fam} points at a {s['name']!r} span, not the VM's activity/operation")
        if not value > 0:
            e2e.fail(f"exemplar on {fam} has value {value}: an exemplar is an observation")
    log(f"all {len(prom_ex)} Prometheus and {len(nm_ex)} novamon exemplars name exported spans of "
        f"{name} ({len({e[1] for e in prom_ex + nm_ex})} traces)")
    if not {e[1] for e in prom_ex} & {e[1] for e in nm_ex}:
        e2e.fail("Prometheus and novamon hold no exemplar trace in common")
    log("PASS: a VM's metric samples lead to its exported traces, in Prometheus and in novamon")


def check_formats(d, promtool, name):
    with urllib.request.urlopen(d.url + "/metrics", timeout=10) as r:
        classic, ctype = r.read(), r.headers.get("Content-Type")
    if not ctype.startswith("text/plain; version=0.0.4"):
        e2e.fail(f"/metrics without Accept: Content-Type {ctype!r}")
    if b"# {" in classic or b"# EOF" in classic:
        e2e.fail("the classic text format carries OpenMetrics syntax")
    p = subprocess.run([promtool, "check", "metrics"], input=classic, capture_output=True)
    if p.returncode != 0:
        e2e.fail(f"promtool check metrics: {p.stdout.decode()}{p.stderr.decode()}")
    req = urllib.request.Request(d.url + "/metrics", headers={"Accept": OM_ACCEPT})
    with urllib.request.urlopen(req, timeout=10) as r:
        om, ctype, vary = r.read().decode(), r.headers.get("Content-Type"), r.headers.get("Vary")
    if (vary or "").lower() != "accept":
        e2e.fail(f"/metrics negotiates its format but says Vary: {vary!r}")
    if ctype != "application/openmetrics-text; version=1.0.0; charset=utf-8":
        e2e.fail(f"/metrics with Prometheus' Accept: Content-Type {ctype!r}")
    if not om.endswith("# EOF\n"):
        e2e.fail("OpenMetrics text does not end with # EOF")
    lines = [ln for ln in om.splitlines() if f'vm="{name}"' in ln and " # {trace_id=" in ln]
    if not lines:
        e2e.fail(f"no OpenMetrics line of VM {name} carries an exemplar")
    log(f"promtool accepts the classic format; {len(lines)} OpenMetrics lines of {name} carry exemplars, "
        f"e.g. {lines[0][:200]}")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:  # wait_for's timeout
        e2e.fail(str(e))
