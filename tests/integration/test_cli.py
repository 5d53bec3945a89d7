#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The daemon's outside contract: --help, errors for bad input, /health JSON,
/metrics valid for promtool, 404/405, a taken port, and `novamon top`."""
import json
import os
import shutil
import socket
import subprocess
import tempfile

from harness import Daemon, fail, need_bpf

BIN = os.environ.get("NOVAMON_BIN", "novamon")


def run(*args, code=0, stdin=None):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, input=stdin, timeout=30)
    if p.returncode != code:
        fail(f"novamon {' '.join(args)}: exit {p.returncode}, want {code}\n{p.stdout}{p.stderr}")
    return p


def main():
    need_bpf()
    for cmd in (["--help"], ["run", "--help"], ["top", "--help"]):
        if "Usage" not in run(*cmd).stdout:
            fail(f"novamon {' '.join(cmd)} printed no usage")
    if "novamon" not in run("version").stdout:
        fail("novamon version printed no version")
    run("frobnicate", code=2)
    err = run("run", "--probes", "kvm,bogus", code=2).stderr
    if "bogus" not in err:
        fail(f"bad --probes error does not name the bad value: {err}")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as cfg:
        cfg.write("listen: 127.0.0.1:1\ncapture:\n  ring_bytes: 1000\n")
        cfg.flush()
        err = run("run", "--config", cfg.name, code=1).stderr
        if "ring_bytes" not in err or ":3" not in err:
            fail(f"bad config error does not name key and line: {err}")
    run("run", "--config", "/nonexistent/novamon.yaml", code=1)

    state = tempfile.mkdtemp(prefix="novamon-cli-")
    with Daemon(config=f"state_dir: {state}\n") as d:
        h = d.health()
        for key in ("status", "capture", "uptime_seconds"):
            if key not in h:
                fail(f"/health has no {key}: {h}")
        cap = h["capture"]
        for key in ("probes", "workers", "events_per_second", "events_lost_total"):
            if key not in cap:
                fail(f"/health capture has no {key}: {cap}")
        if not cap["workers"] or not cap["workers"][0]["cpus"]:
            fail(f"/health lists no worker with CPUs: {cap['workers']}")
        if h["status"] != "ok":
            fail(f"status {h['status']} with root and BTF: {json.dumps(h)}")
        d.wait_tick(1)
        status, headers, body = d.get("/metrics")
        if "version=0.0.4" not in headers.get("Content-Type", ""):
            fail(f"/metrics content type {headers.get('Content-Type')}")
        for name in ("novamon_events_total", "novamon_events_lost_total",
                     "novamon_process_resident_memory_bytes", "novamon_block_requests_total",
                     "novamon_net_packets_total", "novamon_kvm_userspace_exits_total"):
            if f"# TYPE {name} " not in body:
                fail(f"/metrics has no {name} family")
        promtool = shutil.which("promtool")
        if promtool:
            p = subprocess.run([promtool, "check", "metrics"], input=body, text=True,
                               capture_output=True)
            if p.returncode != 0:
                fail(f"promtool check metrics exit {p.returncode}: {p.stdout}{p.stderr}")
            print("promtool check metrics: clean")
        else:
            print("promtool not installed: exposition lint not checked")
        try:
            d.get("/nope")
            fail("/nope did not answer 404")
        except Exception as e:  # urllib raises HTTPError
            if getattr(e, "code", None) != 404:
                fail(f"/nope: {e}")
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"DELETE /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        head = s.recv(4096).split(b"\r\n")
        if b" 405 " not in head[0] or b"allow: get, head" not in [h.lower() for h in head]:
            fail(f"DELETE /metrics did not answer 405 with allow: GET, HEAD: {head}")
        s.close()
        # HEAD: the GET answer's status and headers (its length), and no body
        for path in ("/metrics", "/health"):
            s = socket.create_connection(("127.0.0.1", d.port))
            s.settimeout(5)
            s.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            s.close()
            hdr, _, body = got.partition(b"\r\n\r\n")
            lines = hdr.split(b"\r\n")
            clen = [int(h.split(b":")[1]) for h in lines if h.lower().startswith(b"content-length:")]
            if b" 200 " not in lines[0] or not clen or clen[0] <= 0 or body:
                fail(f"HEAD {path}: {lines[0]!r}, content-length {clen}, {len(body)} body bytes")
        print("HEAD /metrics and /health: 200, the GET length, no body")
        # A second daemon on the same port fails clearly.
        p = subprocess.run([BIN, "run", "--no-capture", "--listen", f"127.0.0.1:{d.port}"],
                           capture_output=True, text=True, timeout=30)
        if p.returncode == 0 or "in use" not in p.stderr:
            fail(f"a second daemon on a taken port: exit {p.returncode}: {p.stderr}")
        # novamon query against the store the tick fills.
        d.wait_tick(1)
        p = run("query", "--url", d.url, "novamon_build_info")
        if "novamon_build_info" not in p.stdout or "version=" not in p.stdout.replace('"', ""):
            fail(f"novamon query printed: {p.stdout}")
        p = run("query", "--url", d.url, "--json", 'sum by (source) (novamon_events_total)')
        if json.loads(p.stdout)["data"]["resultType"] != "vector":
            fail(f"novamon query --json: {p.stdout}")
        p = run("query", "--url", d.url, "rate(novamon_events_total[1m:10s])", code=1)
        if "subquer" not in (p.stdout + p.stderr).lower():
            fail(f"an unsupported subquery is not named in the error: {p.stdout}{p.stderr}")
        # novamon top, one batch snapshot.
        p = run("top", "--url", d.url, "--batch", "-n", "2", "--interval", "0.5")
        if not p.stdout.strip():
            fail("novamon top printed nothing")
    # top against nothing says so.
    p = run("top", "--url", "http://127.0.0.1:1", "--batch", "-n", "1", code=1)
    if "cannot reach" not in p.stderr:
        fail(f"top without a daemon: {p.stderr}")
    shutil.rmtree(state, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
