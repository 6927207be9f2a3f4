"""Where each agent stands on the usual mix of turns, corrected for which turns it was given.

Routing gives each agent the turns it looks best at, so an agent's raw success rate says as much
about its turns as about the agent: a strong, dear model that is only called on the hardest
questions has a lower raw rate than a cheap one that answers the easy ones. Comparing raw rates
then names the wrong champion. This module fits an additive logit model to all the evidence,

    P(agent a succeeds on skill s) = sigmoid(ability[a, mode(s)] + ease[s]),

with each agent's ability shrunk towards its prior centre in that mode (its level elsewhere, net of
how hard the modes it was rated in are for the other agents) and
each skill's ease shrunk towards 0, by a few rounds of coordinate Newton steps. An agent's
standing is then its expected success on the same mix of turns for everyone: the share of all
ratings each skill received.

How far an agent's ability in one mode may stray from its level elsewhere is learned from the
ratings themselves (empirical Bayes): a first fit uses `mode_strength`, the spread of the agents'
deviations beyond their sampling noise sets the prior of a second. Where the models' strengths
hardly differ between task types, a mode then needs far more evidence to overturn the champion,
which with many models otherwise happens by luck alone; where they do differ, it needs no more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from skillchat.core.competence import mode_center
from skillchat.core.handbook import Handbook
from skillchat.core.taxonomy import Settings

_ROUNDS = 6
_MAX_LOGIT = 8.0
# The learned spread of abilities between modes (logit variance) never goes below this: however
# alike the modes look, a mode whose evidence is overwhelming still gets its own ability.
_MIN_SPREAD = 0.02
# The configured spread counts as this many rated modes in the learned one, so a new user's first
# couple of rated modes cannot pin it near zero (a model nobody has rated would then be trusted as
# if it had been); with the hundreds of (model, mode) records of a long history the data decide.
_SPREAD_PRIOR_CELLS = 10.0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class Standing:
    # agent -> (expected success on the usual mix of turns, its standard deviation)
    overall: dict[str, tuple[float, float]]
    # (agent, mode) -> (expected success on the mode's usual mix, its standard deviation)
    by_mode: dict[tuple[str, str], tuple[float, float]]


def standing(hb: Handbook) -> Standing:
    """The fitted standing of every agent; refitted when the evidence has grown enough to matter.

    A rating changes the fit by about 1/n of the evidence, so with a large history the fit is
    kept until 2% more evidence (or any rewrite of old evidence) has arrived: routing stays fast
    while the figures stay current. With a short history every rating refits.
    """
    ev = hb.evidence
    total = ev.total()
    hit: tuple[int, float, Settings, Standing] | None = getattr(hb, "_standing_cache", None)
    if hit is not None:
        version, at_total, settings, cached = hit
        unchanged = version == ev.version
        small_growth = total > at_total and total - at_total < max(1.0, 0.02 * total)
        if settings is hb.settings and (unchanged or small_growth):
            return cached
    fitted = _fit(hb)
    hb._standing_cache = (ev.version, total, hb.settings, fitted)  # type: ignore[attr-defined]
    return fitted


def _fit(hb: Handbook) -> Standing:
    st = hb.settings
    agents = list(hb.agents)
    cells = [(a, s, succ, fail) for a, s, succ, fail in hb.evidence.cells() if succ + fail > 1e-9 and s in hb.skills]
    mode_of = {s: sk.mode for s, sk in hb.skills.items()}
    modes = list(hb.modes)

    # Prior centre of each agent in each mode: its level elsewhere, as the competence tiers say.
    centre = {(a, m): _logit(mode_center(hb, a, m)) for a in agents for m in modes}
    ability = dict(centre)
    ease = {s: 0.0 for s in hb.skills}
    prec_ability = 0.25 * st.mode_strength
    prec_ease = 0.25 * st.skill_strength
    by_am: dict[tuple[str, str], list[tuple[str, float, float]]] = {}
    by_s: dict[str, list[tuple[str, float, float]]] = {}
    for a, s, succ, fail in cells:
        by_am.setdefault((a, mode_of[s]), []).append((s, succ, fail))
        by_s.setdefault(s, []).append((a, succ, fail))

    info_am: dict[tuple[str, str], float] = {}

    # The centres are refitted each round net of how hard the modes each agent was rated in are,
    # which the abilities fitted so far say (net_of_hardness).
    raw_centre = dict(centre)
    rated_in: dict[str, dict[str, float]] = {}
    for (a, m), rows in by_am.items():
        rated_in.setdefault(a, {})[m] = sum(succ + fail for _, succ, fail in rows)

    def recentre(prec_ability: float) -> None:
        net = net_of_hardness(raw_centre, ability, rated_in, modes, prec_ability, prec_ease, st.prior_strength)
        for (a, m), c in net.items():
            centre[a, m] = c
            if m not in rated_in[a]:
                ability[a, m] = c

    def rounds(prec_ability: float) -> None:
        for _ in range(_ROUNDS):
            recentre(prec_ability)
            for (a, m), rows in by_am.items():
                th = ability[a, m]
                g, h = -prec_ability * (th - centre[a, m]), prec_ability
                for s, succ, fail in rows:
                    q = _sigmoid(th + ease[s])
                    g += succ - (succ + fail) * q
                    h += (succ + fail) * q * (1 - q)
                ability[a, m] = max(-_MAX_LOGIT, min(_MAX_LOGIT, th + g / h))
                info_am[a, m] = h
            for s, rows in by_s.items():
                m = mode_of[s]
                b = ease[s]
                g, h = -prec_ease * b, prec_ease
                for a, succ, fail in rows:
                    q = _sigmoid(ability[a, m] + b)
                    g += succ - (succ + fail) * q
                    h += (succ + fail) * q * (1 - q)
                ease[s] = max(-_MAX_LOGIT, min(_MAX_LOGIT, b + g / h))

    rounds(prec_ability)
    spread = mode_spread(ability, centre, info_am, prec_ability)
    if spread is not None:
        rounds(1.0 / spread)

    # The usual mix of turns: every skill by its share of all ratings (uniform before any rating).
    traffic = {s: 0.0 for s in hb.skills}
    for _, s, succ, fail in cells:
        traffic[s] += succ + fail
    if sum(traffic.values()) <= 0:
        traffic = {s: 1.0 for s in hb.skills}
    mode_traffic: dict[str, float] = {}
    for s, w in traffic.items():
        mode_traffic[mode_of[s]] = mode_traffic.get(mode_of[s], 0.0) + w
    grand = sum(traffic.values())

    by_mode: dict[tuple[str, str], tuple[float, float]] = {}
    overall: dict[str, tuple[float, float]] = {}
    for a in agents:
        mean_all = var_all = 0.0
        for m in modes:
            wm = mode_traffic.get(m, 0.0)
            if wm <= 0:
                continue
            th = ability[a, m]
            mean = slope = 0.0
            for s in hb.skills_in_mode(m):
                w = traffic[s] / wm
                if w > 0:
                    q = _sigmoid(th + ease[s])
                    mean += w * q
                    slope += w * q * (1 - q)
            # Delta method: the ability's uncertainty (1 / its information) through the curve.
            sd = slope / math.sqrt(info_am.get((a, m), prec_ability))
            by_mode[a, m] = (mean, sd)
            share = wm / grand
            mean_all += share * mean
            var_all += share * share * sd * sd
        overall[a] = (mean_all, math.sqrt(var_all))
    return Standing(overall, by_mode)


def net_of_hardness(
    raw: Mapping[tuple[str, str], float],
    ability: Mapping[tuple[str, str], float],
    rated_in: Mapping[str, Mapping[str, float]],
    modes: Sequence[str],
    prec: float,
    prec_hard: float,
    prior_strength: float,
) -> dict[tuple[str, str], float]:
    """Each rated agent's centre in each mode (logit), net of how hard the modes it was rated in are.

    The competence tiers' centre `raw` is an agent's success rate elsewhere, so an agent rated mostly
    where every agent does badly would be judged weak in every other mode. A mode's hardness is how
    far the other agents' abilities there sit from their own centres, shrunk with `prec_hard`
    against `prec` per agent, and counts only with two or more of them: one other agent cannot tell
    "this mode is hard" from "that agent is weak here". It is taken back out of the centre in
    proportion to the agent's ratings in each mode (`rated_in`: agent -> mode -> ratings) and to the
    share of the centre that is evidence rather than prior (`prior_strength` pseudo-ratings).
    Agents and modes with no ratings elsewhere are left out: their centre is the raw one.
    """
    gaps: dict[str, dict[str, float]] = {}
    for a, counts in rated_in.items():
        for m in counts:
            gaps.setdefault(m, {})[a] = ability[a, m] - raw[a, m]

    sums = {m: sum(devs.values()) for m, devs in gaps.items()}

    def hardness(m: str, without: str) -> float:
        # `without` was rated in m: its own deviation is left out.
        others = len(gaps[m]) - 1
        if others < 2:
            return 0.0
        return prec * (sums[m] - gaps[m][without]) / (prec_hard + prec * others)

    out: dict[tuple[str, str], float] = {}
    for a, counts in rated_in.items():
        total = sum(counts.values())
        for m in modes:
            elsewhere = total - counts.get(m, 0.0)
            if elsewhere <= 1e-9:
                continue
            shift = sum(n * hardness(m2, a) for m2, n in counts.items() if m2 != m) / elsewhere
            out[a, m] = raw[a, m] - shift * elsewhere / (prior_strength + elsewhere)
    return out


def mode_spread(
    ability: dict[tuple[str, str], float],
    centre: dict[tuple[str, str], float],
    info: dict[tuple[str, str], float],
    prec: float,
) -> float | None:
    """The variance of abilities around their centres beyond sampling noise (method of moments,
    with `_SPREAD_PRIOR_CELLS` cells at the configured spread 1 / prec), or None without a mode
    rated enough to say (more than one rating's worth of information).

    A fitted ability is its own evidence shrunk by prec / info; undoing the shrinkage gives the
    deviation the evidence alone says, whose square overstates the spread by its sampling
    variance, 1 / (the evidence's information).
    """
    total = count = 0.0
    for key, h in info.items():
        evidence = h - prec
        if evidence > 1.0:
            d = (ability[key] - centre[key]) * h / evidence
            total += d * d - 1.0 / evidence
            count += 1
    if not count:
        return None
    return max(_MIN_SPREAD, (_SPREAD_PRIOR_CELLS / prec + total) / (_SPREAD_PRIOR_CELLS + count))
