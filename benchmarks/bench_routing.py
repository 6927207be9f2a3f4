"""Inference plus scoring latency on a large handbook, and `skillchat --help` start-up time.

    .venv/bin/python benchmarks/bench_routing.py [--skills 200] [--agents 30] [--turns 2000]

Prints median and p99 per routed turn (skill inference + competence + cost + Thompson
probabilities + draw), for the Thompson and greedy policies, with 5-turn conversations.
Targets (issue #2): median <= 1 ms, p99 <= 5 ms; --help <= 0.5 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skillchat.core import KeywordInferrer, Message, from_dict  # noqa: E402
from skillchat.core.standing import _fit  # noqa: E402
from skillchat.routing import build_router  # noqa: E402


def word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9)))


def synthetic_handbook(n_skills: int, n_agents: int, seed: int = 0) -> tuple[dict, list[str]]:
    rng = random.Random(seed)
    vocab = [word(rng) for _ in range(3000)]
    modes = [f"m{i}" for i in range(max(4, n_skills // 25))]
    skills = []
    for i in range(n_skills):
        mode = modes[i % len(modes)]
        inds = rng.sample(vocab, 12)
        skills.append({
            "id": f"{mode}.s{i}", "mode": mode, "name": f"Skill {i}", "description": " ".join(rng.sample(vocab, 12)),
            "indicators": inds + [f"{inds[0]} {inds[1]}"], "examples": [" ".join(rng.sample(vocab, 10)) for _ in range(3)],
            "parent": None,
        })
    skills.append({"id": "m0.general", "mode": "m0", "name": "General", "indicators": [], "examples": ["hello"]})
    agents = []
    for j in range(n_agents):
        agents.append({
            "id": f"a{j}", "model": f"vendor/model-{j}", "name": f"Agent {j}", "context_window": 100_000,
            "price": {"input_per_mtok": rng.uniform(0, 15), "output_per_mtok": rng.uniform(0, 60)},
            "prior": {"mean": rng.uniform(0.45, 0.85), "source": "synthetic",
                      "modes": {m: rng.uniform(0.4, 0.9) for m in rng.sample(modes, 3)}},
        })
    doc = {
        "schema_version": 1,
        "metadata": {"name": "synthetic", "version": 1},
        "settings": {"fallback_skill": "m0.general"},
        "modes": [{"id": m, "name": m, "completion_tokens": 500} for m in modes],
        "skills": skills, "agents": agents,
    }
    return doc, vocab


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skills", type=int, default=200)
    ap.add_argument("--agents", type=int, default=30)
    ap.add_argument("--turns", type=int, default=2000)
    args = ap.parse_args()

    doc, vocab = synthetic_handbook(args.skills, args.agents)
    hb = from_dict(doc, "synthetic")
    rng = random.Random(1)
    # Some learned evidence, so that posteriors differ and shrinkage has work to do.
    skill_ids = list(hb.skills)
    for _ in range(20_000):
        hb.record_outcome(f"a{rng.randrange(args.agents)}", {rng.choice(skill_ids): 1.0}, float(rng.random() < 0.7))
    t0 = time.perf_counter()
    KeywordInferrer(hb)
    build_ms = (time.perf_counter() - t0) * 1000

    conversations = []
    for _ in range(args.turns):
        turns = [Message("user" if k % 2 == 0 else "assistant", " ".join(rng.sample(vocab, rng.randint(8, 60))))
                 for k in range(5)]
        conversations.append(turns)

    print(f"handbook: {len(hb.skills)} skills, {len(hb.agents)} agents, {len(hb.modes)} modes; index built in {build_ms:.1f} ms")
    for policy in ("thompson", "greedy"):
        # A fresh router per policy: nothing cached from the previous pass.
        router = build_router(hb)
        fresh, ongoing = [], []
        for msgs in conversations:
            t = time.perf_counter()
            router.route(msgs, policy=policy, rng=rng)
            fresh.append((time.perf_counter() - t) * 1000)
        for msgs in conversations:
            # The app routes every user turn of a growing conversation: turns 1, 3 and 5.
            for end in (1, 3, 5):
                t = time.perf_counter()
                router.route(msgs[:end], policy=policy, rng=rng)
                if end == 5:
                    ongoing.append((time.perf_counter() - t) * 1000)
        for label, times in (("fresh 5-message conversation", fresh), ("5th message of an ongoing one", ongoing)):
            print(f"route {policy:8s} {label:30s}: median {statistics.median(times):.3f} ms, "
                  f"p99 {percentile(times, 0.99):.3f} ms  (n={len(times)})")

    # The first turn after a rating: the agents' standing (core/standing.py) is refitted then.
    router = build_router(hb)
    after = []
    for msgs in conversations[:300]:
        d = router.route(msgs[:1], policy="thompson", rng=rng)
        hb.record_outcome(d.chosen, d.skill_weights(), float(rng.random() < 0.7))
        t = time.perf_counter()
        router.route(msgs, policy="thompson", rng=rng)
        after.append((time.perf_counter() - t) * 1000)
    fits = []
    for _ in range(20):
        t = time.perf_counter()
        _fit(hb)
        fits.append((time.perf_counter() - t) * 1000)
    print(f"refit of every agent's standing (at most once per 2% new evidence): median {statistics.median(fits):.1f} ms, "
          f"max {max(fits):.1f} ms")
    print(f"route thompson first turn after a rating        : median {statistics.median(after):.3f} ms, "
          f"p99 {percentile(after, 0.99):.3f} ms  (n={len(after)})")

    runs = []
    for _ in range(7):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "skillchat", "--help"], check=True, capture_output=True)
        runs.append(time.perf_counter() - t)
    print(f"skillchat --help: median {statistics.median(runs) * 1000:.0f} ms, max {max(runs) * 1000:.0f} ms "
          f"over {len(runs)} runs")


if __name__ == "__main__":
    main()
