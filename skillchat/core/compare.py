"""Side-by-side comparison: which two agents a compared turn goes to, and how its ratings are logged.

One thumb per turn teaches the router about one agent. A compared turn asks two and the user says
which answer was better, so it teaches about two, and about the one question routing keeps asking:
is the best expected agent really better than the one that might replace it?

The pair is the best expected agent (what greedy routing takes) and a challenger drawn among the
other eligible agents in proportion to its chance of beating the best under the posterior (its
score, competence minus lambda times cost, above the best's; normal approximation of the
difference), mixed with a floor so that every eligible agent can be drawn. Drawing, rather than
always taking the likeliest challenger, gives every agent a known, positive chance of being
called: that chance is the propensity logged with each answer's turn (1 for the best expected
agent, the challenger's draw probability for the other), so relearn credits both ratings and
off-policy evaluation can weight them exactly (see `slot_propensity`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

from skillchat.core.decision import RoutingDecision

POLICY = "compare"
# Share of the challenger draw spread evenly over the eligible agents: keeps every one reachable
# (and its propensity away from zero) however sure the posterior is about who would win.
CHALLENGER_FLOOR = 0.1
OUTCOMES = ("left", "right", "both_good", "both_bad")
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class ComparePair:
    best: str  # the best expected agent: the left answer
    challenger: str  # the drawn challenger: the right answer
    called: Mapping[str, float]  # P(the comparison calls this agent), every eligible agent
    beats: Mapping[str, float]  # P(its score beats the best's), every other eligible agent

    @property
    def agents(self) -> tuple[str, str]:
        return self.best, self.challenger


def beat_probability(score: float, sd: float, best_score: float, best_sd: float) -> float:
    """P(an agent's score exceeds the best's) when both are independent normals."""
    spread = math.hypot(sd, best_sd)
    if spread <= 0:
        return 1.0 if score > best_score else 0.0
    return 0.5 * math.erfc(-(score - best_score) / (spread * _SQRT2))


def challenger_odds(decision: RoutingDecision, floor: float = CHALLENGER_FLOOR) -> tuple[dict[str, float], dict[str, float]]:
    """(chance of beating the best expected agent, chance of being drawn as challenger) per other
    eligible agent. The draw is proportional to the first, with `floor` spread evenly."""
    best = decision.best
    others = [a for a in decision.ranking if a.eligible and a.agent_id != best.agent_id]
    beats = {a.agent_id: beat_probability(a.score, a.uncertainty, best.score, best.uncertainty) for a in others}
    total = sum(beats.values())
    draw = {}
    for a in others:
        share = beats[a.agent_id] / total if total > 0 else 1.0 / len(others)
        draw[a.agent_id] = (1.0 - floor) * share + floor / len(others)
    return beats, draw


def pick_pair(decision: RoutingDecision, rng: random.Random | None = None,
              floor: float = CHALLENGER_FLOOR) -> ComparePair | None:
    """The two agents to ask, or None when fewer than two agents can take the turn."""
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must be in [0, 1], got {floor!r}")
    best = decision.best
    if not best.eligible:
        return None
    beats, draw = challenger_odds(decision, floor)
    if not draw:
        return None
    u, acc = (rng or random.Random()).random(), 0.0
    order = sorted(draw)  # a fixed order: the same u draws the same agent
    challenger = order[-1]
    for agent_id in order:
        acc += draw[agent_id]
        if u < acc:
            challenger = agent_id
            break
    return ComparePair(best.agent_id, challenger, {best.agent_id: 1.0, **draw}, beats)


def side_decision(decision: RoutingDecision, pair: ComparePair, agent_id: str) -> RoutingDecision:
    """The decision logged with one answer of a comparison: that agent chosen, policy "compare",
    and every agent's probability the chance the comparison had of calling it."""
    if agent_id not in pair.agents:
        raise ValueError(f"{agent_id!r} is not in the pair {pair.agents}")
    ranking = tuple(replace(a, probability=pair.called.get(a.agent_id, 0.0)) for a in decision.ranking)
    other = pair.challenger if agent_id == pair.best else pair.best
    name = next((a.name for a in decision.ranking if a.agent_id == other), other)
    if agent_id == pair.best:
        reason = f"compared: best expected, side by side with {name}"
    else:
        reason = (f"compared: challenger (beats {name} with p={pair.beats[agent_id]:.0%} under the posterior; "
                  f"drawn with p={pair.called[agent_id]:.0%})")
    return replace(decision, chosen=agent_id, probability=pair.called[agent_id], policy=POLICY, ranking=ranking,
                   reason=reason)


def outcome_ratings(outcome: str) -> tuple[float, float]:
    """The user's preference as (left rating, right rating): the better answer up and the other down,
    or both the same."""
    try:
        return {"left": (1.0, 0.0), "right": (0.0, 1.0), "both_good": (1.0, 1.0), "both_bad": (0.0, 0.0)}[outcome]
    except KeyError:
        raise ValueError(f"a comparison outcome is one of {', '.join(OUTCOMES)}, not {outcome!r}") from None


def preference(left_score: float, right_score: float) -> str:
    """What a user who sees both answers' quality says: the better one, or, when they are alike,
    both good (scores of at least half marks) or both bad. The benchmark's simulated user."""
    if left_score != right_score:
        return "left" if left_score > right_score else "right"
    return "both_good" if left_score >= 0.5 else "both_bad"


def continues_right(outcome: str) -> bool:
    """Whether the conversation goes on from the right answer: only when the user preferred it."""
    outcome_ratings(outcome)  # validates
    return outcome == "right"


def slot_propensity(called: float) -> float:
    """The propensity off-policy evaluation gives one answer of a complete comparison.

    A comparison calls agent a with probability P(a) (its logged propensity) and logs two rated
    answers. Summed over the pair, w * r with w = pi(a) / P(a) is the Horvitz-Thompson estimate of
    a policy's value on the turn, unbiased whenever every P(a) > 0. Counting the turn as two rows
    of the usual per-row mean, each row's weight must be twice that: pi(a) / (P(a) / 2), the
    chance that a slot picked at random from the pair holds a. So a comparison's rows are used
    only in complete pairs (ope.py drops half pairs).
    """
    return called / 2.0
