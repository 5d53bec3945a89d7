# SPDX-License-Identifier: Apache-2.0
"""PromQL parity: the same generated samples go to a real Prometheus 2.42 and to
novamon through remote-write; a corpus of PromQL queries (instant at several
times, range with several steps) and the series/labels/label-values routes must
answer the same on both.

Equal means: same status (success/error), same resultType, same label sets,
same timestamps (to the millisecond), values equal within 1e-9 relative or
1e-12 absolute, NaN equal to NaN, infinities equal by sign. Vector results are
compared as sets keyed by label set (the HTTP API promises no order for them,
topk/bottomk included). Constructs novamon does not support (subqueries, @)
must be an error there, never an answer.

Usage: test_promql_parity.py [--prometheus-only]
  --prometheus-only   validate the corpus and data on Prometheus alone (every
                      query parses and answers non-empty); novamon not started.
  --self-check        compare Prometheus with a second Prometheus (validates the
                      comparison itself; only the "E" queries may differ).
"""
import math
import random
import sys
import time

import e2e
from e2e import log

STEP = 15            # seconds between samples of the slow series
SPAN = 3600          # one hour of slow series
FAST_SPAN = 900      # the last 15 minutes of 1 s series

INSTANCES = [f"host-{i}" for i in range(6)]
LE = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf"]


# --------------------------------------------------------------------------
# Deterministic data (values depend only on the seed and the sample index;
# timestamps are anchored to "now" so that Prometheus' head block takes them).

def generate(start, end):
    """Returns {labels tuple: [(ts_ms, value), ...]} with samples in [start, end]
    (seconds, STEP-aligned)."""
    rng = random.Random(20261124)
    series = {}
    n = (end - start) // STEP + 1
    slow_ts = [(start + i * STEP) * 1000 for i in range(n)]

    def put(labels, samples):
        key = tuple(sorted(labels.items()))
        assert key not in series, key
        series[key] = samples

    # Counters with resets (one or two per series, at different points).
    k = 0
    for inst in INSTANCES:
        for method in ("GET", "POST"):
            for code in ("200", "500"):
                rate = rng.uniform(0.5, 40.0) * (0.05 if code == "500" else 1.0)
                resets = {(40 + 17 * k) % n, (150 + 29 * k) % n} if k % 3 == 0 else {(60 + 13 * k) % n}
                v = rng.uniform(0, 1000)
                samples = []
                for i, t in enumerate(slow_ts):
                    inc = rate * STEP * rng.uniform(0.5, 1.5)
                    v = inc * rng.uniform(0.1, 0.9) if i in resets else v + inc
                    samples.append((t, v))
                put({"__name__": "e2e_http_requests_total", "job": "e2e", "instance": inst,
                     "method": method, "code": code}, samples)
                k += 1

    # Gauges with noise.
    for j, inst in enumerate(INSTANCES):
        for z, zone in enumerate(("a", "b", "c")):
            phase = rng.uniform(0, 6.28)
            samples = [(t, 50 + 10 * math.sin(i / 20.0 + phase) + rng.gauss(0, 1.5) + j - z)
                       for i, t in enumerate(slow_ts)]
            put({"__name__": "e2e_cpu_temperature_celsius", "job": "e2e", "instance": inst,
                 "zone": zone}, samples)
        total = 16e9 + j * 1e9
        used = []
        free = []
        u = rng.uniform(2e9, 8e9)
        for i, t in enumerate(slow_ts):
            u = min(total - 1e8, max(1e8, u + rng.gauss(0, 5e7)))
            used.append((t, u))
            free.append((t, total - u + rng.uniform(0, 1e6)))
        put({"__name__": "e2e_memory_bytes", "job": "e2e", "instance": inst, "kind": "used"}, used)
        put({"__name__": "e2e_memory_bytes", "job": "e2e", "instance": inst, "kind": "free"}, free)
        put({"__name__": "e2e_build_info", "job": "e2e", "instance": inst,
             "version": "v1" if j % 2 == 0 else "v2"}, [(t, 1.0) for t in slow_ts])

    # Histograms: cumulative le buckets incl. +Inf, _sum and _count; one reset.
    for j, inst in enumerate(INSTANCES[:4]):
        for handler in ("/api", "/metrics"):
            counts = [0] * len(LE)
            total_sum = 0.0
            mu = -3.5 if handler == "/api" else -2.0
            reset_at = 120 if (j == 1 and handler == "/api") else None
            per = {le: [] for le in LE}
            sums, cnts = [], []
            for i, t in enumerate(slow_ts):
                if i == reset_at:
                    counts = [0] * len(LE)
                    total_sum = 0.0
                for _ in range(rng.randint(5, 60)):
                    d = rng.lognormvariate(mu, 1.0)
                    total_sum += d
                    for b, le in enumerate(LE):
                        if le == "+Inf" or d <= float(le):
                            counts[b] += 1
                for b, le in enumerate(LE):
                    per[le].append((t, float(counts[b])))
                sums.append((t, total_sum))
                cnts.append((t, float(counts[-1])))
            base = {"job": "e2e", "instance": inst, "handler": handler}
            for le in LE:
                put(dict(base, __name__="e2e_request_duration_seconds_bucket", le=le), per[le])
            put(dict(base, __name__="e2e_request_duration_seconds_sum"), sums)
            put(dict(base, __name__="e2e_request_duration_seconds_count"), cnts)

    # Series with gaps: host-0 misses 10 min (longer than the 5 min lookback),
    # host-1 misses 3 min (bridged by the lookback), host-2 starts 15 min late.
    gaps = {"host-0": range(100, 140), "host-1": range(200, 212), "host-2": range(0, 60)}
    for inst, gap in gaps.items():
        g, c = [], []
        v, cv = rng.uniform(0, 100), 0.0
        for i, t in enumerate(slow_ts):
            v += rng.gauss(0, 3)
            cv += rng.uniform(1, 10)
            if i in gap:
                continue
            g.append((t, v))
            c.append((t, cv))
        put({"__name__": "e2e_gappy_gauge", "job": "e2e", "instance": inst}, g)
        put({"__name__": "e2e_gappy_total", "job": "e2e", "instance": inst}, c)

    # 1 s series over the last FAST_SPAN seconds (one counter reset each).
    fast_ts = [t * 1000 for t in range(end - FAST_SPAN, end + 1)]
    for j, inst in enumerate(INSTANCES[:3]):
        gv, cv = rng.uniform(0, 10), 0.0
        g, c = [], []
        for i, t in enumerate(fast_ts):
            gv += rng.gauss(0, 0.5)
            cv = rng.uniform(0, 5) if i == 300 + 100 * j else cv + rng.uniform(0, 50)
            g.append((t, gv))
            c.append((t, cv))
        put({"__name__": "e2e_fast_gauge", "job": "e2e", "instance": inst}, g)
        put({"__name__": "e2e_fast_ops_total", "job": "e2e", "instance": inst}, c)
    return series


