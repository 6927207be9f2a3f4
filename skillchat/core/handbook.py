"""The Skill Handbook: modes, skills, agents, priors, and the evidence learned from ratings.

Structure (modes, skills, agents, priors) is immutable once parsed. Evidence and cost statistics
are mutable tables owned by the handbook, because online learning updates them after every rating
and the replay benchmark does so thousands of times; aggregates per (agent, mode) and per agent
are kept up to date incrementally so that scoring never has to sum over all skills.

The parts live in core/taxonomy.py (structure) and core/evidence.py (what is learned); the JSON
document, its limits and its validating reader in core/handbook_format.py.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skillchat.core import handbook_format as fmt
from skillchat.core.evidence import CostStat, Evidence
from skillchat.core.taxonomy import Agent, Mode, Prior, Settings, Skill

# The parts are imported from here by most of the code: a handbook is what they make up.
__all__ = ["Agent", "CostStat", "Evidence", "Handbook", "Mode", "Prior", "Settings", "Skill", "from_dict", "to_dict"]


@dataclass
class Handbook:
    name: str
    version: int
    modes: dict[str, Mode]
    skills: dict[str, Skill]
    agents: dict[str, Agent]
    settings: Settings = field(default_factory=Settings)
    description: str = ""
    parent_version: int | None = None
    created: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    # Id of the last rating folded into this version's evidence by relearn; ratings after it are
    # applied online on top. None: no rating is in it yet.
    evidence_through: int | None = None
    evidence: Evidence = field(init=False)
    costs: dict[tuple[str, str], CostStat] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.evidence = Evidence({s.id: s.mode for s in self.skills.values()})
        self._pooled: dict[str, CostStat | None] = {}
        # agent id -> (the Agent the logits were computed for, its prior logits); see core/competence.py
        self._prior_logit_cache: dict[str, tuple[Agent, dict[str | None, float]]] = {}
        self._by_mode: dict[str, list[str]] = {}
        for s in self.skills.values():
            self._by_mode.setdefault(s.mode, []).append(s.id)

    # --- structure -------------------------------------------------------------------------
    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def skills_in_mode(self, mode: str) -> list[str]:
        return self._by_mode.get(mode, [])

    def fallback(self) -> Skill:
        return self.skills[self.settings.fallback_skill]

    # --- learning --------------------------------------------------------------------------
    def record_outcome(self, agent: str, skills: Mapping[str, float], score: float) -> None:
        """Spread one rating in [0, 1] over the active skills, in proportion to their weights."""
        total = sum(w for s, w in skills.items() if s in self.skills and w > 0)
        if agent not in self.agents or total <= 0:
            return
        for skill, w in skills.items():
            if skill in self.skills and w > 0:
                share = w / total
                self.evidence.add(agent, skill, share * score, share * (1.0 - score))

    def record_cost(self, agent: str, mode: str, prompt_tokens: float, completion_tokens: float, usd: float) -> None:
        self.costs.setdefault((agent, mode), CostStat()).add(prompt_tokens, completion_tokens, usd)
        self._pooled.pop(agent, None)

    def set_cost(self, agent: str, mode: str, stat: CostStat) -> None:
        self.costs[(agent, mode)] = stat
        self._pooled.pop(agent, None)

    def cost_stat(self, agent: str, mode: str) -> CostStat | None:
        return self.costs.get((agent, mode))

    def agent_cost(self, agent: str) -> CostStat | None:
        """All modes of one agent pooled: a fallback when a mode has no observations yet."""
        if agent not in self._pooled:
            stats = [self.costs[(agent, m)] for m in self.modes if (agent, m) in self.costs]
            stats = [c for c in stats if c.n > 0]
            n = sum(c.n for c in stats)
            self._pooled[agent] = (
                CostStat(
                    n=n,
                    prompt_tokens=sum(c.prompt_tokens * c.n for c in stats) / n,
                    completion_tokens=sum(c.completion_tokens * c.n for c in stats) / n,
                    usd=sum(c.usd * c.n for c in stats) / n,
                )
                if n > 0
                else None
            )
        return self._pooled[agent]

    def copy(self) -> Handbook:
        return from_dict(to_dict(self), source=self.ref)

    def structure_copy(self, **changes: Any) -> Handbook:
        """A handbook with the same structure and no evidence or cost statistics."""
        data = to_dict(self)
        data["competence"], data["costs"] = {}, {}
        data["metadata"].update(changes)
        return from_dict(data, source=self.ref)


# --- the document ---------------------------------------------------------------------------


def to_dict(hb: Handbook) -> dict[str, Any]:
    competence: dict[str, dict[str, dict[str, float]]] = {}
    for agent, skill, succ, fail in sorted(hb.evidence.cells()):
        if succ or fail:
            competence.setdefault(agent, {})[skill] = {"successes": round(succ, 6), "failures": round(fail, 6)}
    costs: dict[str, dict[str, dict[str, float]]] = {}
    for (agent, mode), c in sorted(hb.costs.items()):
        costs.setdefault(agent, {})[mode] = {
            "n": round(c.n, 6),
            "prompt_tokens": round(c.prompt_tokens, 3),
            "completion_tokens": round(c.completion_tokens, 3),
            "usd": c.usd,
        }
    s = hb.settings
    return {
        "schema_version": fmt.SCHEMA_VERSION,
        "metadata": {
            "name": hb.name,
            "version": hb.version,
            "parent_version": hb.parent_version,
            "created": hb.created,
            "description": hb.description,
            "history": copy.deepcopy(hb.history),
            "evidence_through": hb.evidence_through,
        },
        "settings": {
            "fallback_skill": s.fallback_skill,
            "prior_strength": s.prior_strength,
            "mode_strength": s.mode_strength,
            "skill_strength": s.skill_strength,
            "exploration_floor": s.exploration_floor,
            "quality_floor": s.quality_floor,
            "challenge_z": s.challenge_z,
        },
        "modes": [
            {"id": m.id, "name": m.name, "description": m.description, "completion_tokens": m.completion_tokens}
            for m in hb.modes.values()
        ],
        "skills": [fmt.skill_dict(sk) for sk in hb.skills.values()],
        "agents": [fmt.agent_dict(a) for a in hb.agents.values()],
        "competence": competence,
        "costs": costs,
    }


def from_dict(data: Any, source: str = "<handbook>") -> Handbook:
    """Parse and validate a handbook document; raises HandbookError naming source and JSON path."""
    r = fmt.Reader(source)
    root = fmt.check_schema(r, data)
    meta = fmt.read_metadata(r, root)
    modes = fmt.read_modes(r, root)
    skills = fmt.read_skills(r, root, modes)
    settings = fmt.read_settings(r, root, skills)
    agents = fmt.read_agents(r, root, modes, skills)
    hb = Handbook(
        name=meta.name,
        version=meta.version,
        modes=modes,
        skills=skills,
        agents=agents,
        settings=settings,
        description=r.str_(meta.raw, "description", "$.metadata", required=False),
        parent_version=meta.parent_version,
        created=r.str_(meta.raw, "created", "$.metadata", required=False),
        history=list(meta.history),
        evidence_through=meta.evidence_through,
    )
    for aid, sid, successes, failures in fmt.read_competence(r, root, agents, skills):
        hb.evidence.add(aid, sid, successes, failures)
    for aid, mid, stat in fmt.read_costs(r, root, agents, modes):
        hb.set_cost(aid, mid, stat)
    return hb
