"""Several seeds of the replay benchmark: run them in parallel, average them, give 95% intervals.

One seed is one draw of the skills discovered, the replay order and the exploration; the figures
of a single run move by a point or more between seeds, so a claim needs the spread. Each seed's
run is exactly the single-seed bench (the same JSON as `skillchat bench --seed S`), so the
aggregate can be checked against its parts: every number of the aggregated document is the mean of
that number over the seeds, and `intervals` holds its 95% t-interval at the same place.

Seeds run in worker processes because one run is CPU-bound Python; each run depends on its seed
only, so the job count changes the wall-clock time and nothing else.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from skillchat.bench.data import ReplaySet, load_or_exit

# Two-sided 95% critical values of Student's t by degrees of freedom (no scipy in the core deps).
_T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
    11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
    20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
    29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980,
}


def t975(df: int) -> float:
    if df < 1:
        raise ValueError("a t-interval needs at least two values")
    if df in _T975:
        return _T975[df]
    if df > 120:
        return 1.960 + (1.980 - 1.960) * 120 / df
    lo = max(k for k in _T975 if k < df)
    hi = min(k for k in _T975 if k > df)
    # Linear in 1/df between table entries: accurate to the third decimal here.
    f = (1 / lo - 1 / df) / (1 / lo - 1 / hi)
    return _T975[lo] + (_T975[hi] - _T975[lo]) * f


@dataclass(frozen=True)
class Interval:
    mean: float
    half_width: float  # 0 when every seed gave the same value
    n: int  # how many seeds had a value (a None, e.g. a point out of range, is left out)

    @property
    def lo(self) -> float:
        return self.mean - self.half_width

    @property
    def hi(self) -> float:
        return self.mean + self.half_width

    def to_json(self) -> dict[str, float | int]:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi, "half_width": self.half_width, "n": self.n}


def interval(values: Sequence[float]) -> Interval:
    """Mean and 95% t-interval half-width over seeds; with one value the half-width is 0."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    m = math.fsum(values) / n
    if n == 1:
        return Interval(m, 0.0, 1)
    var = math.fsum((v - m) ** 2 for v in values) / (n - 1)
    return Interval(m, t975(n - 1) * math.sqrt(var / n), n)


# --- aggregation of per-seed JSON documents ---------------------------------------------------

