# SPDX-License-Identifier: Apache-2.0
"""Crash test: remote-write batches into novamon in a loop (each batch must be
acknowledged with 204 before the next is sent), `kill -9` the daemon at random
points 5 times, restarting it on the same state_dir (and port) in between, and
after every restart check that every acknowledged sample is served back by
/api/v1/query (a range selector returns the raw samples) with its exact value,
that nothing was served that was never sent, and that /api/v1/series lists
every acknowledged series.

Usage: test_crash.py [--against-prometheus] [--seed N]
  --against-prometheus  run the same procedure against a real Prometheus
                        (kill -9 and restart on the same TSDB directory), to
                        validate the test itself.
"""
import http.client
import random
import sys
import threading
import time

import e2e
from e2e import log

N_SERIES = 500      # one sample per series per batch
KILLS = 5
NAME = "e2e_crash_samples"
GROUPS = 10         # query the series in this many groups
MAX_BATCHES_PER_LIFE = 550  # 1 s apart; 6 lives must fit the 55 min timeline


def series_labels(i):
    return {"__name__": NAME, "job": "e2e-crash", "series": f"s{i:03d}", "group": f"g{i % GROUPS}"}


def value_of(i, ts_ms):
    # Unique per (series, timestamp), exactly representable.
    return float((ts_ms // 1000) % 100000) * 1000.0 + i + 0.25


class Target:
    def __init__(self, against_prometheus):
        if against_prometheus:
            self.proc = e2e.Prometheus()
        else:
            self.proc = e2e.Novamon()

    @property
    def url(self):
        return self.proc.url

    def start(self):
        self.proc.start()
        if isinstance(self.proc, e2e.Novamon):
            e2e.require_route(self.proc, "/api/v1/query?query=1", "the query API")

    def kill9(self):
        self.proc.kill9()


def verify(tgt, acked, inflight, first_ts, last_ts, label):
    """acked: {series index: {ts_ms: value}} acknowledged; inflight: the same for
    batches sent without an acknowledgement (may or may not be stored)."""
    t_eval = last_ts / 1000.0 + 1
    window = int((last_ts - first_ts) / 1000) + 60
    missing, wrong, unknown, n_served = [], [], [], 0
    for g in range(GROUPS):
        q = f'{NAME}{{job="e2e-crash",group="g{g}"}}[{window}s]'
        st, doc, text = e2e.api_get(tgt.url, "/api/v1/query", [("query", q), ("time", f"{t_eval:.3f}")],
                                    timeout=60)
        if st != 200 or not doc or doc.get("status") != "success":
            e2e.fail(f"{label}: query {q!r}: HTTP {st}: {text[:500]}")
        if doc["data"].get("resultType") != "matrix":
            e2e.fail(f"{label}: query {q!r}: resultType {doc['data'].get('resultType')}, not matrix")
        served = {}
        for s in doc["data"]["result"]:
            i = int(s["metric"]["series"][1:])
            served[i] = {round(float(t) * 1000): e2e.parse_value(v) for t, v in s["values"]}
        for i in range(g, N_SERIES, GROUPS):
            got = served.get(i, {})
            n_served += len(got)
            for ts, v in acked.get(i, {}).items():
                if ts not in got:
                    missing.append((i, ts, v))
                elif not e2e.values_equal(got[ts], v):
                    wrong.append((i, ts, v, got[ts]))
            for ts, v in got.items():
                if ts not in acked.get(i, {}):
                    if ts in inflight.get(i, {}) and e2e.values_equal(inflight[i][ts], v):
                        continue
                    unknown.append((i, ts, v))
    n_acked = sum(len(v) for v in acked.values())
    n_inflight_kept = n_served - n_acked + len(missing) - len(unknown)
    log(f"  {label}: {n_acked} acknowledged samples, {n_served} served "
        f"({max(0, n_inflight_kept)} of unacknowledged batches kept), "
        f"{len(missing)} missing, {len(wrong)} wrong, {len(unknown)} never sent")
    problems = []
    for i, ts, v in missing[:10]:
        problems.append(f"missing acknowledged sample {NAME}{{series=\"s{i:03d}\"}} @ {ts / 1000:.3f} = {v}")
    for i, ts, v, got in wrong[:10]:
        problems.append(f"{NAME}{{series=\"s{i:03d}\"}} @ {ts / 1000:.3f}: sent {v}, served {got}")
    for i, ts, v in unknown[:10]:
        problems.append(f"served a sample never sent: {NAME}{{series=\"s{i:03d}\"}} @ {ts / 1000:.3f} = {v}")
    total = len(missing) + len(wrong) + len(unknown)
    if total > 30:
        problems.append(f"... {total} problems in all")

    st, doc, text = e2e.api_get(tgt.url, "/api/v1/series",
                                [("match[]", f'{NAME}{{job="e2e-crash"}}'),
                                 ("start", f"{first_ts / 1000 - 60:.3f}"), ("end", f"{t_eval:.3f}")])
    if st != 200 or not doc or doc.get("status") != "success":
        problems.append(f"/api/v1/series: HTTP {st}: {text[:300]}")
    else:
        listed = {m.get("series") for m in doc["data"]}
        need = {f"s{i:03d}" for i, d in acked.items() if d}
        if need - listed:
            problems.append(f"/api/v1/series misses {len(need - listed)} acknowledged series, "
                            f"e.g. {sorted(need - listed)[:5]}")
    return problems


def main():
    against_prom = "--against-prometheus" in sys.argv[1:]
    seed = int(time.time())
    if "--seed" in sys.argv[1:]:
        seed = int(sys.argv[sys.argv.index("--seed") + 1])
    rng = random.Random(seed)
    e2e.ensure_python_deps()
    e2e.deadline_guard(170, "test_crash")
    e2e.proto()
    tgt = Target(against_prom)
    tgt.start()
    log(f"target: {tgt.proc.name} at {tgt.url} (state in {getattr(tgt.proc, 'state_dir', tgt.proc.dir)}); "
        f"seed {seed}")

    now = int(time.time())
    first_ts = (now - 55 * 60) * 1000
    ts = first_ts
    acked, inflight = {}, {}
    n_batches = n_acked_batches = 0
    kills = 0
    t_stop = time.monotonic() + 120
    problems = []

    while kills < KILLS:
        # Kill at a random point of this life: sometimes right after start-up
        # (while the store replays), mostly in the middle of the ingest loop.
        delay = rng.uniform(0.0, 0.1) if rng.random() < 0.2 else rng.uniform(0.1, 1.5)
        timer = threading.Timer(delay, tgt.kill9)
        timer.start()
        acked_this_life = 0
        while True:
            if ts > (time.time() - 5) * 1000 or time.monotonic() > t_stop:
                timer.cancel()
                e2e.fail(f"ran out of time or of timeline after {kills} kills and {n_batches} batches")
            if acked_this_life >= MAX_BATCHES_PER_LIFE and timer.is_alive():
                time.sleep(0.002)  # a fast daemon: keep timeline for the later lives
                continue
            batch = [(series_labels(i), [(ts, value_of(i, ts))]) for i in range(N_SERIES)]
            n_batches += 1
            try:
                status, body = e2e.remote_write(tgt.url, batch, timeout=20)
            except (OSError, http.client.HTTPException) as e:
                status, body = None, f"{type(e).__name__}: {e}"
            if status == 204 or (against_prom and status == 200):
                for i in range(N_SERIES):
                    acked.setdefault(i, {})[ts] = value_of(i, ts)
                n_acked_batches += 1
                acked_this_life += 1
                ts += 1000
                continue
            # Not acknowledged: fine only when the connection broke because the
            # process is being killed; any HTTP answer other than 204 is a failure.
            if status is not None:
                timer.cancel()
                e2e.fail(f"write not acknowledged: HTTP {status}: {body[:300]}")
            timer.join()
            if tgt.proc.alive():
                e2e.fail(f"write not acknowledged by a live {tgt.proc.name}: HTTP {status}: {body[:300]}"
                         f"\n{tgt.proc.log_tail()}")
            for i in range(N_SERIES):
                inflight.setdefault(i, {})[ts] = value_of(i, ts)
            ts += 1000
            break
        kills += 1
        log(f"kill -9 #{kills} after {delay:.3f} s ({acked_this_life} batches acknowledged in that life)")
        tgt.start()
        problems += verify(tgt, acked, inflight, first_ts, ts, f"after restart #{kills}")
        if problems:
            break

    log(f"{n_batches} batches of {N_SERIES} samples sent, {n_acked_batches} acknowledged, {kills} kills")
    if n_acked_batches == 0:
        e2e.fail("no batch was ever acknowledged")
    if problems:
        for p in problems:
            log(f"  PROBLEM: {p}")
        e2e.fail(f"acknowledged data lost or corrupted across kill -9 (seed {seed}; "
                 f"log: {tgt.proc.logpath})")
    log("PASS: every acknowledged sample survived 5 x kill -9 and restart")


if __name__ == "__main__":
    main()
