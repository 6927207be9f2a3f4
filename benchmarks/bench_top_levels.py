"""Where the learned router's top point loses to the best single model: route the test split at
lambda 0 with the handbook the bench learns, three ways, and print each against that model.

    .venv/bin/python benchmarks/bench_top_levels.py ../shared/benchdata/mmlupro --seeds 5

* shipped: the greedy choice as the app makes it (champion, then the task type's holder, then a
  model clearly better on the turn's own skill);
* task type: the same without the skill-level step (every skill-level estimate made infinitely
  uncertain, so no challenger clears the margin there);
* champion: the overall champion on every turn.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skillchat.bench import baselines, data, runner, seeds  # noqa: E402
from skillchat.core import router as router_mod  # noqa: E402
from skillchat.core.standing import standing  # noqa: E402

SHIPPED = router_mod._best_expected


def task_type_only(hb, eligible, lam, mode):  # type: ignore[no-untyped-def]
    inflated = [dataclasses.replace(c, sd=math.inf) for c in eligible]
    return eligible[inflated.index(SHIPPED(hb, inflated, lam, mode))]


def champion_only(hb, eligible, lam, mode):  # type: ignore[no-untyped-def]
    fit, z = standing(hb), hb.settings.challenge_z
    return max(eligible, key=lambda c: (fit.overall[c.agent.id][0] - z * fit.overall[c.agent.id][1] - lam * c.norm,
                                        -c.usd, c.agent.id))


def one(args: tuple[str, int]) -> str:
    path, seed = args
    rs = data.load(path)
    t = runner.taught(rs, seed)
    learner, model_of = t.learner, t.model_of
    scorer = data.TestScorer(rs)
    best = baselines.best_single(data.FullInformation(rs))
    base = scorer.single(best)
    cells = []
    for name, rule in (("shipped", SHIPPED), ("task type", task_type_only), ("champion", champion_only)):
        router_mod._best_expected = rule
        r = scorer.score([model_of[a] for a in learner.route_greedy(rs.test, [0.0])[0.0]])
        cells.append(f"{name} {r.score - base.score:+.4f} at {r.cost / base.cost:.0%}")
    router_mod._best_expected = SHIPPED
    return f"seed {seed}: against {best} ({base.score:.4f}): " + ", ".join(cells)


def main() -> None:
    seeds.print_per_seed("bench_top_levels", one)


if __name__ == "__main__":
    main()
