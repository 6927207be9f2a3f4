"""What the learned router gives up to the full-information references, and to what: its method,
its margins, or seeing one outcome per query. On validation folds.

    .venv/bin/python benchmarks/bench_ceiling.py ../shared/benchdata/routerbench --folds 4

For each fold (a seeded quarter of the train split held out, as benchmarks/bench_tune.py does) the
bench's handbook is taught three ways and routed greedily over the bench's lambdas; each row is the
upper hull of that sweep read at some shares of the best single model's cost (mean over the folds):

* one rating a query: as the bench and a chat user teach it (the shipped router);
* every model rated: the same skills and router, told every model's outcome on every train query,
  the information the per-category and kNN references have;
* ... and no margins: the same with `challenge_z` 0, so a challenger takes a turn on any gain;

next to the per-category (task labels) and kNN references. If "every model rated, no margins" reaches
the references, the router's skills and scoring are not what holds it back: what remains is the
information one rating a query carries, and the margins that guard the top against lucky records.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skillchat.bench import baselines, data, frontier, runner  # noqa: E402

SHARES = (0.1, 0.2, 0.3, 0.5, 1.0)
ROWS = ("one rating a query", "every model rated", "... and no margins", "per-category (labels)", "kNN")


def rate_every_model(t: runner.Taught, rs: data.ReplaySet) -> None:
    """Teach `t` every model's outcome on every train query, in its replay order."""
    env, hb = data.Environment(rs), t.learner.hb
    for q in t.order:
        profile = t.learner.profile(q)
        weights = profile.weights()
        for agent, model in t.model_of.items():
            out = env.reveal(q.qid, model)
            runner.learn(hb, agent, profile.mode, weights, out, out.score)


def frontier_of(scorer: data.TestScorer, routes: dict[float, list[str]], ref_cost: float) -> list[float | None]:
    pts = [(r.cost / ref_cost, r.score) for r in (scorer.score(routes[lam]) for lam in sorted(routes))]
    return [frontier.score_at(pts, s) for s in SHARES]


def one(args: tuple[str, int]) -> list[list[float | None]]:
    path, fold = args
    rs = runner.holdout(data.load(path), 0.25, fold)
    lambdas = runner.DEFAULT_LAMBDAS
    scorer = data.TestScorer(rs)
    ref = scorer.single(baselines.best_single(data.FullInformation(rs))).cost

    def routed(t: runner.Taught) -> list[float | None]:
        picks = t.learner.route_greedy(rs.test, lambdas)
        return frontier_of(scorer, {lam: [t.model_of[a] for a in picks[lam]] for lam in lambdas}, ref)

    rows = [routed(runner.taught(rs, fold))]
    full = runner.untaught(rs, fold)
    rate_every_model(full, rs)
    rows.append(routed(full))
    hb = full.learner.hb
    hb.settings = dataclasses.replace(hb.settings, challenge_z=0.0)
    rows.append(routed(full))
    cat, knn = runner.reference_routes(rs, runner.BenchOptions().knn_k, lambdas)
    rows += [frontier_of(scorer, cat, ref), frontier_of(scorer, knn, ref)]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    data.load_or_exit(a.path, "bench_ceiling")
    with ProcessPoolExecutor(a.jobs) as ex:
        folds = list(ex.map(one, [(a.path, f) for f in range(a.folds)]))
    print(f"{'cost share':24s} " + " ".join(f"{s:>6g}" for s in SHARES) + f"   (mean over {a.folds} validation folds)")
    for i, name in enumerate(ROWS):
        cols = list(zip(*(f[i] for f in folds), strict=True))
        cells = ["     -" if any(x is None for x in c) else f"{sum(c) / len(c):6.3f}" for c in cols]  # type: ignore[misc]
        print(f"{name:24s} " + " ".join(cells))


if __name__ == "__main__":
    main()
