# SPDX-License-Identifier: Apache-2.0
"""The dashboard API end to end, against a real PostgreSQL server this test
starts (Debian's postgresql: initdb + pg_ctl from /usr/lib/postgresql/*/bin,
run as the postgres user when the test runs as root, listening on a unix
socket in a temporary directory), and again on the SQLite default.

For each store: a fresh install has the operations dashboard; create, read,
update (a stale version gets 409), a bad document gets a 400 naming the field,
delete; /data returns the daemon's own real series for a time range; the JSON
export re-imports identically; the PNG export has the PNG signature and
decodes (IHDR, zlib-inflated IDAT) to the size asked for; the PDF export is a
PDF with a page; /api/system/metrics and /api/components/status answer; and
everything survives a restart of the daemon (a deleted seed stays deleted).
With PostgreSQL the rows are also checked with psql, so the test knows the
daemon really wrote there.

Skips (77) when PostgreSQL is not installed; fails instead under
NOVAMON_REQUIRE_E2E=1.
"""
import atexit
import glob
import json
import os
import pwd
import shutil
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zlib

import e2e
from e2e import log

# --------------------------------------------------------------------------
# PostgreSQL


def pg_bindir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    for d in reversed(dirs):
        if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return d
    e2e.skip("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb; "
             "Debian package `postgresql`)")


