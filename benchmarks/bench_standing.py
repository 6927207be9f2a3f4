"""How far the champion's yardstick (core/standing.py) is from the truth, on validation folds.

    .venv/bin/python benchmarks/bench_standing.py ../shared/benchdata/mmlupro --folds 3

For each fold (a seeded quarter of the train split held out, as benchmarks/bench_tune.py does), it
teaches the bench's handbook as the bench does and prints, for the agents of highest standing:
the ratings it got while teaching, its raw success rate on them, what it answers right on the same
turns' skills overall (so raw minus this is the luck and difficulty of the turns it was given
within its skills), what it answers right on the usual mix of rated turns (the standing's target,
read from every model's outcomes, which the router never sees) and its standing. A standing close
to the raw rate and far from the target means the correction for which turns each model was given
is not doing its job: the champion is then whoever was given the easy turns.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skillchat.bench import data, runner  # noqa: E402
from skillchat.core.standing import standing  # noqa: E402


def one(path: str, fold: int, top_n: int) -> list[str]:
    rs = runner.holdout(data.load(path), 0.25, fold)
    t = runner.taught(rs, fold)
    fit = standing(t.learner.hb)
    full = data.FullInformation(rs)
    idx = {m: i for i, m in enumerate(rs.models)}
    main_skill = {q.qid: max(t.learner.profile(q).skills, key=lambda s: s.weight).id for q in rs.train}
    rated = list(zip(t.order, t.log, strict=True))  # (query, its rating)
    mix = collections.Counter(main_skill[q.qid] for q, _ in rated)
    lines = [f"fold {fold}: {'agent':30s} {'ratings':>7s} {'raw':>6s} {'same skills':>11s} {'usual mix':>9s} {'standing':>14s}"]
    for a, (mean, sd) in sorted(fit.overall.items(), key=lambda kv: -kv[1][0])[:top_n]:
        i = idx[t.model_of[a]]
        by_skill: dict[str, list[float]] = collections.defaultdict(list)
        for q in rs.train:
            by_skill[main_skill[q.qid]].append(full.row(q.qid)[i].score)
        rate = {s: sum(v) / len(v) for s, v in by_skill.items()}
        mine = [q.qid for q, r in rated if r.agent_id == a]
        raw = sum(full.row(q)[i].score for q in mine) / max(1, len(mine))
        same = sum(rate[main_skill[q]] for q in mine) / max(1, len(mine))
        target = sum(rate[s] * c for s, c in mix.items()) / sum(mix.values())
        lines.append(f"        {a[:30]:30s} {len(mine):7d} {raw:6.3f} {same:11.3f} {target:9.3f} {mean:8.3f} ± {sd:.3f}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--top", type=int, default=5, help="agents shown per fold, by standing")
    a = ap.parse_args()
    data.load_or_exit(a.path, "bench_standing")
    for fold in range(a.folds):
        print("\n".join(one(a.path, fold, a.top)), flush=True)


if __name__ == "__main__":
    main()
