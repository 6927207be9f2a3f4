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
from collections.abc import Sequence
from dataclasses import dataclass

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


def mode_center(hb: Handbook, agent_id: str, mode: str) -> float:
    """An agent's expected success rate in a mode before its ratings there: its prior for the
    mode, moved by its ratings in every other mode (keeping the prior's offset on the logit scale)."""
    logits = _prior_logits(hb, agent_id)
    lp_agent = logits[None]
    lp_mode = logits.get(mode, lp_agent)
    a_s, a_f = hb.evidence.agent(agent_id)
    m_s, m_f = hb.evidence.mode(agent_id, mode)
    o_s, o_f = a_s - m_s, a_f - m_f
    if o_s + o_f <= 1e-9:
        return _sigmoid(lp_mode)
    kp = hb.settings.prior_strength
    level = (kp * hb.agents[agent_id].prior.mean + o_s) / (kp + o_s + o_f)
    return _sigmoid(_logit(level) + lp_mode - lp_agent)


def posterior(hb: Handbook, agent_id: str, skill_id: str) -> Posterior:
    return skill_posteriors(hb, agent_id, (skill_id,))[0]


def skill_posteriors(hb: Handbook, agent_id: str, skill_ids: Sequence[str]) -> list[Posterior]:
    """Posteriors of one agent on several skills."""
    return posteriors(hb, skill_ids)[agent_id]


def posteriors(hb: Handbook, skill_ids: Sequence[str]) -> dict[str, list[Posterior]]:
    """Posteriors of every agent on several skills, in the order of `skill_ids`.

    All agents are computed together because how hard a skill is comes from everyone's
    ratings: if every agent that was tried on a skill did worse there than its usual level, an
    agent that was never tried there is expected to do worse too. Without that, the untried agent
    looks best exactly where the others have failed (a winner's curse that routes the hardest
    questions to the least-known model). Difficulty is a logit shift estimated leave-one-out, so
    an agent's own ratings never count twice in its own estimate.

    This runs on every turn, so the tiers are inlined and prior logits cached per agent.
    """
    st = hb.settings
    ev = hb.evidence
    km, k = st.mode_strength, st.skill_strength
    agents = list(hb.agents)

    # Each agent's level in a skill's mode (from its other ratings), and the skill's own counts.
    skill_x: dict[tuple[str, str], tuple[float, float, float]] = {}
    unique = list(dict.fromkeys(skill_ids))
    for a in agents:
        logits = _prior_logits(hb, a)
        tiers: dict[str, tuple[float, float, float, float]] = {}
        for sid in unique:
            mode = hb.skills[sid].mode
            tier = tiers.get(mode)
            if tier is None:
                m_s, m_f = ev.mode(a, mode)
                tier = tiers[mode] = (logits.get(mode, logits[None]), mode_center(hb, a, mode), m_s, m_f)
            lp_mode, center, m_s, m_f = tier
            s_s, s_f = ev.skill(a, sid)
            o_s, o_f = m_s - s_s, m_f - s_f
            mode_level = (km * center + o_s) / (km + o_s + o_f) if o_s + o_f > 1e-9 else center
            lp_skill = logits.get(sid)
            xs = _logit(mode_level) if lp_skill is None else _logit(mode_level) + lp_skill - lp_mode
            skill_x[a, sid] = (xs, s_s, s_f)
    shift = {sid: _Difficulty([skill_x[a, sid] for a in agents], k) for sid in unique}

    out: dict[str, list[Posterior]] = {}
    for i, a in enumerate(agents):
        row = []
        for sid in skill_ids:
            xs, s_s, s_f = skill_x[a, sid]
            center = _sigmoid(xs + shift[sid].without(i))
            row.append(Posterior(k * center + s_s, k * (1.0 - center) + s_f))
        out[a] = row
    return out


# A difficulty shift is capped: beyond 3 logits every agent sits near 0 or 1 anyway, and a larger
# step from one Newton iteration is more often noise than signal.
_MAX_SHIFT = 3.0


class _Difficulty:
    """How much better or worse than expected agents did on a skill, as a logit shift.

    One Newton step of the logistic fit of a common shift to (expected level, successes,
    failures) per agent, with `strength` pseudo-observations of "no shift"; `without(i)` leaves
    agent i out.
    """

    __slots__ = ("_rows", "_resid", "_info", "_pseudo", "_rated")

    def __init__(self, rows: Sequence[tuple[float, float, float]], strength: float) -> None:
        self._rows: list[tuple[float, float]] = []
        resid = info = 0.0
        self._rated = 0
        for x, succ, fail in rows:
            n = succ + fail
            if n > 1e-9:
                q = _sigmoid(x)
                r, v = succ - n * q, n * q * (1.0 - q)
                self._rated += 1
            else:
                r = v = 0.0
            self._rows.append((r, v))
            resid += r
            info += v
        self._resid, self._info = resid, info
        self._pseudo = strength

    def without(self, i: int) -> float:
        r, v = self._rows[i]
        info = self._info - v
        # One other agent's ratings cannot tell "this skill is hard" from "that agent is weak here".
        if self._rated - (v > 0) < 2 or info <= 1e-9:
            return 0.0
        shift = (self._resid - r) / (info + self._pseudo)
        return max(-_MAX_SHIFT, min(_MAX_SHIFT, shift))


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