class Postgres:
    """A throw-away PostgreSQL cluster on a unix socket in a temp dir."""

    def __init__(self):
        self.bindir = pg_bindir()
        self.top = e2e.make_tmpdir("novamon-e2e-pg-")
        self.data = os.path.join(self.top, "data")
        self.sock = os.path.join(self.top, "sock")
        self.log = os.path.join(self.top, "postgres.log")
        self.port = e2e.free_port()  # names the socket file (.s.PGSQL.<port>)
        self.user = None
        self.started = False
        if os.geteuid() == 0:
            # initdb refuses root: the cluster belongs to an unprivileged user
            for name in ("postgres", "nobody"):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            if self.user is None:
                e2e.skip("running as root and neither user postgres nor nobody exists")
            os.chmod(self.top, 0o755)
        os.makedirs(self.sock)
        open(self.log, "w").close()
        if self.user:
            for p in (self.sock, self.log):
                os.chown(p, self.user.pw_uid, self.user.pw_gid)
            os.chown(self.top, self.user.pw_uid, self.user.pw_gid)

    def run(self, argv, check=True, timeout=120):
        if self.user:
            argv = ["runuser", "-u", self.user.pw_name, "--"] + argv
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.top)
        if check and r.returncode != 0:
            e2e.fail(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                     f"{self.log_tail()}")
        return r

    def log_tail(self, n=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def start(self):
        b = self.bindir
        self.run([f"{b}/initdb", "-D", self.data, "-U", "novamon", "-A", "trust", "--no-sync",
                  "-E", "UTF8", "--locale=C"])
        opts = (f"-k {self.sock} -p {self.port} -c listen_addresses='' -c fsync=off "
                f"-c max_connections=20")
        self.run([f"{b}/pg_ctl", "-D", self.data, "-l", self.log, "-o", opts, "-w", "-t", "60",
                  "start"])
        self.started = True
        atexit.register(self.stop)  # runs before e2e's cleanup removes the directory
        self.run([f"{b}/createdb", "-h", self.sock, "-p", str(self.port), "-U", "novamon",
                  "dashboards"])
        log(f"PostgreSQL ({b}) on {self.sock}/.s.PGSQL.{self.port}")
        return self

    def stop(self):
        if self.started:
            self.started = False
            self.run([f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"],
                     check=False)

    def url(self):
        return f"postgresql:///dashboards?host={self.sock}&port={self.port}&user=novamon"

    def psql(self, sql):
        r = self.run([f"{self.bindir}/psql", "-h", self.sock, "-p", str(self.port), "-U",
                      "novamon", "-d", "dashboards", "-At", "-c", sql])
        return r.stdout.strip()


# --------------------------------------------------------------------------
# HTTP


def call(nm, method, path, body=None, raw=False):
    """(status, parsed JSON or bytes when raw, content type)."""
    data = None
    headers = {}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(nm.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, payload, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, payload, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    if raw:
        return status, payload, ctype
    try:
        doc = json.loads(payload) if payload else None
    except ValueError:
        e2e.fail(f"{method} {path}: HTTP {status}, not JSON: {payload[:300]!r}")
    return status, doc, ctype


def expect(cond, what):
    if not cond:
        e2e.fail(what)


def png_size(data):
    """Check the PNG signature, walk the chunks, inflate IDAT and check its
    length against IHDR. Returns (width, height)."""
    expect(data[:8] == b"\x89PNG\r\n\x1a\n", f"not a PNG: {data[:16]!r}")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        chunk = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        expect(zlib.crc32(ctype + chunk) & 0xffffffff == crc, f"PNG chunk {ctype!r}: bad CRC")
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", chunk)
        elif ctype == b"IDAT":
            idat += chunk
        elif ctype == b"IEND":
            break
        pos += 12 + length
    expect(ihdr is not None, "PNG without IHDR")
    w, h, depth, color, _, _, interlace = ihdr
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    expect(depth == 8 and interlace == 0, f"unexpected PNG format {ihdr}")
    raw = zlib.decompress(idat)
    expect(len(raw) == h * (1 + w * channels),
           f"PNG pixels: {len(raw)} bytes inflated, IHDR says {w}x{h}x{channels}")
    return w, h


# --------------------------------------------------------------------------
# The checks, once per store

CUSTOM = {
    "name": "e2e custom",
    "description": "made by test_dashboards.py",
    "time_range_seconds": 120,
    "acl": {"viewers": [], "editors": []},
    "widgets": [
        {"id": "rss", "type": "line", "title": "RSS", "unit": "bytes",
         "query": "novamon_process_resident_memory_bytes",
         "thresholds": [{"value": 1e9, "color": "red"}]},
        {"id": "cpu", "type": "area", "title": "CPU", "unit": "cores",
         "query": "rate(novamon_process_cpu_seconds_total[10s])", "options": {"stacked": True}},
        {"id": "tick", "type": "gauge", "title": "Tick", "unit": "seconds",
         "query": "novamon_tick_duration_seconds", "options": {"min": 0, "max": 1}},
        {"id": "series", "type": "stat", "query": "novamon_series_active"},
        {"id": "fds", "type": "bar", "query": "novamon_process_open_fds"},
        {"id": "tab", "type": "table", "query": "novamon_build_info",
         "options": {"sort_by": "version", "page_size": 10}},
        {"id": "ok", "type": "status", "query": "novamon_build_info"},
        {"id": "heat", "type": "heatmap", "query": "novamon_process_threads"},
    ],
}


def check_store(nm, pg=None):
    # A fresh install has the operations dashboard.
    st, doc, _ = call(nm, "GET", "/api/dashboards")
    expect(st == 200, f"GET /api/dashboards: {st} {doc}")
    ids = [d["id"] for d in doc["dashboards"]]
    expect("operations" in ids, f"no operations dashboard on a fresh install: {ids}")
    st, ops, _ = call(nm, "GET", "/api/dashboards/operations")
    expect(st == 200 and ops["name"] == "Operations" and len(ops["widgets"]) >= 10,
           f"operations dashboard: {st} {str(ops)[:300]}")
    log(f"  fresh install: operations dashboard with {len(ops['widgets'])} widgets")

    # Create, read, update, conflict, bad input.
    st, created, _ = call(nm, "POST", "/api/dashboards", CUSTOM)
    expect(st == 201, f"POST: {st} {created}")
    did = created["id"]
    expect(created["version"] == 1 and created["widgets"][0]["id"] == "rss",
           f"created: {created}")
    st, got, _ = call(nm, "GET", f"/api/dashboards/{did}")
    expect(st == 200 and got == created, f"GET after POST differs:\n{got}\n{created}")
    got["name"] = "e2e renamed"
    st, upd, _ = call(nm, "PUT", f"/api/dashboards/{did}", got)
    expect(st == 200 and upd["version"] == 2 and upd["name"] == "e2e renamed", f"PUT: {st} {upd}")
    st, err, _ = call(nm, "PUT", f"/api/dashboards/{did}", got)  # still version 1
    expect(st == 409, f"PUT with a stale version: {st} {err}")
    bad = json.loads(json.dumps(CUSTOM))
    bad["widgets"][3]["type"] = "pie"
    st, err, _ = call(nm, "POST", "/api/dashboards", bad)
    expect(st == 400 and err["error"].startswith('widgets[3].type: unknown type "pie"'),
           f"bad type: {st} {err}")
    st, tmpl, _ = call(nm, "POST", "/api/dashboards", {"template": "executive"})
    expect(st == 201 and tmpl["name"] == "Executive overview", f"template: {st} {tmpl}")
    log("  CRUD, 409 on a stale version, 400 naming widgets[3].type, template: ok")

    # /data: real series of the daemon itself over the last minute (the store
    # gets a sample per second: wait for a few).
    t_end = time.monotonic() + 20
    while True:
        now = time.time()
        st, data, _ = call(nm, "GET",
                           f"/api/dashboards/{did}/data?start={now - 60:.3f}&end={now:.3f}&step=1")
        expect(st == 200, f"/data: {st} {data}")
        by_id = {w["id"]: w for w in data["widgets"]}
        res = by_id.get("rss", {}).get("result", {}).get("result") or [{}]
        if len(res[0].get("values", [])) >= 3 or time.monotonic() > t_end:
            break
        time.sleep(0.5)
    expect(set(by_id) == {w["id"] for w in CUSTOM["widgets"]}, f"/data widgets: {list(by_id)}")
    rss = by_id["rss"]
    expect("result" in rss and rss["result"]["resultType"] == "matrix", f"rss: {rss}")
    series = rss["result"]["result"]
    expect(len(series) == 1 and len(series[0]["values"]) >= 3,
           f"rss: expected one series with points, got {str(series)[:300]}")
    v = float(series[0]["values"][-1][1])
    expect(1e6 < v < 1e11, f"RSS {v} bytes is not a plausible resident size")
    expect("result" in by_id["cpu"], f"cpu: {by_id['cpu']}")
    log(f"  /data: {len(series[0]['values'])} points of RSS, last {v / 1e6:.1f} MB")

    # JSON export re-imports identically (same id once the original is gone).
    st, exp1, ctype = call(nm, "GET", f"/api/dashboards/{did}/export?format=json")
    expect(st == 200 and "version" not in exp1 and exp1["id"] == did, f"export: {st} {exp1}")
    st, _, _ = call(nm, "DELETE", f"/api/dashboards/{did}?version=2")
    expect(st == 204, f"DELETE: {st}")
    st, _, _ = call(nm, "GET", f"/api/dashboards/{did}")
    expect(st == 404, f"GET after DELETE: {st}")
    st, re, _ = call(nm, "POST", "/api/dashboards", exp1)
    expect(st == 201 and re["id"] == did, f"re-import: {st} {re}")
    st, exp2, _ = call(nm, "GET", f"/api/dashboards/{did}/export")
    expect(exp1 == exp2, f"re-imported export differs:\n{exp1}\n{exp2}")
    log("  JSON export re-imported identically")

    # PNG and PDF rendered by the daemon.
    st, png, ctype = call(nm, "GET", f"/api/dashboards/{did}/export?format=png&width=800&height=600"
                          f"&start={now - 60:.3f}&end={now:.3f}", raw=True)
    expect(st == 200 and ctype.startswith("image/png"), f"PNG: {st} {ctype} {png[:200]!r}")
    w, h = png_size(png)
    expect((w, h) == (800, 600), f"PNG is {w}x{h}, asked 800x600")
    st, png2, _ = call(nm, "GET", "/api/dashboards/operations/export?format=png" if "operations" in ids
                       else f"/api/dashboards/{did}/export?format=png", raw=True)
    expect(st == 200, f"PNG of operations: {st}")
    w2, h2 = png_size(png2)
    st, pdf, ctype = call(nm, "GET", f"/api/dashboards/{did}/export?format=pdf", raw=True)
    expect(st == 200 and ctype.startswith("application/pdf"), f"PDF: {st} {ctype}")
    expect(pdf.startswith(b"%PDF-") and b"/Type /Page" in pdf and pdf.rstrip().endswith(b"%%EOF"),
           f"not a PDF with a page: {pdf[:64]!r} ... {pdf[-32:]!r}")
    log(f"  PNG 800x600 ({len(png)} bytes), operations PNG {w2}x{h2}, PDF {len(pdf)} bytes")

    # The daemon about itself.
    st, sysm, _ = call(nm, "GET", "/api/system/metrics")
    expect(st == 200 and sysm["memory"]["resident_bytes"] > 1e6 and sysm["tick"]["lag_seconds"] is not None,
           f"/api/system/metrics: {st} {sysm}")
    st, comp, _ = call(nm, "GET", "/api/components/status")
    names = {c["name"]: c for c in comp["components"]}
    expect(st == 200 and names["store"]["status"] == "up" and names["http"]["status"] == "up"
           and names["capture"]["status"] == "down" and not names["remote_write"]["enabled"],
           f"/api/components/status: {st} {comp}")
    log(f"  components: {', '.join(c['name'] + '=' + c['status'] for c in comp['components'])}")

    if pg:
        n = pg.psql(f"SELECT count(*) FROM novamon_dashboards WHERE id = '{did}' AND version = 1")
        expect(n == "1", f"psql: the re-imported dashboard is not in PostgreSQL ({n!r})")
        log("  psql sees the dashboard rows in PostgreSQL")
    return did


def run_one(store_config, pg=None, label=""):
    log(f"{label}:")
    nm = e2e.Novamon(extra_config=store_config)
    nm.start()
    e2e.require_route(nm, "/api/dashboards", "the dashboard API")
    did = check_store(nm, pg)
    # Restart: everything persists; a deleted seed is not re-created.
    st, _, _ = call(nm, "DELETE", "/api/dashboards/operations")
    expect(st == 204, f"DELETE operations: {st}")
    nm.stop()
    nm.start()
    st, doc, _ = call(nm, "GET", "/api/dashboards")
    ids = [d["id"] for d in doc["dashboards"]]
    expect(did in ids and "operations" not in ids, f"after a restart: {ids}")
    log("  after a restart: dashboards kept, the deleted seed stays deleted")
    nm.stop()
    return nm


def main():
    e2e.deadline_guard(300, "test_dashboards")
    pg = Postgres().start()
    run_one(f"dashboards:\n  store: \"{pg.url()}\"\n", pg, "PostgreSQL")
    nm = run_one("", None, "SQLite (default)")
    db = os.path.join(nm.state_dir, "dashboards.db")
    expect(os.path.exists(db), f"the SQLite default is not at {db}")
    log("PASS: dashboards on PostgreSQL and SQLite")


if __name__ == "__main__":
    main()
