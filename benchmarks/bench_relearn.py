"""Time `relearn` over a large synthetic log of rated turns (median of a few runs).

    .venv/bin/python benchmarks/bench_relearn.py [--turns 100000] [--runs 3] [--no-evolve]

The log is generated from the shipped `general` handbook: 40 topics with their own vocabulary,
one to three logged skills per turn, eight agents whose success rates differ by topic (so splits
and discoveries have something to find), and ages over a year (decay is exercised with
--half-life). Prints one line per run and the median; relearn over 100,000 turns must stay <= 10 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skillchat.core.learning import RatedTurn  # noqa: E402
from skillchat.core.relearn import relearn  # noqa: E402
from skillchat.handbooks import load_file  # noqa: E402

WORDS = (
    "python list dict key error loop sort file json parse regex class function async thread socket http "
    "server client query index table join sql shell bash git branch merge docker image build deploy test "
    "mock assert derivative integral matrix vector prime probability mean variance proof theorem triangle "
    "area poem story novel character email letter summary essay grammar tense verb french spanish word "
    "history war empire king science atom cell planet orbit law contract tax money budget plan trip recipe "
    "bake cake garden plant dog cat movie music song guitar game chess football weather river mountain"
).split()


def make_log(hb, n: int, seed: int = 0) -> list[RatedTurn]:
    rng = random.Random(seed)
    skills = list(hb.skills)
    agents = list(hb.agents)
    topics = []
    for _ in range(40):
        vocab = rng.sample(WORDS, 12)
        sk = rng.sample(skills, 2)
        rates = {a: rng.uniform(0.3, 0.95) for a in agents}
        topics.append((vocab, sk, rates))
    fb = hb.settings.fallback_skill
    out = []
    for i in range(n):
        vocab, sk, rates = topics[rng.randrange(len(topics))]
        text = " ".join(rng.choice(vocab) if rng.random() < 0.7 else rng.choice(WORDS) for _ in range(rng.randint(6, 25)))
        r = rng.random()
        if r < 0.1:
            weights = {fb: 1.0}
        elif r < 0.6:
            weights = {sk[0]: 1.0}
        else:
            weights = {sk[0]: 0.6, sk[1]: 0.4}
        agent = agents[rng.randrange(len(agents))]
        out.append(
            RatedTurn(
                turn_id=f"t{i}", agent_id=agent, mode=hb.skills[sk[0]].mode, skills=weights,
                score=1.0 if rng.random() < rates[agent] else 0.0, propensity=1.0 / len(agents), text=text,
                age_days=rng.uniform(0, 365), cost_usd=rng.uniform(0, 0.01), prompt_tokens=rng.randint(20, 2000),
                completion_tokens=rng.randint(10, 900), rating_id=i + 1,
            )
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-evolve", action="store_true")
    ap.add_argument("--half-life", type=float, default=None)
    args = ap.parse_args()
    hb = load_file(Path(__file__).resolve().parent.parent / "handbooks" / "general.json")
    log = make_log(hb, args.turns)
    times = []
    for run in range(args.runs):
        t0 = time.perf_counter()
        res = relearn(hb, log, evolve=not args.no_evolve, half_life_days=args.half_life)
        dt = time.perf_counter() - t0
        times.append(dt)
        kinds = {}
        for c in res.changes:
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
        print(f"run {run + 1}: {dt:.2f} s  ({res.counts.used} turns used, changes {kinds or 'none'}, "
              f"{len(res.handbook.skills)} skills)")
    med = statistics.median(times)
    print(f"relearn over {args.turns:,} rated turns (evolve={not args.no_evolve}, half-life={args.half_life}): "
          f"median {med:.2f} s over {args.runs} runs")
    return 0 if med <= 10.0 or args.turns > 100_000 else 1


if __name__ == "__main__":
    raise SystemExit(main())
