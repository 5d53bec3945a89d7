#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`novamon detect`, the offline scorer, from the outside: the output keeps
every input row in order with its text, scores are in [0, 1] and use no
later row, both timestamp styles and irregular spacing are read, bad input
stops with its line number and leaves no output file, and every detector
name works. Needs no root: only the binary ($NOVAMON_BIN, as in harness.py).
"""
import datetime
import math
import os
import random
import shutil
import subprocess
import tempfile
import unittest

import harness  # noqa: F401  (the shared conventions: NOVAMON_BIN, exit 77)

BIN = os.environ.get("NOVAMON_BIN", "novamon")
DETECTORS = ("stat", "seasonal", "iforest", "gru", "lstm", "ensemble")


def series(n, seed=1, spikes=(), period=48):
    """A seasonal noisy series with spikes at the given rows."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        v = 100 + 8 * math.sin(2 * math.pi * i / period) + rnd.gauss(0, 1)
        if i in spikes:
            v += 15
        out.append(v)
    return out


def space_ts(i, step=1):
    s = i * step
    return f"2026-11-24 {s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def write_csv(path, rows, header="timestamp,value"):
    with open(path, "w") as f:
        f.write(header + "\n")
        for ts, v in rows:
            f.write(f"{ts},{v}\n")


class Detect(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="novamon-detect-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def detect(self, *args, code=0, stdin=None):
        p = subprocess.run([BIN, "detect", *args], capture_output=True, text=True,
                           input=stdin, timeout=120)
        self.assertEqual(p.returncode, code,
                         f"novamon detect {' '.join(args)}: exit {p.returncode}\n"
                         f"{p.stdout[-2000:]}{p.stderr}")
        return p

    def score_file(self, rows, *extra, name="in.csv"):
        """Write rows, run detect, return (output lines, scores)."""
        src, dst = self.path(name), self.path(name + ".out")
        write_csv(src, rows)
        self.detect("--input", src, "--output", dst, *extra)
        with open(dst) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "timestamp,value,anomaly_score")
        self.assertEqual(len(lines), len(rows) + 1)
        scores = []
        for (ts, v), line in zip(rows, lines[1:]):
            self.assertEqual(line.rsplit(",", 1)[0], f"{ts},{v}", "row text not echoed")
            s = float(line.rsplit(",", 1)[1])
            self.assertTrue(0.0 <= s <= 1.0, f"score {s} outside [0, 1]")
            scores.append(s)
        return lines, scores

    def test_help(self):
        self.assertIn("Usage", self.detect("--help").stdout)
        self.detect(code=2)  # no --input / --output

    def test_rows_order_scores_and_a_spike(self):
        vals = series(2000, spikes=(1500,))
        rows = [(space_ts(i), f"{v:.3f}") for i, v in enumerate(vals)]
        _, scores = self.score_file(rows)
        self.assertEqual(scores[:50], [0.0] * 50, "scores during warm-up")
        self.assertGreaterEqual(scores[1500], 0.5, "the spike is not flagged")
        flagged = sum(s >= 0.5 for s in scores)
        self.assertLess(flagged, 40, f"{flagged} of 2000 rows flagged")

    def test_no_lookahead(self):
        vals = series(1600, seed=2, spikes=(900, 1300))
        rows = [(space_ts(i), f"{v:.4f}") for i, v in enumerate(vals)]
        for det in ("ensemble", "gru", "iforest"):
            full, _ = self.score_file(rows, "--detector", det, name=f"full-{det}.csv")
            for k in (400, 901, 1299):
                part, _ = self.score_file(rows[:k], "--detector", det,
                                          name=f"part-{det}-{k}.csv")
                self.assertEqual(part, full[:k + 1],
                                 f"{det}: scores of the first {k} rows depend on later rows")

    def test_timestamp_styles_and_irregular_spacing(self):
        rnd = random.Random(3)
        utc = datetime.timezone.utc
        plus2 = datetime.timezone(datetime.timedelta(hours=2))
        t = datetime.datetime(2026, 2, 28, 23, 0, 0, tzinfo=utc)
        rows = []
        for i, v in enumerate(series(700, seed=3)):
            t += datetime.timedelta(seconds=rnd.choice((0.25, 1, 1, 3, 17.5, 600)))
            style = i % 4
            if style == 0 and t.microsecond:
                style = 1  # the space style is written in whole seconds
            if style == 0:
                ts = t.strftime("%Y-%m-%d %H:%M:%S")
            elif style == 1:
                ts = t.strftime("%Y-%m-%dT%H:%M:%S") + f".{t.microsecond // 1000:03d}Z"
            elif style == 2:
                ts = t.astimezone(plus2).isoformat(timespec="milliseconds")
            else:
                ts = t.isoformat(timespec="microseconds").replace("+00:00", "z").replace(
                    "T", "t")
            rows.append((ts, f"{v:.2f}"))
        self.score_file(rows)
        # Equal timestamps are fine; going back in time is not.
        self.score_file([(space_ts(0), "1"), (space_ts(0), "2"), (space_ts(1), "3")])

    def test_stdin_stdout(self):
        rows = [(space_ts(i), f"{v:.3f}") for i, v in enumerate(series(300))]
        text = "timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in rows)
        out = self.detect("--input", "-", "--output", "-", stdin=text).stdout.splitlines()
        self.assertEqual(len(out), 301)
        self.assertEqual(out[0], "timestamp,value,anomaly_score")

    def test_every_detector(self):
        rows = [(space_ts(i), f"{v:.3f}") for i, v in enumerate(series(900, spikes=(800,)))]
        for det in DETECTORS:
            _, scores = self.score_file(rows, "--detector", det, name=f"{det}.csv")
            self.assertEqual(len(scores), 900)
        _, gru = self.score_file(rows, "--detector", "gru", name="gru2.csv")
        _, lstm = self.score_file(rows, "--detector", "lstm", name="lstm.csv")
        self.assertEqual(gru, lstm, "lstm is not an alias of gru")

    def test_unknown_detector(self):
        src = self.path("in.csv")
        write_csv(src, [(space_ts(0), "1")])
        err = self.detect("--input", src, "--output", self.path("o.csv"), "--detector",
                          "prophet", code=2).stderr
        self.assertIn("prophet", err)
        self.assertFalse(os.path.exists(self.path("o.csv")))

    def bad(self, rows, line, what, header="timestamp,value"):
        src, dst = self.path("input.csv"), self.path("out.csv")
        with open(src, "w") as f:
            f.write(header + "\n" + "".join(r + "\n" for r in rows))
        err = self.detect("--input", src, "--output", dst, code=1).stderr
        self.assertIn(f"input.csv:{line}:", err)
        self.assertIn(what, err)
        self.assertFalse(os.path.exists(dst), "output file left behind")
        self.assertEqual([f for f in os.listdir(self.dir) if f.startswith("out.csv")], [],
                         "temporary file left behind")

    def test_malformed_rows(self):
        good = [f"{space_ts(i)},{v:.3f}" for i, v in enumerate(series(600))]
        self.bad(good[:15] + ["2026-13-01 00:00:00,1.0"] + good[15:], 17,
                 'bad timestamp "2026-13-01 00:00:00"')
        self.bad(good[:100] + [f"{space_ts(100)},"] + good[101:], 102, "empty value")
        self.bad(good[:5] + [f"{space_ts(5)},NaN"], 7, "NaN")
        self.bad(good[:5] + [f"{space_ts(5)},12abc"], 7, "bad value")
        self.bad(good[:5] + [f"{space_ts(5)},1,2"], 7, "2 fields")
        self.bad(good[:5] + ["2026-02-30T00:00:00Z,1"], 7, "bad timestamp")
        self.bad(good[:5] + ["2026-11-24T00:00:00+25:00,1"], 7, "bad timestamp")
        self.bad(good[:5] + [f"{space_ts(0)},1"], 7, "earlier")
        self.bad(good[:3], 1, "header", header=good[0])
        # A failed run does not touch an existing output either.
        dst = self.path("out.csv")
        with open(dst, "w") as f:
            f.write("keep\n")
        src = self.path("input.csv")
        self.detect("--input", src, "--output", dst, code=1)
        with open(dst) as f:
            self.assertEqual(f.read(), "keep\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
