"""The routing decision: everything the UI shows about a turn and the trace store keeps."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from skillchat.core.inference import ActiveSkill


@dataclass(frozen=True, slots=True)
class AgentScore:
    agent_id: str
    name: str
    model: str
    competence: float  # posterior mean over the active skills, weighted
    uncertainty: float  # its standard deviation
    cost_usd: float  # estimated cost of this turn
    cost_known: bool  # False when neither a price nor an observed cost was available
    cost_norm: float  # cost_usd / the most expensive eligible agent's
    score: float  # competence - lambda * cost_norm
    probability: float  # chance the policy picks this agent
    eligible: bool = True
    excluded: str | None = None  # why an agent could not take the turn


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    handbook: str
    handbook_version: int
    mode: str
    skills: tuple[ActiveSkill, ...]
    confident: bool  # False when no skill matched and the fallback skill was used
    ranking: tuple[AgentScore, ...]  # eligible agents by score, then excluded ones
    chosen: str
    probability: float  # propensity of the chosen agent, for off-policy evaluation
    policy: str  # "thompson", "gentle", "greedy" or "pinned"
    lam: float
    prompt_tokens: int
    reason: str
    # The agent with the best expected score, the greedy choice. Empty in decisions stored before
    # it was recorded; `best` then falls back to the top of the ranking, which is sorted by score.
    best_expected: str = ""

    @property
    def winner(self) -> AgentScore:
        return next(a for a in self.ranking if a.agent_id == self.chosen)

    @property
    def best(self) -> AgentScore:
        """The eligible agent with the best expected score (what greedy routing would have taken)."""
        if self.best_expected:
            found = next((a for a in self.ranking if a.agent_id == self.best_expected), None)
            if found is not None:
                return found
        return next((a for a in self.ranking if a.eligible), self.winner)

    @property
    def explored(self) -> bool:
        """True when the draw took another agent than the best expected one, greedy routing's pick.

        The one test behind "exploring" wherever it is shown. A drawn agent with the same score
        as the best one is not exploring: greedy routing could as well have taken it.
        """
        if self.policy not in ("thompson", "gentle") or self.chosen == self.best.agent_id:
            return False
        return abs(self.winner.score - self.best.score) > 1e-12

    @property
    def estimated_cost(self) -> float:
        return self.winner.cost_usd

    def skill_weights(self) -> dict[str, float]:
        return {s.id: s.weight for s in self.skills}

    def fallbacks(self) -> list[str]:
        """Eligible agents other than the chosen one, best first: the order to try on failure."""
        return [a.agent_id for a in self.ranking if a.eligible and a.agent_id != self.chosen]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skills"] = [asdict(s) | {"evidence": list(s.evidence)} for s in self.skills]
        d["ranking"] = [asdict(a) for a in self.ranking]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoutingDecision:
        return cls(
            **{k: d[k] for k in ("handbook", "handbook_version", "mode", "confident", "chosen", "probability", "policy", "lam",
                                 "prompt_tokens", "reason")},
            skills=tuple(ActiveSkill(s["id"], s["weight"], tuple(s.get("evidence", ()))) for s in d["skills"]),
            ranking=tuple(AgentScore(**a) for a in d["ranking"]),
            best_expected=d.get("best_expected") or "",
        )
