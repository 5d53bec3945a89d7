#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Analytics in the daemon: a live series scored each second raises an
anomaly with its reason, which can be listed, filtered and acknowledged once;
model performance counts the acknowledgement; anomaly scores are series; a
growing gauge gets a forecast whose time-to-threshold is right; bad input
gets 400/404/409. No root needed (no capture)."""
import json
import random
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import Daemon, fail


def call(d, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(d.url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def expect(d, method, path, status, body=None):
    got, doc = call(d, method, path, body)
    if got != status:
        fail(f"{method} {path}: {got}, want {status}: {doc}")
    return doc


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def live_spike(d):
    """One sample a second: 70 s of noise around 50 (the detectors warm up
    over 60), then 95 for 4 s."""
    rnd = random.Random(5)
    for k in range(74):
        v = 95 if k >= 70 else 50 + rnd.gauss(0, 1)
        expect(d, "POST", "/api/metrics", 200,
               {"name": "app.latency", "value": v, "tags": {"vm": "web-1", "tenant": "a"}})
        time.sleep(1)
    time.sleep(2.5)  # the tick after the last sample scores it
    doc = expect(d, "GET", "/api/anomalies?metric=app_latency", 200)
    recs = doc["data"]["anomalies"]
    if not recs:
        fail(f"no anomaly for a 45-sigma jump:\n{d.logs()[-3000:]}")
    r = recs[0]
    for key in ("id", "start", "end", "score", "expected", "actual", "reason", "detectors",
                "state", "acknowledged"):
        if key not in r:
            fail(f"anomaly record without {key}: {r}")
    if r["labels"].get("vm") != "web-1" or r["actual"] != 95 or not r["detectors"]:
        fail(f"anomaly record does not say what and why: {r}")
    if abs(r["expected"] - 50) > 5 or not 0.5 <= r["score"] <= 1:
        fail(f"implausible expected/score: {r}")
    return r


def main():
    state = tempfile.mkdtemp(prefix="novamon-anomalies-")
    cfg = "store:\n  enabled: true\nseries_expire_seconds: 3600\n"
    try:
        with Daemon("--no-capture", "--state-dir", state, config=cfg) as d:
            r = live_spike(d)

            # filters
            if expect(d, "GET", "/api/anomalies?vm=web-2", 200)["data"]["anomalies"]:
                fail("vm filter does not filter")
            if not expect(d, "GET", "/api/anomalies?tenant=a&state=unacknowledged", 200)[
                    "data"]["anomalies"]:
                fail("tenant/state filters lost the record")
            start = urllib.parse.quote(rfc3339(time.time() + 3600))
            if expect(d, "GET", f"/api/anomalies?start={start}", 200)["data"]["anomalies"]:
                fail("start filter does not filter")
            expect(d, "GET", "/api/anomalies?state=bogus", 400)
            expect(d, "GET", "/api/anomalies?start=yesterday", 400)
            expect(d, "GET", "/api/anomalies?limit=-1", 400)

            # acknowledge once
            ack = expect(d, "POST", f"/api/anomalies/{r['id']}/acknowledge", 200,
                         {"false_positive": False})
            if not ack["data"]["acknowledged"] or ack["data"]["false_positive"]:
                fail(f"acknowledge answer: {ack}")
            expect(d, "POST", f"/api/anomalies/{r['id']}/acknowledge", 409)
            expect(d, "POST", "/api/anomalies/999999/acknowledge", 404)
            expect(d, "POST", f"/api/anomalies/{r['id']}/acknowledge", 400,
                   {"false_positive": "yes"})
            expect(d, "POST", "/api/anomalies/x/acknowledge", 404)
            if not expect(d, "GET", "/api/anomalies?state=acknowledged", 200)["data"][
                    "anomalies"]:
                fail("acknowledged record not listed as acknowledged")
            perf = expect(d, "GET", "/api/models/performance", 200)["data"]
            if perf["acknowledgements"] != 1 or "ensemble" not in perf["detectors"]:
                fail(f"model performance: {perf}")
            for name in ("stat", "seasonal", "iforest", "gru"):
                if "precision" not in perf["detectors"][name]:
                    fail(f"no precision for {name}: {perf}")

            # scores are series
            q = urllib.parse.quote('novamon_anomaly_score{metric="app_latency"}')
            res = expect(d, "GET", f"/api/v1/query?query={q}", 200)["data"]["result"]
            if len(res) != 1 or res[0]["metric"].get("vm") != "web-1":
                fail(f"novamon_anomaly_score not queryable: {res}")

            # forecast: a pool filling at 1 GiB a minute for 6 h, 100 GiB left
            now = int(time.time()) // 60 * 60
            used0 = 10 << 30
            batch = []
            for k in range(360, -1, -1):
                batch.append({"name": "pool.used_bytes", "value": used0 + (360 - k) * (1 << 30),
                              "timestamp": rfc3339(now - k * 60), "tags": {"pool": "p1"}})
            expect(d, "POST", "/api/metrics", 200, batch)
            last = used0 + 360 * (1 << 30)
            thr = last + 100 * (1 << 30)
            doc = expect(d, "GET", f"/api/predictions/pool_used_bytes?step=60s&history=6h"
                         f"&horizon=4h&threshold={thr}&pool=p1", 200)["data"]
            if len(doc["series"]) != 1:
                fail(f"prediction series: {doc}")
            s = doc["series"][0]
            ttt = s.get("time_to_threshold_seconds")
            if ttt is None or abs(ttt - 6000) > 0.05 * 6000 + 120:
                fail(f"time to threshold {ttt}, want ~6000 s: {json.dumps(s)[:800]}")
            pts = s["forecast"]
            if len(pts) != 240 or not all(p[2] <= p[1] <= p[3] for p in pts):
                fail(f"forecast points with [t, mean, lo, hi]: {pts[:3]}")
            expect(d, "GET", "/api/predictions/1bad", 400)
            expect(d, "GET", "/api/predictions/pool_used_bytes?step=0s", 400)
            expect(d, "GET", "/api/predictions/pool_used_bytes?bad-label=1", 400)
            expect(d, "GET", "/api/predictions/pool_used_bytes?level=2", 400)
            doc = expect(d, "GET", "/api/predictions/no_such_metric", 200)["data"]
            if doc["series"]:
                fail(f"forecast for a metric that does not exist: {doc}")
    finally:
        shutil.rmtree(state, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
