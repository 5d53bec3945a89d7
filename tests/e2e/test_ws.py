# SPDX-License-Identifier: Apache-2.0
"""The WebSocket feeds (docs/websocket.md) against a real `novamon run
--no-capture` with a store, through a WebSocket client written here on raw
sockets (Debian's python3 has no websocket module): samples go in with POST
/api/metrics each half second, and

  - a subscription gets a full state, then a delta every second with
    increasing seq, each message within a second of its tick, and the state
    the deltas build equals /api/v1/query at the message's time;
  - the binary encoding decodes to the same state as JSON;
  - a client that reconnects with resume_from gets exactly the messages it
    missed (consecutive seqs, no full state) and ends in the live state; an
    old resume_from gets resync and a full state;
  - a bad query gets the engine's parse error; invalid JSON and unknown
    types get error messages; an oversized message closes with 1009; a
    binary frame with 1003; a wrong path gets 404;
  - a client that never reads is dropped with 1008 and a reason while
    another client keeps receiving every second on time, and a crowd of
    300 more (enough for the daemon to split its writes among its sender
    threads) get every second's delta, in order;
  - a silent client gets a ping (about 30 s);
  - with tokens enforced (when this build wires them): no or a bad token
    gets 401, a good one (HS256, minted here) 101.
"""
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import threading
import time
import urllib.request

import e2e
from e2e import fail, log


# --------------------------------------------------------------------------
# A minimal RFC 6455 client

class WSClosed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"closed {code} {reason!r}")
        self.code, self.reason = code, reason


class WS:
    def __init__(self, port, path, headers=(), rcvbuf=None, timeout=10):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                        f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                        + "".join(h + "\r\n" for h in headers) + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                break
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode(errors="replace")
        parts = self.head.split()
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            hdrs = {k.strip().lower(): v.strip() for k, _, v in
                    (line.partition(":") for line in self.head.split("\r\n")[1:])}
            if hdrs.get("sec-websocket-accept") != want:
                fail(f"bad Sec-WebSocket-Accept in {self.head!r}")

    def send(self, payload, opcode=1):
        if isinstance(payload, str):
            payload = payload.encode()
        n, mask = len(payload), os.urandom(4)
        if n < 126:
            h = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            h = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            h = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.s.sendall(h + mask + body)

    def send_json(self, obj):
        self.send(json.dumps(obj))

    def _need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed without a close frame")
            self.buf += d

    def frame(self):
        """(opcode, payload) of the next frame; pings are answered."""
        while True:
            self._need(2)
            b0, b1 = self.buf[0], self.buf[1]
            if b1 & 0x80:
                fail("the server masked a frame")
            n, off = b1 & 0x7f, 2
            if n == 126:
                self._need(4)
                n, off = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                self._need(10)
                n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
            self._need(off + n)
            op, p = b0 & 0x0f, self.buf[off:off + n]
            self.buf = self.buf[off + n:]
            if op == 8:
                code = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else None
                raise WSClosed(code, p[2:].decode(errors="replace"))
            if op == 9:
                self.pinged = True
                self.send(p, 10)
                continue
            return op, p

    def msg(self):
        """The next message: a dict for text, bytes for binary."""
        op, p = self.frame()
        return json.loads(p) if op == 1 else p

    def close(self):
        self.s.close()


# --------------------------------------------------------------------------
# Helpers

