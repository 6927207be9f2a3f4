"""Competence of an agent on a skill: a Beta posterior shrunk through skill -> mode -> agent.

The explicit prior (from public knowledge, in the handbook) sets the agent's level and its
per-mode and per-skill offsets. Evidence then moves the level at each tier:

* the agent's level from its ratings in *other* modes,
* the mode's level from ratings on *sibling* skills of the same mode,
* the skill itself from its own ratings,

so an unseen skill scores what its neighbours suggest (never 0), and one lucky thumbs-up moves a
skill only as far as `skill_strength` pseudo-counts allow (never to 1). Offsets are kept on the
logit scale, so a known relative strength survives when the overall level moves. Evidence used at
one tier is excluded from the tier above it, so nothing is counted twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from skillchat.core.handbook import Handbook

_EPS = 1e-4


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass(frozen=True, slots=True)
class Posterior:
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def variance(self) -> float:
        a, b = self.alpha, self.beta
        return a * b / ((a + b) ** 2 * (a + b + 1.0))

    def interval(self, z: float = 1.64) -> tuple[float, float]:
        """A normal-approximation credible interval, clipped to [0, 1]."""
        sd = math.sqrt(self.variance)
        return max(0.0, self.mean - z * sd), min(1.0, self.mean + z * sd)


def posterior(hb: Handbook, agent_id: str, skill_id: str) -> Posterior:
    return skill_posteriors(hb, agent_id, (skill_id,))[0]


def skill_posteriors(hb: Handbook, agent_id: str, skill_ids: Sequence[str]) -> list[Posterior]:
    """Posteriors of one agent on several skills; the agent and mode tiers are computed once.

    This runs for every agent on every turn, so it is written for speed: prior logits are cached
    per agent (priors never change), and the tiers are inlined.
    """
    agent = hb.agents[agent_id]
    st = hb.settings
    ev = hb.evidence
    prior = agent.prior
    logits = _prior_logits(hb, agent_id)
    p_agent, lp_agent = prior.mean, logits[None]
    a_s, a_f = ev.agent(agent_id)
    kp, km, k = st.prior_strength, st.mode_strength, st.skill_strength
    tiers: dict[str, tuple[float, float, float, float]] = {}
    out = []
    for skill_id in skill_ids:
        mode = hb.skills[skill_id].mode
        tier = tiers.get(mode)
        if tier is None:
            lp_mode = logits[mode] if mode in logits else lp_agent
            m_s, m_f = ev.mode(agent_id, mode)
            o_s, o_f = a_s - m_s, a_f - m_f
            if o_s + o_f > 1e-9:
                level = (kp * p_agent + o_s) / (kp + o_s + o_f)
                mode_center = _sigmoid(_logit(level) + lp_mode - lp_agent)
            else:
                mode_center = _sigmoid(lp_mode)
            tier = tiers[mode] = (lp_mode, mode_center, m_s, m_f)
        lp_mode, mode_center, m_s, m_f = tier
        s_s, s_f = ev.skill(agent_id, skill_id)
        o_s, o_f = m_s - s_s, m_f - s_f
        mode_level = (km * mode_center + o_s) / (km + o_s + o_f) if o_s + o_f > 1e-9 else mode_center
        lp_skill = logits.get(skill_id)
        center = mode_level if lp_skill is None else _sigmoid(_logit(mode_level) + lp_skill - lp_mode)
        out.append(Posterior(k * center + s_s, k * (1.0 - center) + s_f))
    return out


def _prior_logits(hb: Handbook, agent_id: str) -> dict[str | None, float]:
    """Logits of an agent's prior level (key None) and its mode and skill overrides."""
    agent = hb.agents[agent_id]
    cache = hb._prior_logit_cache
    hit = cache.get(agent_id)
    if hit is not None and hit[0] is agent:  # an agent replaced in place gets fresh logits
        return hit[1]
    logits: dict[str | None, float] = {None: _logit(agent.prior.mean)}
    logits.update({m: _logit(p) for m, p in agent.prior.modes.items()})
    logits.update({s: _logit(p) for s, p in agent.prior.skills.items()})
    cache[agent_id] = (agent, logits)
    return logits
