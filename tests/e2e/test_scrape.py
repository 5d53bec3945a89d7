# SPDX-License-Identifier: Apache-2.0
"""A real Prometheus 2.42 scrapes novamon's /metrics every second. The series
Prometheus ingested for job="novamon" (less its own up/scrape_* series and the
job/instance target labels) must be exactly the series novamon's /metrics
exposes, the values of stable series must be the exposed values, and the
metric types/help Prometheus recorded for the target must be novamon's.
Prometheus asks for OpenMetrics and gets it; this test reads the classic text
(no Accept header), so both formats must expose the same series.
"""
import time

import e2e
from e2e import log

PROM_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling", "scrape_series_added"}


def fetch_exposition(nm):
    status, text = e2e.http_get(nm.url + "/metrics")
    if status != 200:
        e2e.fail(f"GET /metrics on novamon: HTTP {status}: {text[:300]}")
    try:
        return e2e.parse_exposition(text)
    except ValueError as e:
        e2e.fail(f"novamon's /metrics does not parse: {e}")


def as_scraped(key):
    """The label set Prometheus stores for an exposed series (honor_labels
    false): empty label values dropped, exposed job/instance renamed exported_*."""
    out = []
    for k, v in key:
        if v == "":
            continue
        if k in ("job", "instance"):
            k = "exported_" + k
        out.append((k, v))
    return tuple(sorted(out))


def prom_query(prom, query, t=None):
    params = [("query", query)] + ([("time", f"{t:.3f}")] if t else [])
    status, doc, text = e2e.api_get(prom.url, "/api/v1/query", params)
    if status != 200 or not doc or doc.get("status") != "success":
        e2e.fail(f"Prometheus query {query!r}: HTTP {status} {text[:300]}")
    return doc["data"]["result"]


