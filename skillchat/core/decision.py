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
    policy: str  # "thompson", "greedy" or "pinned"
    lam: float
    prompt_tokens: int
    reason: str

    @property
    def winner(self) -> AgentScore:
        return next(a for a in self.ranking if a.agent_id == self.chosen)

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
    def from_dict(cls, d: dict[str, Any]) -> "RoutingDecision":
        return cls(
            **{k: d[k] for k in ("handbook", "handbook_version", "mode", "confident", "chosen", "probability", "policy", "lam", "prompt_tokens", "reason")},
            skills=tuple(ActiveSkill(s["id"], s["weight"], tuple(s.get("evidence", ()))) for s in d["skills"]),
            ranking=tuple(AgentScore(**a) for a in d["ranking"]),
        )
