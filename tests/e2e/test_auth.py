# SPDX-License-Identifier: Apache-2.0
"""Security end to end: novamon with `auth: {mode: on, hs256_secret_file: ...}`
and tokens minted by `novamon token create`.

  - without a token every /api/* route (and an unknown one) is 401 with a
    WWW-Authenticate challenge and a JSON error; /health (and /metrics, public
    by default) answer without one; bad tokens (garbage, another secret, alg
    none, truncated, oversized) are 401 with error="invalid_token"; an oversized
    Authorization header gets a clean 4xx and the daemon lives on;
  - a viewer gets 403 on POST /api/metrics and on GET /api/audit, and so does
    a tenant's operator on POST /api/metrics (it would write any tenant);
  - an admin ingests series labelled tenant="A" and tenant="B"; tenant A's
    token sees only tenant="A" series on every query and metadata route,
    whatever the query says, also with ?access_token=;
  - the audit log records the POSTs (allowed and refused) with who, what,
    from where and the result; GET /api/audit works for an admin; the file's
    hash chain is checked here independently (hashlib);
  - TLS: with a self-signed certificate the port speaks HTTPS only;
  - auto mode on a non-loopback address with no key makes a 0600 secret and
    says how to create the first admin token.
"""
import base64
import hashlib
import http.client
import json
import os
import ssl
import shutil
import subprocess
import time
import urllib.parse

import e2e
from e2e import log

ROUTES = [
    # (method, path+query, body) for every /api/* route of the daemon
    ("GET", "/api/v1/query?query=up", None),
    ("POST", "/api/v1/query", "query=up"),
    ("GET", "/api/v1/query_range?query=up&start=0&end=60&step=15", None),
    ("POST", "/api/v1/query_range", "query=up&start=0&end=60&step=15"),
    ("GET", "/api/v1/series?match[]=up", None),
    ("POST", "/api/v1/series", "match[]=up"),
    ("GET", "/api/v1/labels", None),
    ("POST", "/api/v1/labels", ""),
    ("GET", "/api/v1/label/vm/values", None),
    ("GET", "/api/metrics/query?query=up", None),
    ("POST", "/api/metrics/query", "query=up"),
    ("GET", "/api/metrics/search", None),
    ("POST", "/api/metrics", "[]"),
    ("POST", "/api/v1/write", ""),
    ("GET", "/api/audit", None),
    ("GET", "/api/no-such-route", None),
    ("GET", "/ws/metrics", None),
]


def request(nm, method, path, body=None, token=None, headers=None, tls_ctx=None):
    """(status, headers dict lower-cased, body text); status None on a connection error."""
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    if body is not None:
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded"
                        if not body.startswith(("[", "{")) else "application/json")
    try:
        if tls_ctx is not None:
            c = http.client.HTTPSConnection("127.0.0.1", nm.port, timeout=15, context=tls_ctx)
        else:
            c = http.client.HTTPConnection("127.0.0.1", nm.port, timeout=15)
        c.request(method, path, body=body.encode() if body is not None else None, headers=hdrs)
        r = c.getresponse()
        out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace")
        c.close()
        return out
    except (OSError, http.client.HTTPException) as e:
        return None, {}, f"{type(e).__name__}: {e}"