def main():
    e2e.deadline_guard(170, "test_scrape")
    e2e.prometheus_bin()
    nm = e2e.Novamon()
    nm.start()
    target = f"127.0.0.1:{nm.port}"
    prom = e2e.Prometheus(scrape_configs=(
        "  - job_name: novamon\n"
        "    scrape_interval: 1s\n"
        "    scrape_timeout: 1s\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"))
    prom.start()
    t_prom = time.time()

    # Wait until Prometheus scraped novamon successfully at least 3 times.
    t_end = time.monotonic() + 60
    while True:
        r = prom_query(prom, 'sum_over_time(up{job="novamon"}[1m])')
        if r and float(r[0]["value"][1]) >= 3:
            break
        if time.monotonic() > t_end:
            st, doc, text = e2e.api_get(prom.url, "/api/v1/targets", [])
            e2e.fail(f"Prometheus did not scrape {target} successfully 3 times in 60 s; "
                     f"targets: {text[:800]}")
        time.sleep(0.5)
    log(f"Prometheus scraped {target} (up=1 at least 3 times)")

    snap1, meta = fetch_exposition(nm)
    t1 = time.time()
    time.sleep(2.5)  # at least two more scrapes
    st, doc, text = e2e.api_get(prom.url, "/api/v1/series",
                                [("match[]", '{job="novamon"}'),
                                 ("start", f"{t_prom - 1:.3f}"), ("end", f"{time.time():.3f}")])
    if st != 200 or not doc or doc.get("status") != "success":
        e2e.fail(f"Prometheus /api/v1/series: HTTP {st} {text[:300]}")
    last = prom_query(prom, '{job="novamon"}')
    snap2, _ = fetch_exposition(nm)

    problems = []
    ingested = set()
    for m in doc["data"]:
        if m.get("job") != "novamon" or m.get("instance") != target:
            problems.append(f"series without the target labels: {e2e.fmt_labels(m)}")
        if m.get("__name__") in PROM_OWN:
            continue
        m = {k: v for k, v in m.items() if k not in ("job", "instance")}
        ingested.add(e2e.label_key(m))
    exposed_all = {as_scraped(k) for k in set(snap1) | set(snap2)}
    exposed_both = {as_scraped(k) for k in set(snap1) & set(snap2)}
    log(f"/metrics: {len(snap1)} series then {len(snap2)}; Prometheus ingested {len(ingested)} "
        f"for job=novamon (apart from up/scrape_*)")
    if not snap1:
        problems.append("novamon's /metrics exposes no series at all")
    for k in sorted(exposed_both - ingested):
        problems.append(f"exposed by novamon but not in Prometheus: {e2e.fmt_labels(dict(k))}")
    for k in sorted(ingested - exposed_all):
        problems.append(f"in Prometheus but never seen on novamon's /metrics: {e2e.fmt_labels(dict(k))}")

    # Values. Prometheus' last scrape lies between the two snapshots (or just
    # before the second), so compare only what cannot have moved in between:
    # novamon_build_info, the start time, and counters that read 0 in both.
    latest = {}
    for s in last:
        m = {k: v for k, v in s["metric"].items() if k not in ("job", "instance")}
        latest[e2e.label_key(m)] = float(s["value"][1])
    stable = []
    for k in sorted(set(snap1) & set(snap2)):
        name = dict(k)["__name__"]
        if name in ("novamon_build_info", "novamon_process_start_time_seconds") or \
                (name.endswith("_total") and snap1[k] == 0 and snap2[k] == 0):
            if snap1[k] != snap2[k] and name != "novamon_process_start_time_seconds":
                problems.append(f"{e2e.fmt_labels(dict(k))} changed between scrapes: "
                                f"{snap1[k]} then {snap2[k]}")
            stable.append(k)
    if not any(dict(k)["__name__"] == "novamon_build_info" for k in stable):
        problems.append("novamon_build_info is not exposed")
    for k in stable:
        sk = as_scraped(k)
        if sk not in latest:
            problems.append(f"no current Prometheus sample for {e2e.fmt_labels(dict(k))}")
        elif not e2e.values_equal(latest[sk], snap2[k]):
            problems.append(f"{e2e.fmt_labels(dict(k))}: novamon exposes {snap2[k]!r}, "
                            f"Prometheus scraped {latest[sk]!r}")
    log(f"compared the values of {len(stable)} stable series")

    # Metadata Prometheus recorded for the target vs the # TYPE / # HELP lines.
    st, mdoc, mtext = e2e.api_get(prom.url, "/api/v1/targets/metadata",
                                  [("match_target", '{job="novamon"}')])
    if st != 200 or not mdoc or mdoc.get("status") != "success":
        problems.append(f"Prometheus /api/v1/targets/metadata: HTTP {st} {mtext[:300]}")
    else:
        recorded = {m["metric"]: m for m in mdoc["data"]}
        families = {dict(k)["__name__"] for k in snap2}
        n = 0
        for fam, md in sorted(meta.items()):
            has_samples = any(f == fam or f.startswith(fam + "_") for f in families)
            if not has_samples:
                continue
            n += 1
            r = recorded.get(fam)
            if r is None and md.get("type") == "counter" and fam.endswith("_total"):
                # Prometheus' Accept header gets the OpenMetrics exposition,
                # where a counter's family is its name without _total.
                r = recorded.get(fam[:-len("_total")])
            if r is None:
                problems.append(f"Prometheus recorded no metadata for family {fam}")
                continue
            if md.get("type", "untyped") != r.get("type"):
                problems.append(f"{fam}: TYPE {md.get('type')} on novamon, {r.get('type')} in Prometheus")
            if md.get("help", "") != r.get("help", ""):
                problems.append(f"{fam}: HELP {md.get('help')!r} vs {r.get('help')!r}")
        log(f"compared TYPE/HELP of {n} metric families")

    # The scrapes themselves must have been clean (no sample rejected).
    for q in ('min_over_time(up{job="novamon"}[1m])',
              'scrape_samples_scraped{job="novamon"} - scrape_samples_post_metric_relabeling{job="novamon"}'):
        r = prom_query(prom, q)
        log(f"  {q} = {r[0]['value'][1] if r else 'none'}")
    r = prom_query(prom, 'min_over_time(up{job="novamon"}[1m])')
    if r and float(r[0]["value"][1]) != 1:
        problems.append("a scrape of novamon failed (up was 0); see Prometheus' /api/v1/targets")

    if problems:
        for p in problems:
            log(f"  MISMATCH: {p}")
        e2e.fail(f"{len(problems)} difference(s) between novamon's /metrics and what Prometheus scraped")
    log("PASS: Prometheus ingested exactly the series novamon exposes, with the same values and metadata")


if __name__ == "__main__":
    main()
