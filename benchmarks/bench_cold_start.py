"""A new user's first turns: how often routing strays from the best expected model, per /explore setting.

    .venv/bin/python benchmarks/bench_cold_start.py [--handbook general] [--lambda 0.2] [--seeds 5]

A new user has rated nothing, so routing runs on the shipped handbook's priors alone. Every cloud
agent is taken as usable (as with a key for every provider); agents served on this machine
(ollama, the embedded local model) are left out. The requests are our own
labelled chat requests (benchmarks/data/requests.jsonl and fresh_requests.jsonl), routed as first
turns, in their file order, through the app's router (skillchat/routing.py) with each policy:

* the chance that a turn goes to the best expected model (mean over the requests, from the
  router's own probabilities, which are exact);
* from sampled draws (--seeds runs): the share of turns that went elsewhere, and how many
  different models answered each run of 20 consecutive turns. Routing itself sends different
  kinds of request to different models, so greedy routing (explore off) is the floor of that count.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_inference import DATA, load_own_items  # noqa: E402  (benchmarks/, the script's own folder)

from skillchat import handbooks  # noqa: E402
from skillchat.config import DEFAULT_LAMBDA, EXPLORE_WORDS, explore_policy  # noqa: E402
from skillchat.routing import build_router  # noqa: E402

WINDOW = 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--handbook", default="general")
    ap.add_argument("--lambda", dest="lam", type=float, default=DEFAULT_LAMBDA)
    ap.add_argument("--seeds", type=int, default=5)
    a = ap.parse_args()

    hb = handbooks.load(a.handbook)
    router = build_router(hb)
    local = {agent.id: "served locally" for agent in hb.agents.values() if agent.model.startswith(("ollama/", "local/"))}
    items = load_own_items(DATA / "requests.jsonl") + load_own_items(DATA / "fresh_requests.jsonl")
    # Each request is read once; every policy and seed then only draws.
    turns = [(router.inferrer.infer(list(it.messages)), router.token_counter.count(list(it.messages))) for it in items]
    print(f"handbook {a.handbook}, lambda {a.lam:g}, {len(turns)} first turns, "
          f"{len(hb.agents) - len(local)} agents, {a.seeds} sampled runs")
    print(f"{'explore':8s} {'P(best expected)':>17s} {'turns elsewhere':>16s} {'models per 20 turns':>20s}")
    for word, value in EXPLORE_WORDS.items():
        p_best, away, distinct = [], [], []
        for seed in range(a.seeds):
            rng = random.Random(seed)
            chosen = []
            for profile, tokens in turns:
                d = router.decide(profile, tokens, lam=a.lam, policy=explore_policy(value), rng=rng, exclude=local)
                if seed == 0:
                    p_best.append(next(s.probability for s in d.ranking if s.agent_id == d.best_expected))
                chosen.append(d.chosen)
                away.append(d.chosen != d.best_expected)
            distinct += [len(set(chosen[i:i + WINDOW])) for i in range(0, len(chosen) - WINDOW + 1, WINDOW)]
        print(f"{word:8s} {statistics.mean(p_best):17.2f} {statistics.mean(away):16.1%} "
              f"{statistics.mean(distinct):11.1f} (max {max(distinct)})")


if __name__ == "__main__":
    main()