def batches(series, window_s=300):
    """Time-ordered remote-write requests: every series' samples of one window
    per request (Prometheus rejects samples older than its head's max time - 1 h)."""
    t_min = min(s[0][0] for s in series.values())
    t_max = max(s[-1][0] for s in series.values())
    w0 = t_min
    while w0 <= t_max:
        w1 = w0 + window_s * 1000
        req = []
        for key, samples in series.items():
            part = [s for s in samples if w0 <= s[0] < w1]
            if part:
                req.append((dict(key), part))
        yield req
        w0 = w1


# --------------------------------------------------------------------------
# The corpus. Flags: "i" instant-only (a range-vector result), "E" novamon must
# answer an error (unsupported syntax; Prometheus must answer non-empty),
# "B" both must answer an error.

CORPUS = [
    # Selectors and matchers
    ("e2e_http_requests_total", ""),
    ('e2e_http_requests_total{method="GET"}', ""),
    ('e2e_http_requests_total{code!="200"}', ""),
    ('e2e_http_requests_total{instance=~"host-[0-2]",method!~"P.*"}', ""),
    ('{__name__=~"e2e_cpu_.*",zone="b"}', ""),
    ('e2e_memory_bytes{kind=~"used|free",instance!~"host-(4|5)"}', ""),
    ("e2e_cpu_temperature_celsius offset 5m", ""),
    ("e2e_gappy_gauge", ""),
    ("e2e_gappy_total offset 1m", ""),
    ('e2e_http_requests_total{instance=~"host-1|host-3"}[2m]', "i"),
    ('e2e_cpu_temperature_celsius{zone="a"}[1m] offset 10m', "i"),
    ("e2e_fast_gauge[30s]", "i"),
    ("e2e_gappy_gauge[6m]", "i"),
    # Rate family and *_over_time
    ("rate(e2e_http_requests_total[5m])", ""),
    ('rate(e2e_http_requests_total{code="500"}[1m])', ""),
    ("irate(e2e_http_requests_total[2m])", ""),
    ("increase(e2e_http_requests_total[10m])", ""),
    ("rate(e2e_http_requests_total[5m] offset 10m)", ""),
    ("delta(e2e_cpu_temperature_celsius[5m])", ""),
    ("deriv(e2e_cpu_temperature_celsius[10m])", ""),
    ("avg_over_time(e2e_cpu_temperature_celsius[5m])", ""),
    ("min_over_time(e2e_cpu_temperature_celsius[7m])", ""),
    ("max_over_time(e2e_memory_bytes[3m])", ""),
    ("sum_over_time(e2e_fast_gauge[1m])", ""),
    ("count_over_time(e2e_gappy_gauge[10m])", ""),
    ("last_over_time(e2e_gappy_gauge[10m])", ""),
    ("stddev_over_time(e2e_cpu_temperature_celsius[10m])", ""),
    ("stdvar_over_time(e2e_memory_bytes[5m])", ""),
    ("quantile_over_time(0.9, e2e_cpu_temperature_celsius[10m])", ""),
    ("quantile_over_time(0.5, e2e_fast_gauge[2m])", ""),
    ("present_over_time(e2e_gappy_gauge[2m])", ""),
    ("rate(e2e_fast_ops_total[30s])", ""),
    ("irate(e2e_fast_ops_total[10s])", ""),
    ("increase(e2e_fast_ops_total[1m])", ""),
    ("deriv(e2e_fast_gauge[1m])", ""),
    ("delta(e2e_gappy_gauge[10m])", ""),
    ("increase(e2e_gappy_total[15m])", ""),
    ("rate(e2e_request_duration_seconds_count[3m])", ""),
    ("histogram_quantile(0.9, rate(e2e_request_duration_seconds_bucket[5m]))", ""),
    ("histogram_quantile(0.5, sum by (le) (rate(e2e_request_duration_seconds_bucket[5m])))", ""),
    ("histogram_quantile(0.99, sum by (le, handler) (increase(e2e_request_duration_seconds_bucket[10m])))", ""),
    ('histogram_quantile(0.25, e2e_request_duration_seconds_bucket{handler="/metrics"})', ""),
    ("rate(e2e_request_duration_seconds_sum[5m]) / rate(e2e_request_duration_seconds_count[5m])", ""),
    # Aggregations
    ("sum(rate(e2e_http_requests_total[5m]))", ""),
    ("sum by (instance) (rate(e2e_http_requests_total[5m]))", ""),
    ("sum without (method, code) (e2e_http_requests_total)", ""),
    ("sum(e2e_memory_bytes) by (kind)", ""),
    ("avg by (zone) (e2e_cpu_temperature_celsius)", ""),
    ("avg(e2e_memory_bytes)", ""),
    ("min by (instance) (e2e_cpu_temperature_celsius)", ""),
    ("max without (zone) (e2e_cpu_temperature_celsius)", ""),
    ("count by (code) (e2e_http_requests_total)", ""),
    ("count without (instance) (e2e_cpu_temperature_celsius > 50)", ""),
    ("count(e2e_gappy_gauge)", ""),
    ("topk(3, e2e_cpu_temperature_celsius)", ""),
    ("bottomk(2, rate(e2e_http_requests_total[5m]))", ""),
    ("topk by (zone) (1, e2e_cpu_temperature_celsius)", ""),
    ("bottomk without (instance) (1, e2e_memory_bytes)", ""),
    ("topk(2, sum by (instance) (rate(e2e_http_requests_total[5m])))", ""),
    # Arithmetic and comparison, vectors and scalars
    ("e2e_cpu_temperature_celsius * 9 / 5 + 32", ""),
    ("e2e_memory_bytes / 1024 / 1024", ""),
    ("2 ^ 3 - e2e_cpu_temperature_celsius % 7", ""),
    ("-e2e_cpu_temperature_celsius + 100", ""),
    ("1 + 2 * 3", ""),
    ("e2e_cpu_temperature_celsius > 55", ""),
    ("e2e_cpu_temperature_celsius > bool 55", ""),
    ("55 < e2e_cpu_temperature_celsius", ""),
    ('e2e_memory_bytes{kind="used"} >= bool 5e9', ""),
    ("e2e_cpu_temperature_celsius <= 48", ""),
    ("e2e_http_requests_total == e2e_http_requests_total", ""),
    ('e2e_memory_bytes{kind="used"} / ignoring(kind) e2e_memory_bytes{kind="free"}', ""),
    ('e2e_memory_bytes{kind="used"} + on(instance) e2e_memory_bytes{kind="free"}', ""),
    ('rate(e2e_http_requests_total{code="500"}[5m]) / ignoring(code) rate(e2e_http_requests_total{code="200"}[5m])', ""),
    ("rate(e2e_http_requests_total[5m]) * on(instance) group_left(version) e2e_build_info", ""),
    ("e2e_cpu_temperature_celsius - ignoring(zone) group_left avg without (zone) (e2e_cpu_temperature_celsius)", ""),
    ("e2e_cpu_temperature_celsius > on(instance) group_left avg by (instance) (e2e_cpu_temperature_celsius)", ""),
    ("e2e_cpu_temperature_celsius > bool on(instance, job) group_left avg by (instance, job) (e2e_cpu_temperature_celsius)", ""),
    # Set operators
    ('e2e_http_requests_total{code="200"} and e2e_http_requests_total{method="GET"}', ""),
    ('e2e_http_requests_total{code="200"} or e2e_http_requests_total{method="GET"}', ""),
    ('e2e_http_requests_total unless e2e_http_requests_total{code="500"}', ""),
    ('e2e_cpu_temperature_celsius and on(instance) e2e_build_info{version="v2"}', ""),
    ("e2e_gappy_gauge or on(instance) e2e_build_info", ""),
    ('e2e_cpu_temperature_celsius unless on(instance) e2e_build_info{version="v1"}', ""),
    # Edge cases: window boundaries, one-sample windows, out-of-range phi, k
    # larger than the series count, division by zero (+Inf, NaN), literals
    ("rate(e2e_http_requests_total[15s])", ""),
    ("count_over_time(e2e_gappy_gauge[15s])", ""),
    ("increase(e2e_fast_ops_total[5s])", ""),
    ("stddev_over_time(e2e_gappy_gauge[20s])", ""),
    ("quantile_over_time(0, e2e_cpu_temperature_celsius[5m])", ""),
    ("histogram_quantile(1.5, rate(e2e_request_duration_seconds_bucket[5m]))", ""),
    ("histogram_quantile(0, sum by (le) (e2e_request_duration_seconds_bucket))", ""),
    ("topk(100, e2e_gappy_gauge)", ""),
    ("e2e_cpu_temperature_celsius / 0", ""),
    ("(e2e_memory_bytes - e2e_memory_bytes) / 0", ""),
    ("max by (instance) (e2e_memory_bytes offset 30m)", ""),
    ("e2e_cpu_temperature_celsius > 5.5e1", ""),
    ("avg without (le) (rate(e2e_request_duration_seconds_bucket[2m]))", ""),
    # Unsupported on novamon: must be an error, not an answer
    ("max_over_time(rate(e2e_http_requests_total[1m])[5m:30s])", "E"),
    ("avg_over_time(e2e_cpu_temperature_celsius[10m:1m])", "E"),
    ("e2e_cpu_temperature_celsius @ {END}", "E"),
    ("rate(e2e_http_requests_total[5m] @ end())", "E"),
    # Invalid on both
    ("sum(e2e_cpu_temperature_celsius", "B"),
    ("rate(e2e_cpu_temperature_celsius)", "B"),
    ('e2e_cpu_temperature_celsius{zone=~"("}', "B"),
]


