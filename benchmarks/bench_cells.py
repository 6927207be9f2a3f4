"""What teaching left each model with, per task category, and where the learned router then sends
each category as the cost weight grows: the diagnostic behind the account of the middle
of the range in docs/routing-experiments.md.

    .venv/bin/python benchmarks/bench_cells.py ../shared/benchdata/routerbench --seeds 5

For each seed (the bench's default teaching, test split): the ratings each model got per category
while teaching with their mean score, each model's competence on the first test query of each
category, and the greedy routes at a few lambdas with their score and cost
as a share of the best single model's. Categories are the replay set's labels, used here only to
read the results.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skillchat.bench import baselines, data, runner, seeds  # noqa: E402

LAMBDAS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def short(model: str) -> str:
    return model.rsplit("/", 1)[-1][:14]


def one(args: tuple[str, int]) -> str:
    path, seed = args
    rs = data.load(path)
    t = runner.taught(rs, seed)
    name = {a: short(m) for a, m in t.model_of.items()}
    out = [f"seed {seed}", "  rated while teaching (ratings/mean score):"]
    rated: dict[str, dict[str, list[float]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for q, turn in zip(t.order, t.log, strict=True):
        rated[q.category][name[turn.agent_id]].append(turn.score)
    for cat in sorted(rated):
        cells = sorted(rated[cat].items(), key=lambda kv: -len(kv[1]))
        out.append(f"    {cat}: " + " ".join(f"{m} {len(s)}/{sum(s) / len(s):.2f}" for m, s in cells))
    out.append("  competence on the first test query of each category (mean ± sd):")
    seen: set[str] = set()
    for q in rs.test:
        if q.category in seen:
            continue
        seen.add(q.category)
        d = t.learner.router.decide(t.learner.profile(q), runner.prompt_tokens(q.text), policy="greedy")
        out.append(f"    {q.category}: " + " ".join(
            f"{name[a.agent_id]} {a.competence:.2f}±{a.uncertainty:.2f}" for a in sorted(d.ranking, key=lambda a: -a.competence)))
    scorer = data.TestScorer(rs)
    base = scorer.single(baselines.best_single(data.FullInformation(rs)))
    routes = t.learner.route_greedy(rs.test, LAMBDAS)
    out.append("  greedy routes on the test split:")
    for lam in LAMBDAS:
        models = [t.model_of[a] for a in routes[lam]]
        r = scorer.score(models)
        per: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for q, m in zip(rs.test, models, strict=True):
            per[q.category][short(m)] += 1
        sends = " | ".join(f"{c}: " + ", ".join(f"{m} {n}" for m, n in cnt.most_common(2)) for c, cnt in sorted(per.items()))
        out.append(f"    lambda {lam}: {r.score:.3f} at {r.cost / base.cost:.0%} | {sends}")
    return "\n".join(out)


def main() -> None:
    seeds.print_per_seed("bench_cells", one)


if __name__ == "__main__":
    main()
