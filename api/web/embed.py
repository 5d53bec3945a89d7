#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Build-time generator: the web UI's files -> one C source that the daemon
links, so that `novamon run` serves the UI with no file on disk.

    embed.py --output webui_assets.c [--manifest vendor/VENDOR.json
             --lock package-lock.json] FILE...

Each FILE is served at /static/<its base name>, except index.html, which is
served at /. The output defines `webui_assets[]` and `webui_nassets` as
declared in api/webui.h: path, content type, bytes (NUL-terminated, the NUL
not counted) and a strong ETag made of the bytes' SHA-256. The output depends
on nothing but the input bytes (no dates, no absolute paths), so builds are
reproducible.

With --manifest and --lock it first checks the vendored files without any
network: the manifest's package, version and integrity must be the lock
file's (a lock bumped without `npm run vendor` fails the build), and every
vendored FILE must have the SHA-256 the manifest records (a hand-edited
vendor file fails the build). `npm run check-vendor` goes further and
compares them with the registry's tarball (api/web/build.mjs).

Exit status: 0, or 1 with a message on stderr.
"""
import argparse
import hashlib
import json
import os
import sys

CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".ico": "image/x-icon",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}


def die(msg):
    print(f"embed.py: {msg}", file=sys.stderr)
    sys.exit(1)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def check_vendor(manifest_path, lock_path, files):
    """The offline half of `npm run check-vendor` (build.mjs check --offline)."""
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        with open(lock_path, encoding="utf-8") as f:
            lock = json.load(f)
    except (OSError, ValueError) as e:
        die(f"cannot read the vendor manifest or the lock file: {e}")
    by_name = {os.path.basename(p): p for p in files}
    for pkg in manifest.get("packages", []):
        name = pkg.get("name")
        entry = lock.get("packages", {}).get(f"node_modules/{name}")
        if not entry:
            die(f"{manifest_path}: package {name!r} is not in {lock_path}")
        for key in ("version", "integrity"):
            if pkg.get(key) != entry.get(key):
                die(f"{manifest_path}: {name} {key} {pkg.get(key)!r} but the lock file has "
                    f"{entry.get(key)!r}: run `npm run vendor` in api/web")
        for vf in pkg.get("files", []):
            path = by_name.get(vf["name"])
            if path is None:
                continue  # vendored but not embedded (LICENSE texts are embedded too, normally)
            with open(path, "rb") as f:
                got = sha256(f.read())
            if got != vf["sha256"]:
                die(f"{path}: SHA-256 {got} is not the manifest's {vf['sha256']} "
                    f"({name} {pkg['version']} {vf['from']}): run `npm run vendor` in api/web")


def c_string_lines(data, width=76):
    r"""The bytes as C string-literal lines. Escapes are \\ \" \n \t \? and
    three-digit octal (never greedy, unlike \x), so any byte may follow one."""
    lines, cur, n = [], [], 0
    for b in data:
        c = chr(b)
        if c in '\\"?':
            tok = "\\" + c  # '?': no trigraphs
        elif c == "\n":
            tok = "\\n"
        elif c == "\t":
            tok = "\\t"
        elif 0x20 <= b < 0x7f:
            tok = c
        else:
            tok = "\\%03o" % b
        cur.append(tok)
        n += len(tok)
        if n >= width or c == "\n":
            lines.append("".join(cur))
            cur, n = [], 0
    if cur:
        lines.append("".join(cur))
    return lines or [""]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--output", required=True)
    ap.add_argument("--manifest")
    ap.add_argument("--lock")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    if bool(args.manifest) != bool(args.lock):
        die("--manifest and --lock go together")
    if args.manifest:
        check_vendor(args.manifest, args.lock, args.files)

    assets, seen = [], set()
    for path in args.files:
        base = os.path.basename(path)
        url = "/" if base == "index.html" else "/static/" + base
        if url in seen:
            die(f"two files would be served at {url}")
        seen.add(url)
        ext = os.path.splitext(base)[1].lower()
        ctype = CONTENT_TYPES.get(ext)
        if not ctype:
            die(f"{path}: no content type known for {ext!r}")
        with open(path, "rb") as f:
            data = f.read()
        assets.append((url, ctype, data, base))
    assets.sort(key=lambda a: a[0])

    out = ["/* SPDX-License-Identifier: Apache-2.0 */",
           "/* Generated by api/web/embed.py from api/web/src and api/web/vendor: do not edit. */",
           "#include <stddef.h>", "", '#include "webui.h"', ""]
    for i, (url, ctype, data, base) in enumerate(assets):
        out.append(f"/* {base}: {len(data)} bytes */")
        out.append(f"static const char webui_data_{i}[] =")
        out.extend(f'\t"{line}"' for line in c_string_lines(data))
        out[-1] += ";"
        out.append("")
    out.append("const struct webui_asset webui_assets[] = {")
    for i, (url, ctype, data, base) in enumerate(assets):
        etag = '\\"' + sha256(data)[:20] + '\\"'
        out.append(f'\t{{ "{url}", "{ctype}", webui_data_{i}, {len(data)}, "{etag}" }},')
    out.append("};")
    out.append(f"const size_t webui_nassets = {len(assets)};")
    text = "\n".join(out) + "\n"

    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, args.output)


if __name__ == "__main__":
    main()