def main():
    prom_only = "--prometheus-only" in sys.argv[1:]
    # --self-check: a second Prometheus stands in for novamon, to show that the
    # comparison finds no false differences (the "E" cases are then expected to differ).
    self_check = "--self-check" in sys.argv[1:]
    e2e.ensure_python_deps()
    e2e.deadline_guard(170, "test_promql_parity")
    e2e.proto()
    prom = e2e.Prometheus()
    prom.start()
    targets = [prom]
    nm = None
    if self_check:
        nm = e2e.Prometheus()
        nm.name = "prometheus-2"
        nm.start()
        targets.append(nm)
    elif not prom_only:
        nm = e2e.Novamon()
        nm.start()
        targets.append(nm)

    now = int(time.time())
    end = (now // STEP) * STEP - 60
    start = end - SPAN
    series = generate(start, end)
    n_samples = sum(len(s) for s in series.values())
    log(f"data: {len(series)} series, {n_samples} samples, {start}..{end} "
        f"({STEP} s; 1 s for e2e_fast_* over the last {FAST_SPAN} s)")

    t0 = time.monotonic()
    for req in batches(series):
        for tgt in targets:
            try:
                status, body = e2e.remote_write(tgt.url, req)
            except (OSError, e2e.http.client.HTTPException) as e:
                e2e.fail(f"remote-write to {tgt.name}: {type(e).__name__}: {e}\n{tgt.log_tail()}")
            if status == 404 and tgt is nm:
                e2e.fail("novamon answers 404 on POST /api/v1/write: no remote-write receiver yet "
                         "(run with --prometheus-only to validate the corpus on Prometheus alone)")
            if not 200 <= status < 300:
                e2e.fail(f"remote-write to {tgt.name}: HTTP {status}: {body.strip()[:500]}")
    log(f"sent the same {n_samples} samples to {', '.join(t.name for t in targets)} "
        f"in {time.monotonic() - t0:.1f} s")

    # Evaluation times: the last sample, between samples, after the data
    # (within the 5 min lookback), and early (windows reaching before the data).
    instants = [end, end - 1800 + 7.5, end + 120, start + 450]
    ranges = [(start - 120, end + 150, 60), (start + 7, end, 37), (end - 600, end, 1)]
    log(f"tolerance: relative {e2e.REL_TOL:g}, absolute {e2e.ABS_TOL:g}; NaN == NaN")

    problems = []      # corpus problems on Prometheus itself
    mismatches = []    # (query, evaluation, prom answer, novamon answer, diffs)
    warnings = []      # errors that do not name what is unsupported (issue 3 asks they do)
    n_evals = 0
    for query_t, flags in CORPUS:
        query = query_t.replace("{END}", str(end))
        evals = [("query", [("query", query), ("time", f"{t:.3f}")], f"instant t={t:.3f}")
                 for t in instants]
        if "i" not in flags:
            evals += [("query_range", [("query", query), ("start", str(a)), ("end", str(b)),
                                       ("step", str(s))], f"range {a}..{b} step {s}s")
                      for a, b, s in ranges]
        if flags in ("E", "B"):
            evals = evals[:1]
        for route, params, what in evals:
            n_evals += 1
            answers = []
            for tgt in targets:
                status, doc, text = e2e.api_get(tgt.url, "/api/v1/" + route, params)
                answers.append((status, doc, text))
            p_status, p_doc, p_text = answers[0]
            p_ok = p_status == 200 and p_doc and p_doc.get("status") == "success"
            if flags == "B":
                if p_ok:
                    problems.append(f"{query}: Prometheus accepted a query meant to be invalid")
            elif not p_ok:
                problems.append(f"{query} [{what}]: Prometheus error: {e2e.shorten(p_text, 300)}")
                continue
            elif e2e.result_len(p_doc["data"]) == 0 and (what.startswith("range") or
                                                        what == f"instant t={end:.3f}"):
                problems.append(f"{query} [{what}]: empty result on Prometheus")
            if nm is None:
                continue
            n_status, n_doc, n_text = answers[1]
            n_ok = n_status == 200 and n_doc and n_doc.get("status") == "success"
            n_is_error = n_doc is not None and n_doc.get("status") == "error" and n_status is not None \
                and 400 <= n_status < 500 and n_doc.get("error")
            if flags in ("E", "B"):
                if not n_is_error:
                    mismatches.append((query, what, p_text, n_text,
                                       [f"novamon must answer a 4xx error with status=error "
                                        f"(got HTTP {n_status})"]))
                else:
                    msg = n_doc.get("error", "")
                    log(f"  ok: {nm.name} rejects {query!r}: {msg}")
                    named = ("subquer" in msg.lower()) if ":" in query.split("[")[-1] \
                        else ("@" in msg) if "@" in query else True
                    if flags == "E" and not named:
                        warnings.append(f"{query!r}: the error does not name the unsupported "
                                        f"construct: {msg}")
                continue
            if not n_ok:
                mismatches.append((query, what, p_text, n_text,
                                   [f"novamon HTTP {n_status}, not a success"]))
                continue
            diffs = e2e.compare_data(p_doc["data"], n_doc["data"])
            if diffs:
                mismatches.append((query, what, p_text, n_text, diffs))

    # Metadata routes.
    rng_params = [("start", str(start - 60)), ("end", str(end + 60))]
    meta = [
        ("series", [("match[]", 'e2e_http_requests_total{code="500"}')]),
        ("series", [("match[]", '{__name__=~"e2e_.*"}')]),
        ("series", [("match[]", "e2e_gappy_gauge"), ("match[]", 'e2e_build_info{version="v1"}')]),
        ("series", [("match[]", '{__name__=~"e2e_request_duration_seconds_.*",le=~"0\\\\.0.*"}')]),
        ("labels", [("match[]", '{__name__=~"e2e_.*"}')]),
        ("labels", [("match[]", "e2e_request_duration_seconds_bucket")]),
        ("label/__name__/values", [("match[]", '{__name__=~"e2e_.*"}')]),
        ("label/instance/values", [("match[]", "e2e_cpu_temperature_celsius")]),
        ("label/le/values", [("match[]", '{__name__=~"e2e_.*"}')]),
        ("label/code/values", [("match[]", "e2e_http_requests_total")]),
    ]
    for route, params in meta:
        n_evals += 1
        what = "/api/v1/" + route + " " + " ".join(v for _, v in params)
        answers = [e2e.api_get(t.url, "/api/v1/" + route, params + rng_params) for t in targets]
        p_status, p_doc, p_text = answers[0]
        if p_status != 200 or not p_doc or not p_doc.get("data"):
            problems.append(f"{what}: Prometheus: HTTP {p_status} {e2e.shorten(p_text, 300)}")
            continue
        if nm is None:
            continue
        n_status, n_doc, n_text = answers[1]
        if n_status != 200 or not n_doc or n_doc.get("status") != "success":
            mismatches.append((what, "", p_text, n_text, [f"novamon HTTP {n_status}"]))
            continue
        if route == "series":
            a = {e2e.label_key(m) for m in p_doc["data"]}
            b = {e2e.label_key(m) for m in n_doc["data"] or []}
            diffs = [f"missing {e2e.fmt_labels(dict(k))}" for k in sorted(a - b)] + \
                    [f"extra {e2e.fmt_labels(dict(k))}" for k in sorted(b - a)]
        else:
            a, b = p_doc["data"], n_doc["data"]
            diffs = [] if a == b else [f"{a} vs {b}" + ("" if sorted(a) != sorted(b or [])
                                                       else " (same set, order differs)")]
        if diffs:
            mismatches.append((what, "", p_text, n_text, diffs))

    log(f"corpus: {len(CORPUS)} queries, {n_evals} evaluations")
    if problems:
        for p in problems:
            log(f"  CORPUS PROBLEM: {p}")
        e2e.fail(f"{len(problems)} corpus problem(s) on Prometheus itself (fix the test data/corpus)")
    for w in warnings:
        log(f"  WARNING: {w}")
    if nm is None:
        log("PASS (Prometheus only): every query parses and answers non-empty where required")
        return
    if mismatches:
        log("")
        log(f"{'=' * 30} {len(mismatches)} mismatching evaluation(s) {'=' * 30}")
        for query, what, p_text, n_text, diffs in mismatches:
            log(f"query:      {query}")
            if what:
                log(f"evaluation: {what}")
            for d in diffs[:8]:
                log(f"  diff:     {d}")
            if len(diffs) > 8:
                log(f"  ... {len(diffs) - 8} more difference(s)")
            log(f"  prometheus: {e2e.shorten(p_text)}")
            log(f"  novamon:    {e2e.shorten(n_text)}")
            log("-" * 80)
        bad = []
        for m in mismatches:
            if m[0] not in bad:
                bad.append(m[0])
        log(f"mismatching queries ({len(bad)} of {len(CORPUS) + len(meta)}):")
        for q in bad:
            log(f"  {q}")
        e2e.fail(f"{len(bad)} query(ies) differ between novamon and Prometheus")
    log(f"PASS: novamon and Prometheus agree on all {n_evals} evaluations")


if __name__ == "__main__":
    main()
