"""Choose the bench's defaults on VALIDATION carved out of the train split (never the test split).

Each configuration runs the whole bench on `runner.holdout(set, 0.25, fold)`: a seeded quarter of
the train queries plays the test split, the real test split is dropped before anything runs. The
summary is the router's frontier (upper hull of its lambda sweep) read at several costs, as shares
of the best single model's cost, next to the full-information baselines on the same validation.

    .venv/bin/python benchmarks/bench_tune.py /work/shared/benchdata/routerbench \
        "" "n_modes=6" "max_skills=1,train_lambda=0.05" --folds 2

A configuration is comma-separated key=value pairs; keys are fields of BenchOptions
or SkillOptions.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skillchat.bench import data, frontier, runner  # noqa: E402
from skillchat.bench.skills import SkillOptions  # noqa: E402

SHARES = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def parse(config: str) -> runner.BenchOptions:
    bench: dict[str, object] = {}
    sk: dict[str, object] = {}
    fields = {
        "bench": {f.name: f.type for f in dataclasses.fields(runner.BenchOptions)},
        "sk": {f.name: f.type for f in dataclasses.fields(SkillOptions)},
    }
    for part in filter(None, (p.strip() for p in config.split(","))):
        key, _, value = part.partition("=")
        v: object = None if value == "None" else (float(value) if "." in value or "e" in value else int(value))
        if key in fields["sk"]:
            sk[key] = v
        elif key in fields["bench"]:
            bench[key] = v
        else:
            raise SystemExit(f"unknown option {key!r}")
    return runner.BenchOptions(
        **bench, skill=SkillOptions(**sk), relearn=False  # type: ignore[arg-type]
    )


def one(args: tuple[str, str, int, bool]) -> tuple[str, int, dict[str, object]]:
    path, config, fold, with_baselines = args
    rs = runner.holdout(data.load(path), 0.25, fold)
    opts = dataclasses.replace(parse(config), seed=fold, baselines=with_baselines, curve_start=50)
    if "per_lambda" not in config:
        opts = dataclasses.replace(opts, per_lambda=False)
    t = time.perf_counter()
    res = runner.run(rs, opts)
    ref = res.best_single[1].cost
    # With per_lambda=1 the frontier is that of the routers learned at each lambda.
    pts = [(p.result.cost / ref, p.result.score) for p in (res.router_per_lambda or res.router)]
    out: dict[str, object] = {
        "router": [frontier.score_at(pts, s) for s in SHARES],
        "router_mean": frontier.mean_score_at(pts, SHARES),
        "lam0": res.router[0].result.score,
        "best_single": res.best_single[1].score,
        "r95": runner.ratings_to_reach(res.learning_curve, 0.95),
        "teach": res.experienced.score if res.experienced else None,
        # What teaching cost, as a share of the best single model's cost on the same train queries.
        "teach_cost": (res.experienced.cost / res.best_single_on_train.cost
                       if res.experienced and res.best_single_on_train and res.best_single_on_train.cost > 0 else None),
        "seconds": time.perf_counter() - t,
    }
    if with_baselines:
        for name, ps in (("knn", res.knn), ("category", res.per_category)):
            bp = [(p.result.cost / ref, p.result.score) for p in ps]
            out[name] = [frontier.score_at(bp, s) for s in SHARES]
            out[name + "_mean"] = frontier.mean_score_at(bp, SHARES)
        out["curve"] = [(n, round(r.score, 3)) for n, r in res.learning_curve]
    return config, fold, out


def fmt(xs: list[float | None]) -> str:
    return " ".join("  -  " if x is None else f"{x:.3f}" for x in xs)


def avg(outs: list[dict[str, object]], key: str) -> list[float | None]:
    """Each cost share's mean over the folds (None where any fold has no point there)."""
    cols = list(zip(*(o[key] for o in outs), strict=True))  # type: ignore[call-overload]
    return [None if any(x is None for x in c) else sum(c) / len(c) for c in cols]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("configs", nargs="*", default=[""])
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--first-fold", type=int, default=0,
                    help="number the folds from this one (more folds, not the same ones again)")
    ap.add_argument("--baselines", action="store_true", help="also print the full-information baselines")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    data.load_or_exit(a.path, "bench_tune")
    folds = range(a.first_fold, a.first_fold + a.folds)
    jobs = [(a.path, c, f, a.baselines and i == 0) for i, c in enumerate(a.configs) for f in folds]
    with mp.Pool(a.jobs) as pool:
        results = pool.map(one, jobs)
    by: dict[str, list[dict[str, object]]] = {}
    for config, _, out in results:
        by.setdefault(config, []).append(out)
    print(f"cost shares: {' '.join(f'{s:5g}' for s in SHARES)}   mean   lam0  time   (mean over {a.folds} folds)")
    for config, outs in by.items():
        mean = sum(o["router_mean"] for o in outs) / len(outs)  # type: ignore[misc]
        lam0 = sum(o["lam0"] for o in outs) / len(outs)  # type: ignore[misc]
        secs = sum(o["seconds"] for o in outs) / len(outs)  # type: ignore[misc]
        r95 = [o["r95"] for o in outs]
        teach = [float(o["teach"]) for o in outs if o["teach"] is not None]  # type: ignore[arg-type]
        tcost = [float(o["teach_cost"]) for o in outs if o["teach_cost"] is not None]  # type: ignore[arg-type]
        print(f"router   {fmt(avg(outs, 'router'))}  {mean:.4f} {lam0:.3f}  {secs:5.1f}s  [{config or 'defaults'}]  "
              f"ratings to 95%: {r95}" + (f"; while teaching {sum(teach) / len(teach):.4f}" if teach else "")
              + (f" at {sum(tcost) / len(tcost):.0%} of its cost" if tcost else ""))
        # "Never worse than the best single model" holds for every user history or not at all: the
        # worst fold matters, not only the mean.
        # None where a fold's router has no point at or below the best single model's cost.
        top = [None if o["router"][-1] is None else o["router"][-1] - o["best_single"] for o in outs]  # type: ignore[index,operator]
        if all(t is not None for t in top):
            print(f"         at the best single model's cost, against it: mean {sum(top) / len(top):+.4f}, "
                  f"worst {min(top):+.4f}, {sum(t < 0 for t in top)} of {len(top)} folds below; "
                  f"by fold: {' '.join(f'{t:+.3f}' for t in top)}")
        else:
            print(f"         at the best single model's cost: no router point at or below it in "
                  f"{sum(t is None for t in top)} of {len(top)} folds")
        if "knn" in outs[0]:
            for name in ("knn", "category"):
                m = sum(o[name + "_mean"] for o in outs) / len(outs)  # type: ignore[misc]
                print(f"{name:8s} {fmt(avg(outs, name))}  {m:.4f}")
            best = sum(o["best_single"] for o in outs) / len(outs)  # type: ignore[misc]
            print(f"best single {best:.3f}; curves: {[o['curve'] for o in outs]}")


if __name__ == "__main__":
    main()
