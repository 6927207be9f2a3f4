"""Online learning primitives: one rating updates the skills that were active when the turn was routed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from skillchat.core.handbook import Handbook

RATING_VALUES = {"up": 1.0, "down": 0.0}


@dataclass(frozen=True, slots=True)
class RatedTurn:
    """One explicitly rated turn, as relearn and off-policy evaluation read it from the trace log."""

    turn_id: str
    agent_id: str
    mode: str
    skills: Mapping[str, float]  # skill weights at routing time
    score: float  # the rating, in [0, 1]
    propensity: float  # probability the policy chose agent_id (1.0 when pinned or greedy)
    policy: str = "thompson"  # thompson | greedy | pinned | compare
    text: str = ""  # the user message, for re-tagging and skill discovery
    age_days: float = 0.0  # for decay of old evidence
    cost_usd: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    rating_id: int = 0
    # Other agents' probabilities at routing time (agent id -> p), when logged: lets off-policy
    # evaluation score a new policy that would have picked a different agent.
    probabilities: Mapping[str, float] = field(default_factory=dict)
    # The two answers of one side-by-side comparison (policy "compare") share a pair id.
    pair: str = ""


def rating_score(value: str | float) -> float:
    """'up' / 'down' or a score in [0, 1]."""
    if isinstance(value, str):
        try:
            return RATING_VALUES[value.lower()]
        except KeyError:
            raise ValueError(f"a rating is 'up', 'down' or a number in [0, 1], not {value!r}") from None
    score = float(value)
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"a rating score must be in [0, 1], got {score}")
    return score


def apply_rating(hb: Handbook, agent_id: str, skill_weights: Mapping[str, float], rating: str | float | None) -> bool:
    """Credit one explicit rating to the skills active at routing time, in proportion to their weights.

    alpha += w * y and beta += w * (1 - y), so a turn with four active skills adds one observation in
    total, not four. An unrated turn (None) changes nothing: silence is not a thumbs-down.
    Returns whether anything changed.
    """
    if rating is None:
        return False
    before = hb.evidence.agent(agent_id)
    hb.record_outcome(agent_id, skill_weights, rating_score(rating))
    return hb.evidence.agent(agent_id) != before


def replace_rating(
    hb: Handbook, agent_id: str, skill_weights: Mapping[str, float], old: str | float | None, new: str | float | None
) -> None:
    """A new rating on the same turn replaces the old one instead of adding to it.

    `old` must be what this handbook holds for the turn (the service takes it from the log, as of
    the handbook's watermark), not merely the turn's previous rating: another process may have
    written that one. Evidence never goes below zero (Evidence.add keeps it at zero).
    """
    if old is not None and agent_id in hb.agents:
        y = rating_score(old)
        total = sum(w for s, w in skill_weights.items() if s in hb.skills and w > 0)
        for skill, w in skill_weights.items():
            if skill in hb.skills and w > 0 and total > 0:
                share = w / total
                hb.evidence.add(agent_id, skill, -share * y, -share * (1.0 - y))
    apply_rating(hb, agent_id, skill_weights, new)


class RatingChange(Protocol):
    """A rating given or changed since a handbook's evidence (the store's CatchUp): `old` is what the
    handbook holds for the turn (None: nothing), `new` what the log says now."""

    @property
    def agent_id(self) -> str: ...

    @property
    def skills(self) -> Mapping[str, float]: ...

    @property
    def old(self) -> float | None: ...

    @property
    def new(self) -> float | None: ...


def apply_rating_changes(hb: Handbook, changes: Iterable[RatingChange]) -> None:
    """Bring a handbook up to date with the log: a first rating is applied, a changed one replaces
    what the handbook holds, a cleared one is taken back."""
    for c in changes:
        if c.old is None:
            apply_rating(hb, c.agent_id, c.skills, c.new)
        elif c.new != c.old:
            replace_rating(hb, c.agent_id, c.skills, c.old, c.new)