def post_samples(nm, samples):
    req = urllib.request.Request(nm.url + "/api/metrics", data=json.dumps(samples).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 200:
            fail(f"POST /api/metrics: HTTP {r.status}")


class Feeder(threading.Thread):
    """Two gauges (vm a, b) whose values change every half second."""

    def __init__(self, nm):
        super().__init__(daemon=True)
        self.nm, self.stop, self.n = nm, threading.Event(), 0

    def run(self):
        while not self.stop.is_set():
            self.n += 1
            now = time.time()
            try:
                post_samples(self.nm, [{"name": "e2e_ws_gauge", "value": self.n * 10 + i,
                                        "timestamp": now, "tags": {"vm": vm}}
                                       for i, vm in enumerate(("a", "b"))])
            except OSError as e:
                log(f"feeder: {e}")
            self.stop.wait(0.5)


def key(labels):
    return tuple(sorted(labels.items()))


def apply(state, m):
    """Apply a data message to {label key: value}; returns state."""
    if m["full"]:
        state = {}
    for s in m["set"]:
        v = s["v"]
        state[key(s["labels"])] = float(v) if isinstance(v, str) else v
    for d in m["del"]:
        state.pop(key(d), None)
    return state


def post_wide(nm, name, n):
    """n series of name, now, with long label values: series j has the value j."""
    now, pad = time.time(), "x" * 60
    for i in range(0, n, 500):
        post_samples(nm, [{"name": name, "value": j, "timestamp": now,
                           "tags": {"series": f"{j:05d}-{pad}"}} for j in range(i, min(i + 500, n))])


def next_data(ws, sid=None, timeout=5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = ws.msg()
        if isinstance(m, dict) and m.get("type") == "data" and (sid is None or m["id"] == sid):
            return m
        if isinstance(m, dict) and m.get("type") == "error":
            fail(f"unexpected error message {m}")
    fail(f"no data message for {sid} within {timeout} s")


def decode_binary(p, table):
    """A binary data message into the same shape as a JSON one (table: index -> labels)."""
    pos = 0

    def varint():
        nonlocal pos
        v, shift = 0, 0
        while True:
            b = p[pos]
            pos += 1
            v |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                return v
    if p[0] != 0x44:
        fail(f"binary message does not start with 'D': {p[:8]!r}")
    pos = 1
    n = varint()
    sid = p[pos:pos + n].decode()
    pos += n
    flags = p[pos]
    pos += 1
    m = {"type": "data", "id": sid, "full": bool(flags & 1), "seq": varint(), "t": varint(),
         "set": [], "del": []}
    if m["full"]:
        table.clear()
    for _ in range(varint()):
        x = varint()
        if x & 1:
            n = varint()
            table[x >> 1] = json.loads(p[pos:pos + n])
            pos += n
        v = struct.unpack("<d", p[pos:pos + 8])[0]
        pos += 8
        m["set"].append({"labels": table[x >> 1], "v": v})
    for _ in range(varint()):
        m["del"].append(table.pop(varint()))
    if pos != len(p):
        fail(f"binary message has {len(p) - pos} trailing bytes")
    return m


def api_state(nm, query, t_ms):
    status, doc, text = e2e.api_get(nm.url, "/api/v1/query",
                                    [("query", query), ("time", f"{t_ms / 1000:.3f}")])
    if status != 200:
        fail(f"/api/v1/query {query}: HTTP {status} {text[:200]}")
    return {key(r["metric"]): float(r["value"][1]) for r in doc["data"]["result"]}


def expect_close(ws, code, what, timeout=10):
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ws.frame()
    except WSClosed as c:
        if c.code != code:
            fail(f"{what}: closed with {c.code} {c.reason!r}, expected {code}")
        log(f"ok: {what}: close {c.code} {c.reason!r}")
        return c
    except (EOFError, OSError) as e:
        fail(f"{what}: no close frame ({e})")
    fail(f"{what}: still open after {timeout} s")


# --------------------------------------------------------------------------
# The checks

def check_stream(nm, port):
    ws = WS(port, "/ws/metrics")
    ws.send_json({"type": "subscribe", "id": "g", "query": "e2e_ws_gauge"})
    first = next_data(ws, "g")
    if not first["full"] or len(first["set"]) != 2:
        fail(f"first message is not the full state of 2 series: {first}")
    state, seqs, lat = apply({}, first), [first["seq"]], []
    for _ in range(6):
        m = next_data(ws, "g", timeout=3)
        lat.append(time.time() * 1000 - m["t"])
        if m["full"]:
            fail(f"a live delta came full: {m}")
        if m["seq"] <= seqs[-1]:
            fail(f"seq did not increase: {seqs[-1]} then {m['seq']}")
        if m["t"] != m["seq"] * 1000:
            fail(f"t {m['t']} is not seq {m['seq']} in ms")
        if not m["set"]:
            fail(f"the values changed but the delta sets nothing: {m}")
        seqs.append(m["seq"])
        state = apply(state, m)
    if seqs[-1] - seqs[0] > 8:
        fail(f"6 deltas spanned {seqs[-1] - seqs[0]} s: {seqs}")
    if max(lat) > 1000:
        fail(f"deltas arrived up to {max(lat):.0f} ms after their tick")
    want = api_state(nm, "e2e_ws_gauge", seqs[-1] * 1000)
    if state != want:
        fail(f"the state built from deltas at seq {seqs[-1]} is {state}, /api/v1/query says {want}")
    log(f"ok: full state then deltas each second, seqs {seqs}, latency max {max(lat):.0f} ms, "
        f"state equals /api/v1/query")

    # binary: the same stream, decoded, builds the same state
    wb = WS(port, "/ws/metrics")
    wb.send_json({"type": "hello", "encoding": "binary"})
    wb.send_json({"type": "subscribe", "id": "g", "query": "e2e_ws_gauge"})
    table, bstate, jsize, bsize = {}, {}, 0, 0
    for _ in range(4):
        p = wb.msg()
        if not isinstance(p, bytes):
            fail(f"binary mode sent {p}")
        m = decode_binary(p, table)
        bstate = apply(bstate, m)
        bsize = len(p)
    # catch the JSON client up to the same seq
    while seqs[-1] < m["seq"]:
        jm = next_data(ws, "g")
        state = apply(state, jm)
        seqs.append(jm["seq"])
        jsize = len(json.dumps(jm, separators=(",", ":")))
    if seqs[-1] != m["seq"] or state != bstate:
        fail(f"binary state at {m['seq']} {bstate} != JSON state at {seqs[-1]} {state}")
    log(f"ok: binary encoding builds the JSON state (a delta: {bsize} B binary, ~{jsize} B JSON)")
    wb.close()
    return ws, state, seqs[-1]


def check_resume(nm, port, ws, last_seq):
    ws.close()
    time.sleep(3.2)  # the feeds go on; about three evaluations are missed
    w2 = WS(port, "/ws/metrics")
    w2.send_json({"type": "subscribe", "id": "g", "query": "e2e_ws_gauge",
                  "resume_from": last_seq})
    w3 = WS(port, "/ws/metrics")
    w3.send_json({"type": "subscribe", "id": "g", "query": "e2e_ws_gauge"})
    fresh = next_data(w3, "g")
    seqs = []
    # rebuild from what the old client held: the replay must lead to the live state
    state = None
    first = next_data(w2, "g")
    if first["full"]:
        fail(f"resume_from {last_seq} (held) got a full state: {first}")
    if first["seq"] != last_seq + 1:
        fail(f"resume_from {last_seq}: the first message has seq {first['seq']}")
    seqs.append(first["seq"])
    state = first
    replay = [first]
    while seqs[-1] < fresh["seq"]:
        m = next_data(w2, "g")
        if m["seq"] != seqs[-1] + 1:
            fail(f"gap in the replay: {seqs[-1]} then {m['seq']}")
        seqs.append(m["seq"])
        replay.append(m)
    if len(seqs) < 3:
        fail(f"expected at least 3 missed evaluations, replayed {seqs}")
    log(f"ok: resume_from {last_seq} replayed {seqs} without gaps")
    return replay, fresh, w2, w3


def check_resume_state(old_state, replay, fresh):
    state = dict(old_state)
    for m in replay:
        state = apply(state, m)
    want = apply({}, fresh)
    if state != want:
        fail(f"old state + replay = {state}, the live full state = {want}")
    log("ok: the old state plus the replayed deltas equals the live state")


def check_errors(port):
    w = WS(port, "/ws/metrics")
    w.send_json({"type": "subscribe", "id": "bad", "query": "sum(rate(x[1m]"})
    m = w.msg()
    if m.get("type") != "error" or m.get("id") != "bad" or not m.get("error"):
        fail(f"bad query: {m}")
    log(f"ok: bad query: {m['error']!r}")
    w.send_json({"type": "subscribe", "id": "r", "query": "e2e_ws_gauge[1m]"})
    m = next((x for x in iter(w.msg, None) if x.get("id") == "r"), None)
    if m.get("type") != "error" or "range vector" not in m["error"]:
        fail(f"a range vector query: {m}")
    log(f"ok: range vector query: {m['error']!r}")
    w.send("{not json")
    m = w.msg()
    if m.get("type") != "error" or "invalid JSON" not in m.get("error", "") or "id" in m:
        fail(f"invalid JSON: {m}")
    w.send_json({"type": "publish", "id": "x"})
    m = w.msg()
    if m.get("type") != "error" or "unknown type" not in m.get("error", ""):
        fail(f"unknown type: {m}")
    w.send_json({"type": "unsubscribe", "id": "never"})
    m = w.msg()
    if m.get("type") != "error" or m.get("id") != "never":
        fail(f"unsubscribe of an unknown id: {m}")
    log("ok: invalid JSON, unknown type and unknown id get error messages")
    w.send("x" * 70000)
    expect_close(w, 1009, "a 70,000-byte message")
    w = WS(port, "/ws/metrics")
    w.send(b"\x00\x01", opcode=2)
    expect_close(w, 1003, "a binary frame")
    w = WS(port, "/ws/metrics")
    for _ in range(8):
        w.send("[]")
    c = expect_close(w, 1008, "8 bad messages in a row")
    if "bad messages" not in c.reason:
        fail(f"reason {c.reason!r}")
    w = WS(port, "/ws/nowhere")
    if w.status != 404:
        fail(f"/ws/nowhere: {w.status} {w.head!r}")
    log("ok: /ws/nowhere answers 404")


def check_slow_client(nm, port):
    # 2,000 series whose values change every second: about 200 KB a second
    post_wide(nm, "e2e_ws_wide", 2000)
    slow = WS(port, "/ws/metrics", rcvbuf=4096)
    slow.send_json({"type": "subscribe", "id": "wide", "query": "e2e_ws_wide + time()"})
    # they read only at the end: what they are sent in between waits in the kernel
    crowd = [WS(port, "/ws/metrics") for _ in range(CROWD)]
    for w in crowd:
        w.send_json({"type": "subscribe", "id": "c", "query": "e2e_ws_gauge"})
    # a second slow client, once the crowd makes the daemon split its rounds
    # among sender threads: once it has read what lws held for it, its data
    # is a sender's own send() until it is coalesced and dropped
    slow2 = WS(port, "/ws/metrics", rcvbuf=4096)
    slow2.send_json({"type": "subscribe", "id": "wide", "query": "e2e_ws_wide + time()"})
    seqs2 = [next_data(slow2, "wide")["seq"] for _ in range(2)]  # what lws held is read
    check_partial_write(nm, port)
    fast = WS(port, "/ws/metrics")
    fast.send_json({"type": "subscribe", "id": "g", "query": "e2e_ws_gauge"})
    next_data(fast, "g")
    # the slow client reads nothing for 16 s; the fast one must stay on time
    t_end, gaps, lat, last = time.monotonic() + 16, [], [], None
    while time.monotonic() < t_end:
        m = next_data(fast, "g", timeout=3)
        now = time.monotonic()
        if last is not None:
            gaps.append(now - last)
        last = now
        lat.append(time.time() * 1000 - m["t"])
    if max(gaps) > 1.6 or max(lat) > 1000:
        fail(f"the fast client was delayed: gaps up to {max(gaps):.2f} s, "
             f"latency up to {max(lat):.0f} ms")
    log(f"ok: while a client did not read, another got {len(gaps) + 1} messages, gaps <= "
        f"{max(gaps):.2f} s, latency <= {max(lat):.0f} ms")
    check_crowd(crowd)
    # now read: the data the kernel held, then the close with its reason
    n = 0
    slow.s.settimeout(10)
    try:
        while True:
            slow.frame()
            n += 1
    except WSClosed as c:
        if c.code != 1008 or "too slow" not in c.reason:
            fail(f"slow client closed with {c.code} {c.reason!r}")
        log(f"ok: the slow client got {n} messages, then close {c.code} {c.reason!r}")
    except (EOFError, OSError) as e:
        fail(f"slow client: no close frame after {n} messages ({e})")
    # every byte of slow2's stream, written by lws and by a sender's send(),
    # makes whole frames of valid JSON with increasing seqs, then the close
    n, seqs = 0, seqs2
    slow2.s.settimeout(10)
    try:
        while True:
            op, p = slow2.frame()
            if op != 1:
                fail(f"second slow client: opcode {op} in a JSON stream")
            try:
                m = json.loads(p)
            except ValueError as e:
                fail(f"second slow client: message {n} is not JSON ({e}): {p[:80]!r}")
            if m.get("type") == "data" and m.get("id") == "wide":
                if seqs and m["seq"] <= seqs[-1]:
                    fail(f"second slow client: seq {m['seq']} after {seqs[-1]}")
                seqs.append(m["seq"])
            n += 1
    except WSClosed as c:
        if c.code != 1008 or "too slow" not in c.reason:
            fail(f"second slow client closed with {c.code} {c.reason!r}")
    except (EOFError, OSError) as e:
        fail(f"second slow client: no close frame after {n} messages ({e})")
    if not seqs:
        fail("second slow client: no data before its close")
    log(f"ok: a slow client served by the sender threads got {n} whole messages "
        f"(seqs {seqs[0]}..{seqs[-1]}), then close 1008")
    status, text = e2e.http_get(nm.url + "/metrics")
    if "novamon_ws_dropped_total 2" not in text:
        fail("novamon_ws_dropped_total is not 2 in /metrics")
    fast.close()


CROWD = 300


def check_partial_write(nm, port):
    """A sender's send() that the kernel takes only part of: the rest goes to lws, in order.

    While the crowd makes the daemon write its rounds from sender threads, a
    client that does not read yet subscribes to a 12,000-series query: its
    full state (about 1.3 MB) is larger than the socket's send buffer (twice
    the 256 KiB soft limit), so the sender's send() is short and the network
    thread hands the rest to lws, which writes it as the client drains.
    """
    post_wide(nm, "e2e_ws_huge", 12000)
    big = WS(port, "/ws/metrics", rcvbuf=4096)
    big.send_json({"type": "subscribe", "id": "huge", "query": "e2e_ws_huge"})
    time.sleep(2)  # the full state is written while nothing is read
    big.s.settimeout(10)
    # the state held for "huge", message after message: the 12,000 series
    # come in the full state or, when that was evaluated before the samples
    # were, in the next delta
    state, seqs, end = {}, [], time.monotonic() + 15
    while len(state) < 12000 or len(seqs) < 2:
        if time.monotonic() > end:
            fail(f"huge: {len(state)} series after {len(seqs)} messages")
        m = next_data(big, "huge", timeout=10)
        if seqs and m["seq"] <= seqs[-1]:
            fail(f"huge: seq {m['seq']} after {seqs[-1]}")
        if m["full"] != (not seqs):
            fail(f"huge: full is {m['full']} in message {len(seqs) + 1}")
        seqs.append(m["seq"])
        for x in m["set"]:
            state[x["labels"]["series"]] = int(x["v"])
        for d in m["del"]:
            state.pop(d["series"], None)
    if sorted(state.values()) != list(range(12000)):
        fail("huge: the values held are not 0..11999")
    big.close()
    log(f"ok: 12,000 series (one message of about 1.5 MB, which a sender's send() writes in "
        f"part and lws in the rest) arrived whole in {len(seqs)} messages")


def check_crowd(crowd):
    """Each crowd client has a full state, then one delta a second with consecutive seqs."""
    counts = []
    for i, w in enumerate(crowd):
        # what the kernel holds, without waiting for more
        w.s.setblocking(False)
        try:
            while True:
                d = w.s.recv(65536)
                if not d:
                    break
                w.buf += d
        except BlockingIOError:
            pass
        seqs = []
        try:
            while True:
                m = w.msg()
                if not isinstance(m, dict) or m.get("type") != "data" or m.get("id") != "c":
                    fail(f"crowd client {i}: unexpected message {m}")
                if (m["full"]) != (not seqs):
                    fail(f"crowd client {i}: full is {m['full']} after {len(seqs)} messages")
                if seqs and m["seq"] != seqs[-1] + 1:
                    fail(f"crowd client {i}: seq {m['seq']} after {seqs[-1]}")
                seqs.append(m["seq"])
        except BlockingIOError:
            pass
        counts.append(len(seqs))
        w.close()
    if min(counts) < 12:
        fail(f"a crowd client got {min(counts)} messages in 16 s")
    log(f"ok: {len(crowd)} more clients each got a full state then {min(counts) - 1} to "
        f"{max(counts) - 1} consecutive deltas")


def check_old_resume(port):
    w = WS(port, "/ws/metrics")
    w.send_json({"type": "subscribe", "id": "g", "query": "e2e_ws_gauge", "resume_from": 1})
    m = w.msg()
    if m.get("type") != "resync" or m.get("id") != "g" or not m.get("seq"):
        fail(f"resume_from 1: expected resync, got {m}")
    m = next_data(w, "g")
    if not m["full"]:
        fail(f"after resync: not full: {m}")
    log(f"ok: resume_from 1 gets resync (seq {m['seq']}) then a full state")
    w.close()


def check_ping(port):
    w = WS(port, "/ws/metrics", timeout=45)
    w.pinged = False
    w.send_json({"type": "hello", "encoding": "json"})
    t0 = time.monotonic()
    w.send_json({"type": "subscribe", "id": "g", "query": "e2e_ws_gauge"})
    while not w.pinged and time.monotonic() - t0 < 45:
        next_data(w, "g", timeout=5)
    if not w.pinged:
        fail("no ping within 45 s of silence")
    log(f"ok: ping after {time.monotonic() - t0:.0f} s of client silence; answered, still open")
    next_data(w, "g")
    w.close()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def check_tokens():
    secret_dir = e2e.make_tmpdir("novamon-e2e-ws-auth-")
    secret = os.urandom(32)
    path = os.path.join(secret_dir, "hs256.secret")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
        f.write(secret)
    nm = e2e.Novamon(extra_config=f"auth:\n  mode: on\n  hs256_secret_file: {path}\n").start()
    status, _ = e2e.http_get(nm.url + "/api/v1/query?query=1")
    if status != 401:
        log(f"SKIP (tokens): this build does not enforce tokens on HTTP (GET /api/v1/query: "
            f"{status}); the WebSocket token checks need the auth wiring")
        nm.stop()
        return
    port = nm.port
    for what, hdr in (("no token", []), ("a bad token", ["Authorization: Bearer abc.def.ghi"])):
        w = WS(port, "/ws/metrics", hdr)
        if w.status != 401:
            fail(f"{what}: upgrade answered {w.status}, not 401: {w.head!r}")
    def token(role, tenant=""):
        now = int(time.time())
        claims = {"sub": "e2e", "role": role, "iat": now, "exp": now + 600}
        if tenant:
            claims["tenant"] = tenant
        head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64url(json.dumps(claims).encode())
        sig = b64url(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
        return f"{head}.{body}.{sig}"

    w = WS(port, f"/ws/metrics?access_token={token('viewer')}")
    if w.status != 101:
        fail(f"a good token in access_token: {w.status} {w.head!r}")
    w.close()
    # a tenant's token streams only its tenant's series
    now = time.time()
    req = urllib.request.Request(
        nm.url + "/api/metrics", method="POST",
        data=json.dumps([{"name": "e2e_ws_tenant", "value": i, "timestamp": now,
                          "tags": {"tenant": t, "vm": f"vm{i}"}}
                         for i, t in enumerate(("t1", "t2", "t1"))]).encode(),
        headers={"Content-Type": "application/json",
                 "Authorization": f"Bearer {token('admin')}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 200:
            fail(f"POST /api/metrics as admin: {r.status}")
    w = WS(port, "/ws/metrics", [f"Authorization: Bearer {token('viewer', 't1')}"])
    w.send_json({"type": "subscribe", "id": "x", "query": "e2e_ws_tenant"})
    w.send_json({"type": "subscribe", "id": "s", "query": "sum(e2e_ws_tenant)"})
    got, t_end = {"x": {}, "s": {}}, time.monotonic() + 3.5
    while time.monotonic() < t_end:  # the samples are newer than the tick they arrived in
        m = next_data(w)
        got[m["id"]] = apply(got[m["id"]], m)
    tenants = {dict(k).get("tenant") for k in got["x"]}
    if tenants != {"t1"} or len(got["x"]) != 2 or list(got["s"].values()) != [2]:
        fail(f"tenant t1's feed: {got}")
    w.close()
    log("ok: a tenant's token streams only its tenant's series (2 of 3, sum 2)")
    log("ok: no token and a bad token get 401, a good one 101")
    nm.stop()


def main():
    e2e.deadline_guard(420, "test_ws")
    nm = e2e.Novamon().start()
    probe = WS(nm.port, "/ws/metrics")
    if probe.status != 101:
        fail(f"novamon does not serve /ws/metrics (upgrade answered {probe.status}: "
             f"{probe.head!r}); is api/ws wired into `novamon run`?")
    probe.close()
    feeder = Feeder(nm)
    feeder.start()
    time.sleep(1.5)

    ws, state, last_seq = check_stream(nm, nm.port)
    replay, fresh, w2, w3 = check_resume(nm, nm.port, ws, last_seq)
    check_resume_state(state, replay, fresh)
    w2.close()
    w3.close()
    check_old_resume(nm.port)
    check_errors(nm.port)
    check_slow_client(nm, nm.port)
    check_ping(nm.port)
    feeder.stop.set()
    nm.stop()
    check_tokens()
    log("PASS")


if __name__ == "__main__":
    main()