# Keys whose value is an identifier, not a measurement: the first seed's value is kept as is.
_KEEP_FIRST = {"seed"}
# Dicts of counts (model -> how many queries): a model missing in one seed was picked 0 times there.
_COUNT_KEYS = {"counts"}


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def aggregate(docs: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(mean document, intervals) of per-seed documents of the same structure.

    Numbers become their mean over the seeds (a value that is the same in every seed stays as it
    is, so an integer that does not vary keeps its type); None is left out of a mean; strings that
    differ become the most common one. `intervals` mirrors the document: every number that was
    averaged has {"mean", "lo", "hi", "half_width", "n"} at the same key or list position.
    """
    if not docs:
        raise ValueError("no documents")
    mean, iv = _agg(list(docs), "")
    return mean, iv if isinstance(iv, dict) else {}


def _agg(values: list[Any], key: str) -> tuple[Any, Any]:
    first = values[0]
    if key in _KEEP_FIRST:
        return first, None
    if all(isinstance(v, dict) for v in values):
        keys = list(dict.fromkeys(k for v in values for k in v))
        fill = 0 if key in _COUNT_KEYS else None
        out, ivs = {}, {}
        for k in keys:
            out[k], ivs_k = _agg([v.get(k, fill) for v in values], k)
            if ivs_k is not None:
                ivs[k] = ivs_k
        return out, ivs or None
    if all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
        pairs = [_agg([v[i] for v in values], key) for i in range(len(first))]
        ivs_l = [p[1] if p[1] is not None else {} for p in pairs]
        return [p[0] for p in pairs], ivs_l if any(ivs_l) else None
    if all(v is None or _is_num(v) for v in values):
        nums = [float(v) for v in values if v is not None]
        if not nums:
            return None, None
        iv = interval(nums)
        same = len(nums) == len(values) and all(v == first for v in values)
        return (first if same else iv.mean), iv.to_json()
    if all(v == first for v in values):
        return first, None
    if all(isinstance(v, str) for v in values):
        counts = Counter(values)
        top = max(counts.values())
        return next(v for v in values if counts[v] == top), None
    return first, None  # lists of different lengths and the like: the first seed's, as shown


def lookup(intervals: Any, *path: str | int) -> Interval | None:
    """The interval at a path of the intervals tree (None where there is none)."""
    node = intervals
    for p in path:
        if isinstance(node, dict) and isinstance(p, str):
            node = node.get(p)
        elif isinstance(node, list) and isinstance(p, int) and 0 <= p < len(node):
            node = node[p]
        else:
            return None
    if isinstance(node, dict) and "half_width" in node and "mean" in node:
        return Interval(node["mean"], node["half_width"], node["n"])
    return None


# --- running several seeds --------------------------------------------------------------------


@dataclass
class SeedRun:
    """What one seed hands back: its single-seed JSON (timings apart) and its learned handbook."""

    seed: int
    doc: dict[str, Any]
    timings: dict[str, float]
    handbook: dict[str, Any]
    result: Any = None  # the BenchResult, only when run in this process (the text report of one seed)


_WORKER: dict[str, Any] = {}


def _init(rs: ReplaySet, opts: Any, shuffle: bool, worker: bool = False) -> None:
    if worker:
        import signal

        # Ctrl-C reaches the whole process group; the parent alone handles it (and ends the pool),
        # so the user sees one "interrupted" line, not a traceback per worker.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER.update(rs=rs, opts=opts, shuffle=shuffle)


def _one(seed: int, *, keep_result: bool = False, progress: Any = None) -> SeedRun:
    from skillchat.bench import report, runner
    from skillchat.core.handbook import to_dict

    rs: ReplaySet = _WORKER["rs"]
    if _WORKER["shuffle"]:
        # Each seed draws its own permutation, so the interval covers the shuffle's luck too.
        rs = rs.shuffled(seed)
    res = runner.run(rs, replace(_WORKER["opts"], seed=seed), progress)
    doc = report.to_json(res)
    timings = doc.pop(report.TIMING_KEY)
    return SeedRun(seed, doc, timings, to_dict(res.handbook), res if keep_result else None)


def print_per_seed(prog: str, one: Callable[[tuple[str, int]], str]) -> None:
    """The command line of a diagnostic in benchmarks/ that prints one report per bench seed:
    `prog PATH [--seed S] [--seeds N] [--jobs J]`, with `one((PATH, seed))` run in worker processes
    and printed in seed order. A bad replay set is one line and exit 2, before any worker starts."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    load_or_exit(a.path, prog)
    with ProcessPoolExecutor(a.jobs) as pool:
        for text in pool.map(one, [(a.path, s) for s in range(a.seed, a.seed + a.seeds)]):
            print(text, flush=True)


def default_jobs(n_seeds: int) -> int:
    return max(1, min(n_seeds, os.cpu_count() or 1))


def run_seeds(
    rs: ReplaySet,
    opts: Any,
    seeds: Sequence[int],
    *,
    jobs: int | None = None,
    shuffle: bool = False,
    progress: Any = None,
    on_done: Callable[[SeedRun, float], None] | None = None,
) -> list[SeedRun]:
    """Run the bench once per seed, in `seeds` order whatever the number of worker processes.

    With one job everything runs here (with `progress`; a single seed's SeedRun keeps its BenchResult);
    otherwise in a pool of `jobs` processes, whose runs report nothing until they are done.
    """
    seeds = list(seeds)
    jobs = default_jobs(len(seeds)) if jobs is None else max(1, min(jobs, len(seeds)))
    t0 = time.perf_counter()
    out: list[SeedRun] = []
    if jobs == 1:
        _init(rs, opts, shuffle)
        try:
            for s in seeds:
                out.append(_one(s, keep_result=len(seeds) == 1, progress=progress))
                if on_done:
                    on_done(out[-1], time.perf_counter() - t0)
        finally:
            _WORKER.clear()
        return out
    if not shuffle and getattr(opts, "baselines", False):
        # The references do not depend on the seed: computed here once, inherited by every worker.
        from skillchat.bench import runner

        runner.reference_routes(rs, opts.knn_k, sorted(set(opts.lambdas)))
    # fork shares the loaded set with the workers without pickling it; elsewhere it is pickled once per worker.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ctx.Pool(jobs, initializer=_init, initargs=(rs, opts, shuffle, True)) as pool:
        for run in pool.imap(_one, seeds):
            out.append(run)
            if on_done:
                on_done(run, time.perf_counter() - t0)
    return out


def combine(runs: Sequence[SeedRun], wall_seconds: float, jobs: int) -> dict[str, Any]:
    """The JSON of several seeds: the single-seed keys with means, plus seeds, per_seed, intervals."""
    from skillchat.bench import report

    mean, ivs = aggregate([r.doc for r in runs])
    timings, _ = aggregate([r.timings for r in runs])
    doc = dict(mean)
    doc["seeds"] = [r.seed for r in runs]
    doc["per_seed"] = [r.doc for r in runs]
    doc["intervals"] = ivs
    # Timings stay the one part that differs between two runs of the same seeds.
    doc[report.TIMING_KEY] = {**{k: round(v, 3) for k, v in timings.items()}, "wall_clock": round(wall_seconds, 3), "jobs": jobs}
    return doc
