"""How long does the handbook screen's History tab take to list a handbook's versions?

Saves N versions of the shipped "general" handbook in a scratch SKILLCHAT_HOME, then times, in
alternation, RUNS times each:

* parse: what the screen did before, reading every version's file to get its `created` date;
* folder: what it does now, `ChatService.handbook_versions()` (handbooks.versions), which dates a
  saved version by when its file was written.

Prints median and p99 of each, in milliseconds. The screen builds this list on the UI thread.

Usage:  python benchmarks/bench_handbook_versions.py [--versions 30] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=30)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="skillchat-bench-") as home:
        os.environ["SKILLCHAT_HOME"] = home
        run(args.versions, args.runs)


def run(versions: int, runs: int) -> None:
    from skillchat import handbooks

    hb = handbooks.load("general")
    for v in range(hb.version + 1, hb.version + 1 + versions):
        hb.version = v
        handbooks.save_version(hb)

    def parse() -> list[str]:
        return [handbooks.load_file(i.path).created for i in handbooks.versions("general")]

    def folder() -> list[str]:
        return [i.created for i in handbooks.versions("general")]

    times: dict[str, list[float]] = {"parse": [], "folder": []}
    for _ in range(runs):
        for name, fn in (("parse", parse), ("folder", folder)):
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1000)
    for name, ts in times.items():
        ts.sort()
        p99 = ts[min(len(ts) - 1, round(0.99 * (len(ts) - 1)))]
        print(f"{name:6}  {versions + 1} versions  median {statistics.median(ts):8.1f} ms  p99 {p99:8.1f} ms")


if __name__ == "__main__":
    main()