def mint(secret, role, tenant=None, subject=None, ttl=None):
    argv = [e2e.novamon_bin(), "token", "create", "--role", role, "--secret-file", secret]
    if tenant:
        argv += ["--tenant", tenant]
    if subject:
        argv += ["--subject", subject]
    if ttl:
        argv += ["--ttl", str(ttl)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode != 0 or r.stdout.count(".") != 2:
        e2e.fail(f"novamon token create {role}: rc {r.returncode}: {r.stderr.strip()}")
    return r.stdout.strip()


def b64(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def write_secret(path, data):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def check_json_error(what, status, hdrs, body, want_status, errtype):
    if status != want_status:
        e2e.fail(f"{what}: HTTP {status}, expected {want_status}: {body[:300]}")
    try:
        doc = json.loads(body)
    except ValueError:
        e2e.fail(f"{what}: the {status} body is not JSON: {body[:300]}")
    if doc.get("status") != "error" or doc.get("errorType") != errtype:
        e2e.fail(f"{what}: unexpected error body {body[:300]}")
    if want_status == 401 and not hdrs.get("www-authenticate", "").startswith("Bearer realm="):
        e2e.fail(f"{what}: 401 without a Bearer challenge: {hdrs}")


def verify_chain(path):
    """Check the audit file's hash chain independently of novamon. Returns the records."""
    prev = "0" * 64
    recs = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                e2e.fail(f"{path}:{n}: torn line")
            line = line[:-1]
            cut = line.rindex(b',"hash":"')
            body = line[:cut] + b"}"
            got = line[cut + 9:-2].decode()
            rec = json.loads(line)
            if rec["seq"] != n or rec["prev_hash"] != prev:
                e2e.fail(f"{path}:{n}: chain broken (seq {rec['seq']}, prev {rec['prev_hash']})")
            want = hashlib.sha256(prev.encode() + body).hexdigest()
            if got != want or rec["hash"] != want:
                e2e.fail(f"{path}:{n}: hash {got}, expected {want}")
            prev = want
            recs.append(rec)
    return recs


def series_of(status, body, what):
    if status != 200:
        e2e.fail(f"{what}: HTTP {status}: {body[:300]}")
    return json.loads(body)["data"]


def check_tenancy(nm, tok_a, tok_b, tok_admin):
    q_all = urllib.parse.quote('{__name__=~".+"}')
    for tok, me, other in ((tok_a, "A", "B"), (tok_b, "B", "A")):
        st, _, body = request(nm, "GET", f"/api/v1/query?query={q_all}", token=tok)
        res = series_of(st, body, f"tenant {me}: query all")["result"]
        tenants = {s["metric"].get("tenant") for s in res}
        if tenants != {me}:
            e2e.fail(f"tenant {me} querying {{__name__=~\".+\"}} saw tenants {tenants}: {body[:400]}")
        names = {s["metric"]["__name__"] for s in res}
        if f"e2e_only_{other.lower()}" in names or "e2e_host_load" in names:
            e2e.fail(f"tenant {me} sees {names}")
        log(f"tenant {me}: {{__name__=~\".+\"}} -> {len(res)} series, all tenant=\"{me}\"")

    # every read route, asked in ways that try to reach tenant B
    attempts = [
        ("GET", "/api/v1/query?query=" + urllib.parse.quote('e2e_cpu{tenant="B"}'), None),
        ("GET", "/api/v1/query?query=" + urllib.parse.quote('e2e_cpu{tenant!="A"}'), None),
        ("GET", "/api/v1/query?query=" + urllib.parse.quote('sum by (tenant) (e2e_cpu)'), None),
        ("GET", "/api/v1/query?query=" + urllib.parse.quote('e2e_only_b or e2e_host_load'), None),
        ("POST", "/api/v1/query", "query=" + urllib.parse.quote('{tenant=~".*",__name__=~"e2e.*"}')),
        ("GET", "/api/v1/query_range?query=e2e_cpu&start=%d&end=%d&step=5"
         % (time.time() - 60, time.time() + 5), None),
        ("GET", "/api/metrics/query?query=" + urllib.parse.quote('{vm=~".+"}'), None),
        ("GET", "/api/v1/series?match[]=" + urllib.parse.quote('{__name__=~".+"}'), None),
        ("POST", "/api/v1/series", "match[]=" + urllib.parse.quote('{tenant="B"}')),
        ("GET", "/api/v1/labels", None),
        ("GET", "/api/v1/label/vm/values", None),
        ("GET", "/api/v1/label/tenant/values", None),
        ("GET", "/api/v1/label/__name__/values", None),
        ("GET", "/api/metrics/search", None),
        ("GET", "/api/metrics/search?regex=e2e.*", None),
    ]
    for method, path, body in attempts:
        st, _, text = request(nm, method, path, body, token=tok_a)
        if st != 200:
            e2e.fail(f"tenant A {method} {path}: HTTP {st}: {text[:300]}")
        for leak in ('"B"', "vm-b1", "e2e_only_b", "e2e_host_load", "host-0"):
            if leak in text:
                e2e.fail(f"tenant A {method} {path} leaks {leak}: {text[:500]}")
    # the same through ?access_token= (browser WebSockets use it)
    st, _, text = request(nm, "GET", f"/api/v1/query?query={q_all}&access_token={tok_a}")
    if st != 200 or '"B"' in text or '"A"' not in text:
        e2e.fail(f"access_token: HTTP {st}: {text[:300]}")
    # the admin sees every tenant and the host
    st, _, text = request(nm, "GET", "/api/v1/label/tenant/values", token=tok_admin)
    if st != 200 or json.loads(text)["data"] != ["A", "B"]:
        e2e.fail(f"admin tenant values: HTTP {st}: {text[:300]}")
    log(f"tenant A: {len(attempts)} ways of asking for tenant B's series return none of them")


def test_tls(tmp, secret, tok_admin):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        e2e.fail(f"openssl req: {r.stderr.strip()}")
    nm = e2e.Novamon(extra_config=(
        f"auth:\n  mode: on\n  hs256_secret_file: {secret}\n"
        f"tls:\n  cert_file: {cert}\n  key_file: {key}\n"))
    ctx = ssl.create_default_context(cafile=cert)
    nm.url = f"https://127.0.0.1:{nm.port}"
    e2e.Process.start(nm)
    t_end = time.monotonic() + 30
    while True:
        if not nm.alive():
            e2e.fail(f"novamon with TLS exited:\n{nm.log_tail()}")
        st, _, body = request(nm, "GET", "/health", tls_ctx=ctx)
        if st == 200:
            break
        if time.monotonic() > t_end:
            e2e.fail(f"no HTTPS answer on /health: {body}\n{nm.log_tail()}")
        time.sleep(0.2)
    st, _, body = request(nm, "GET", "/api/v1/labels", token=tok_admin, tls_ctx=ctx)
    if st != 200:
        e2e.fail(f"HTTPS /api/v1/labels with a token: HTTP {st}: {body[:300]}")
    st, _, body = request(nm, "GET", "/api/v1/labels", tls_ctx=ctx)
    if st != 401:
        e2e.fail(f"HTTPS /api/v1/labels without a token: HTTP {st}")
    st, _, body = request(nm, "GET", "/health")
    if st is not None:
        e2e.fail(f"plain HTTP on the TLS port answered {st}: {body[:200]}")
    log("TLS: the port speaks HTTPS (certificate verified), plain HTTP is refused")
    nm.stop()


def test_auto_mode():
    """auto on a non-loopback address without a key: a secret is made and enforced."""
    nm = e2e.Novamon(extra_config="auth:\n  mode: auto\n")
    nm.argv[nm.argv.index("--listen") + 1] = f"0.0.0.0:{nm.port}"
    nm.start()
    secret = os.path.join(nm.state_dir, "auth", "hs256.secret")
    if not os.path.isfile(secret) or os.stat(secret).st_mode & 0o777 != 0o600:
        e2e.fail(f"auto mode made no 0600 secret at {secret}:\n{nm.log_tail()}")
    if f"novamon token create --role admin --secret-file {secret}" not in nm.log_tail(50):
        e2e.fail(f"auto mode did not say how to create the first admin token:\n{nm.log_tail()}")
    st, _, _ = request(nm, "GET", "/api/v1/labels")
    if st != 401:
        e2e.fail(f"auto mode on 0.0.0.0: /api/v1/labels without a token is {st}, not 401")
    st, _, body = request(nm, "GET", "/api/v1/labels", token=mint(secret, "viewer"))
    if st != 200:
        e2e.fail(f"auto mode: a token from the generated secret gets {st}: {body[:200]}")
    nm.stop()
    log("auto mode on 0.0.0.0: secret made (0600), first-admin hint logged, tokens enforced")


def main():
    e2e.deadline_guard(240, "test_auth")
    if not shutil.which("openssl"):
        e2e.skip("openssl (the command) is needed to make a test certificate")
    tmp = e2e.make_tmpdir("novamon-e2e-auth-")
    secret = os.path.join(tmp, "hs256.secret")
    write_secret(secret, os.urandom(32))
    other = os.path.join(tmp, "other.secret")
    write_secret(other, os.urandom(32))

    nm = e2e.Novamon(extra_config=f"auth:\n  mode: on\n  hs256_secret_file: {secret}\n")
    nm.start()
    admin = mint(secret, "admin", subject="root-e2e")
    operator = mint(secret, "operator", subject="op-e2e")
    viewer = mint(secret, "viewer", subject="view-e2e")
    tok_a = mint(secret, "viewer", tenant="A", subject="alice")
    tok_b = mint(secret, "operator", tenant="B", subject="bob")

    # public: /health and /metrics (auth.public_metrics defaults to true)
    for path in ("/health", "/metrics"):
        st, _, body = request(nm, "GET", path)
        if st != 200:
            e2e.fail(f"GET {path} without a token: HTTP {st}: {body[:200]}")

    # no token: 401 everywhere else
    for method, path, body in ROUTES:
        st, hdrs, text = request(nm, method, path, body)
        check_json_error(f"{method} {path} without a token", st, hdrs, text, 401, "unauthorized")
        if "error=" in hdrs.get("www-authenticate", ""):
            e2e.fail(f"{method} {path}: a missing token is not an invalid one (RFC 6750 3.1)")
    log(f"no token: 401 with a Bearer challenge on all {len(ROUTES)} routes; /health, /metrics open")

    # bad tokens: 401 invalid_token
    h, p, s = admin.split(".")
    bad = {
        "garbage": "not-a-token",
        "another secret": mint(other, "admin"),
        "alg none": b64({"alg": "none", "typ": "JWT"}) + "." + p + ".",
        "alg none signed": b64({"alg": "none"}) + "." + p + "." + s,
        "forged payload": h + "." + b64({"sub": "x", "role": "admin", "exp": 4102444800}) + "." + s,
        "truncated": admin[:-5],
        "oversized": admin + "A" * 9000,
        "not bearer": None,
    }
    for what, tok in bad.items():
        if tok is None:
            st, hdrs, text = request(nm, "GET", "/api/v1/labels",
                                     headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
        else:
            st, hdrs, text = request(nm, "GET", "/api/v1/labels", token=tok)
        check_json_error(f"bad token ({what})", st, hdrs, text, 401, "unauthorized")
        if 'error="invalid_token"' not in hdrs.get("www-authenticate", ""):
            e2e.fail(f"bad token ({what}): challenge {hdrs.get('www-authenticate')!r}")
    big, _, text = request(nm, "GET", "/api/v1/labels", token="A" * 40000)
    if big is not None and not 400 <= big < 500:
        e2e.fail(f"a 40 kB Authorization header: HTTP {big}")
    st, _, _ = request(nm, "GET", "/health")
    if st != 200 or not nm.alive():
        e2e.fail(f"novamon did not survive the bad tokens:\n{nm.log_tail()}")
    log(f"{len(bad)} kinds of bad token: 401 invalid_token; a 40 kB header: "
        f"{big or 'connection closed'}; still serving")

    # roles
    sample = json.dumps([{"name": "e2e_cpu", "value": 1, "tags": {"tenant": "A", "vm": "vm-a1"}}])
    st, hdrs, text = request(nm, "POST", "/api/metrics", sample, token=viewer)
    check_json_error("viewer POST /api/metrics", st, hdrs, text, 403, "forbidden")
    for tok, who in ((viewer, "viewer"), (operator, "operator"), (tok_a, "tenant viewer")):
        st, hdrs, text = request(nm, "GET", "/api/audit", token=tok)
        check_json_error(f"{who} GET /api/audit", st, hdrs, text, 403, "forbidden")

    # data for two tenants and the host, as the admin
    now = time.time()
    items = []
    for i in range(5):
        t = now - 20 + i * 5
        items += [
            {"name": "e2e_cpu", "value": 1 + i, "timestamp": t, "tags": {"tenant": "A", "vm": "vm-a1"}},
            {"name": "e2e_cpu", "value": 2 + i, "timestamp": t, "tags": {"tenant": "A", "vm": "vm-a2"}},
            {"name": "e2e_cpu", "value": 40 + i, "timestamp": t, "tags": {"tenant": "B", "vm": "vm-b1"}},
            {"name": "e2e_only_b", "value": 7, "timestamp": t, "tags": {"tenant": "B", "vm": "vm-b1"}},
            {"name": "e2e_host_load", "value": 3, "timestamp": t, "tags": {"vm": "host-0"}},
        ]
    st, _, text = request(nm, "POST", "/api/metrics", json.dumps(items), token=admin)
    if st != 200 or json.loads(text).get("accepted") != len(items):
        e2e.fail(f"admin POST /api/metrics: HTTP {st}: {text[:300]}")
    # an operator without a tenant may write; one of tenant B may not (ingest
    # takes any tenant label, so a tenant's token could write into another's)
    one = json.dumps([{"name": "e2e_only_b", "value": 8, "tags": {"tenant": "B"}}])
    st, _, text = request(nm, "POST", "/api/metrics", one, token=operator)
    if st != 200:
        e2e.fail(f"operator POST /api/metrics: HTTP {st}: {text[:300]}")
    st, hdrs, text = request(nm, "POST", "/api/metrics", one, token=tok_b)
    check_json_error("tenant B operator POST /api/metrics", st, hdrs, text, 403, "forbidden")

    check_tenancy(nm, tok_a, tok_b, admin)

    # the audit log
    st, _, text = request(nm, "GET", "/api/audit?limit=100", token=admin)
    if st != 200:
        e2e.fail(f"admin GET /api/audit: HTTP {st}: {text[:300]}")
    doc = json.loads(text)
    if doc.get("verified") is not True:
        e2e.fail(f"GET /api/audit: not verified: {text[:300]}")
    seen = {(r["action"], r["actor"]["subject"], r["result"]) for r in doc["records"]}
    for want in (("POST /api/metrics", "view-e2e", 403), ("POST /api/metrics", "root-e2e", 200),
                 ("POST /api/metrics", "op-e2e", 200), ("POST /api/metrics", "bob", 403)):
        if want not in seen:
            e2e.fail(f"audit log lacks {want}: {seen}")
    if any(r["remote_addr"] != "127.0.0.1" or not r["time"].endswith("Z") for r in doc["records"]):
        e2e.fail(f"audit records without a peer or an RFC 3339 time: {doc['records']}")
    if any(r["action"].startswith("GET ") for r in doc["records"]):
        e2e.fail("reads are not administrative actions")
    nm.stop()
    recs = verify_chain(os.path.join(nm.state_dir, "audit", "audit.log"))
    if recs[-1]["hash"] != doc["head"]["hash"] or len(recs) != doc["head"]["seq"]:
        e2e.fail("GET /api/audit's head is not the file's last record")
    log(f"audit: {len(recs)} records (POSTs allowed and refused), chain verified independently")

    test_tls(tmp, secret, admin)
    test_auto_mode()
    log("PASS")


if __name__ == "__main__":
    main()
