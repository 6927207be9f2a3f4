"""Synthetic rated-turn logs for the relearn, evolution and OPE tests (helpers only, no tests)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from skillchat.core.learning import RatedTurn

TINY = Path(__file__).parent.parent / "data" / "tiny.json"

# Two topics inside code.debugging, with their own words, plus words every debugging turn shares.
TOPICS = {
    "keyerror": "keyerror dict lookup missing key json config mapping dictionary field".split(),
    "segfault": "segfault pointer malloc core dump segmentation null memory address".split(),
    "recipe": "recipe bake oven flour sugar cake bread dough butter".split(),
    "garden": "garden tomato plant seed soil water compost weed grow".split(),
}
SHARED = "why does my program fail here error crash bug".split()


def topic_text(rng: random.Random, topic: str, n_words: int = 9) -> str:
    words = [rng.choice(TOPICS[topic]) for _ in range(n_words - 3)] + [rng.choice(SHARED) for _ in range(3)]
    rng.shuffle(words)
    return " ".join(words)


def draw(rng: random.Random, probs: Mapping[str, float]) -> str:
    u, acc = rng.random(), 0.0
    last = ""
    for a, p in probs.items():
        acc += p
        last = a
        if u < acc:
            return a
    return last


def make_log(
    n: int,
    rates: Mapping[str, Mapping[str, float]],
    *,
    skills: Mapping[str, Mapping[str, float]] | None = None,
    agents: Sequence[str] = ("big", "mid", "small"),
    seed: int = 0,
    start_id: int = 1,
    age: float = 0.0,
) -> list[RatedTurn]:
    """`rates[topic][agent]`: success probability; agents drawn uniformly (propensity 1/len)."""
    rng = random.Random(seed)
    topics = list(rates)
    skills = skills or {t: {"code.debugging": 1.0} for t in topics}
    out = []
    for i in range(n):
        topic = topics[i % len(topics)]
        agent = agents[rng.randrange(len(agents))]
        y = 1.0 if rng.random() < rates[topic][agent] else 0.0
        out.append(
            RatedTurn(
                turn_id=f"t{start_id + i}", agent_id=agent, mode="code", skills=dict(skills[topic]), score=y,
                propensity=1.0 / len(agents), policy="thompson", text=topic_text(rng, topic), age_days=age,
                cost_usd=0.001, prompt_tokens=100, completion_tokens=50, rating_id=start_id + i,
                probabilities={a: 1.0 / len(agents) for a in agents},
            )
        )
    return out


def cells(hb) -> dict[tuple[str, str], tuple[float, float]]:  # type: ignore[no-untyped-def]
    return {(a, s): (round(x, 9), round(y, 9)) for a, s, x, y in hb.evidence.cells() if x or y}
