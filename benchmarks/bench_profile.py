"""Where does `skillchat bench` spend its time? cProfile of one run, top functions by own time.

    .venv/bin/python benchmarks/bench_profile.py /work/shared/benchdata/routerbench [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skillchat.bench import data, runner  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--sort", default="tottime")
    a = ap.parse_args()
    rs = data.load(a.path)
    prof = cProfile.Profile()
    prof.enable()
    res = runner.run(rs, runner.BenchOptions())
    prof.disable()
    print({k: round(v, 2) for k, v in res.timings.items()})
    pstats.Stats(prof).sort_stats(a.sort).print_stats(a.top)


if __name__ == "__main__":
    main()
