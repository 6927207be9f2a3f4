"""Agent scoring and choice: competence minus lambda times normalised cost, explored by Thompson sampling.

Each eligible agent's score over the active skills is uncertain: competence is a weighted sum of
Beta posteriors. Thompson sampling picks an agent with the probability that its sampled score is
the highest. We compute those probabilities directly (normal approximation of each agent's score,
integrated on a grid) and then draw from them, so the propensity logged with every turn is the
exact probability with which the policy chose, which off-policy evaluation needs. A small floor
(`exploration_floor`, spread over the eligible agents) keeps every agent reachable, so routing
cannot collapse onto one model however lopsided early ratings are, and a second one
(`quality_floor`) keeps the likely most competent agent's record current whatever its price.

Greedy picks (no exploration) go to the proven agent unless the evidence clearly says otherwise:
see `_best_expected`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from skillchat.core.competence import posteriors
from skillchat.core.decision import AgentScore, RoutingDecision
from skillchat.core.handbook import Agent, Handbook
from skillchat.core.inference import KeywordInferrer, SkillInferrer, SkillProfile
from skillchat.core.ports import HeuristicCounter, Message, NoPrices, PriceBook, TokenCounter
from skillchat.core.standing import standing
from skillchat.errors import SkillchatError

# "gentle" is Thompson sampling that strays from the best expected agent on at most GENTLE_SHARE
# of turns: with a new handbook's wide priors, plain Thompson sampling sends most turns elsewhere,
# a different model nearly every turn.
POLICIES = ("thompson", "gentle", "greedy")
GENTLE_SHARE = 0.25
_GRID = 40
_SQRT2 = math.sqrt(2.0)
_MIN_SD = 1e-4
# The share of `challenge_z` a dearer challenger must clear (a cheaper one clears all of it):
# chosen on validation folds of the replay sets (benchmarks/bench_tune.py).
_DEARER_MARGIN = 0.5
# The app's default cost weight (skillchat.config.DEFAULT_LAMBDA, where its choice is explained),
# for callers that name none; the core cannot import the app's config. tests/test_one_router.py
# holds the two equal.
DEFAULT_LAMBDA = 0.1


@dataclass(frozen=True, slots=True)
class CostEstimate:
    usd: float
    known: bool
    completion_tokens: float


def estimate_cost(hb: Handbook, agent: Agent, mode: str, prompt_tokens: int, prices: PriceBook) -> CostEstimate:
    """Expected USD of this turn: prompt tokens and expected completion tokens at the agent's price.

    Without a price (a model missing from the price list), the observed mean cost of its calls is
    used; with neither, the estimate is marked unknown.
    """
    default_ct = hb.modes[mode].completion_tokens
    stat = hb.cost_stat(agent.id, mode)
    pooled = hb.agent_cost(agent.id)
    completion = float(default_ct)
    if stat is not None and stat.n > 0 and stat.completion_tokens > 0:
        # Two pseudo-observations of the mode's default keep one odd answer from dominating.
        completion = (stat.n * stat.completion_tokens + 2 * default_ct) / (stat.n + 2)
    price = agent.price or prices.price(agent.model)
    if price is not None:
        return CostEstimate(prompt_tokens * price.input + completion * price.output, True, completion)
    if stat is not None and stat.n > 0:
        if pooled is not None and pooled.n > stat.n:
            return CostEstimate((stat.n * stat.usd + 2 * pooled.usd) / (stat.n + 2), True, completion)
        return CostEstimate(stat.usd, True, completion)
    if pooled is not None:
        return CostEstimate(pooled.usd, True, completion)
    return CostEstimate(0.0, False, completion)


def win_probabilities(means: Sequence[float], sds: Sequence[float]) -> list[float]:
    """P(agent i's score is the largest) when scores are independent normals.

    Agents whose optimistic bound is below the best pessimistic bound are given 0 up front; the
    rest share one grid over the score axis, so the cost is O(contenders x grid).
    """
    n = len(means)
    if n == 0:
        return []
    sds = [max(s, _MIN_SD) for s in sds]
    # Beyond 3.5 sd on both sides the chance of overtaking is below 1e-7: not worth integrating.
    floor = max(m - 3.5 * s for m, s in zip(means, sds, strict=True))
    live = [i for i in range(n) if means[i] + 3.5 * sds[i] >= floor]
    probs = [0.0] * n
    if len(live) == 1:
        probs[live[0]] = 1.0
        return probs
    lo = min(means[i] - 4 * sds[i] for i in live)
    hi = max(means[i] + 4 * sds[i] for i in live)
    step = (hi - lo) / (_GRID - 1)
    xs = [lo + g * step for g in range(_GRID)]
    erfc, exp = math.erfc, math.exp
    cdfs, dens = [], []
    for i in live:
        m, inv = means[i], 1.0 / sds[i]
        zs = [(x - m) * inv for x in xs]
        cdfs.append([0.5 * erfc(-z / _SQRT2) for z in zs])
        dens.append([exp(-0.5 * z * z) * inv if -7.0 < z < 7.0 else 0.0 for z in zs])
    total_prod = [math.prod(col) for col in zip(*cdfs, strict=True)]
    # P(i wins) = integral of f_i(x) * prod_{j != i} F_j(x) dx on the shared grid.
    for k, i in enumerate(live):
        ck, dk = cdfs[k], dens[k]
        acc = 0.0
        for g in range(_GRID):
            d = dk[g]
            if d:
                c = ck[g]
                others = total_prod[g] / c if c > 1e-12 else math.prod(cdfs[j][g] for j in range(len(live)) if j != k)
                acc += d * others
        probs[i] = acc
    total = sum(probs)
    if total <= 0:
        best = max(live, key=lambda i: means[i])
        return [1.0 if i == best else 0.0 for i in range(n)]
    return [p / total for p in probs]


class Router:
    """Infers the skills a turn needs and picks the agent for it."""

    def __init__(
        self,
        handbook: Handbook,
        *,
        inferrer: SkillInferrer | None = None,
        token_counter: TokenCounter | None = None,
        prices: PriceBook | None = None,
    ) -> None:
        self.handbook = handbook
        self.inferrer = inferrer or KeywordInferrer(handbook)
        self.token_counter = token_counter or HeuristicCounter()
        self.prices = prices or NoPrices()

    def route(
        self,
        messages: Sequence[Message],
        *,
        lam: float = DEFAULT_LAMBDA,
        policy: str = "thompson",
        rng: random.Random | None = None,
        pin: str | None = None,
        exclude: Collection[str] = (),
        profile: SkillProfile | None = None,
        prompt_tokens: int | None = None,
    ) -> RoutingDecision:
        profile = profile or self.inferrer.infer(messages)
        tokens = self.token_counter.count(messages) if prompt_tokens is None else prompt_tokens
        return self.decide(profile, tokens, lam=lam, policy=policy, rng=rng, pin=pin, exclude=exclude)

    def decide(
        self,
        profile: SkillProfile,
        prompt_tokens: int,
        *,
        lam: float = DEFAULT_LAMBDA,
        policy: str = "thompson",
        rng: random.Random | None = None,
        pin: str | None = None,
        exclude: Collection[str] = (),  # agent ids to leave out; a mapping also says why, for the message
    ) -> RoutingDecision:
        if policy not in POLICIES:  # any other name would be sampled as Thompson and logged as itself
            raise ValueError(f"unknown policy {policy!r}")
        if not (math.isfinite(lam) and lam >= 0):  # inf or nan would make every score -inf or nan
            raise ValueError(f"lambda must be a finite number >= 0, got {lam!r}")
        hb = self.handbook
        wsum = sum(s.weight for s in profile.skills) or 1.0
        shares = [s.weight / wsum for s in profile.skills]
        skill_ids = [s.id for s in profile.skills]
        cands = []
        posts = posteriors(hb, skill_ids)
        for agent in hb.agents.values():
            why_not = None
            if agent.id in exclude:
                why_not = exclude[agent.id] if isinstance(exclude, Mapping) else "excluded for this turn"
            elif prompt_tokens > agent.context_window:
                why_not = f"conversation ({prompt_tokens:,} tokens) exceeds its context window ({agent.context_window:,})"
            mean = var = 0.0
            for share, post in zip(shares, posts[agent.id], strict=True):
                mean += share * post.mean
                var += share * share * post.variance
            cost = estimate_cost(hb, agent, profile.mode, prompt_tokens, self.prices)
            cands.append(_Candidate(agent, mean, math.sqrt(var), cost, why_not))

        eligible = [c for c in cands if c.excluded is None]
        if not eligible:
            raise NoEligibleAgent("no agent can take this turn: " + "; ".join(f"{c.agent.id}: {c.excluded}" for c in cands))
        known = sorted(c.cost.usd for c in eligible if c.cost.known)
        # An agent of unknown price is assumed to cost what a typical agent of the pool costs,
        # neither free (it would always win) nor the most expensive.
        typical = known[len(known) // 2] if known else 0.0
        top = max((c.cost.usd if c.cost.known else typical) for c in eligible)
        for c in cands:
            c.usd = c.cost.usd if c.cost.known else typical
            c.norm = c.usd / top if top > 0 else 0.0
            c.score = c.mean - lam * c.norm
        greedy = _best_expected(hb, eligible, lam, profile.mode)

        note = ""
        chosen_policy = policy
        pinned = next((c for c in cands if c.agent.id == pin), None) if pin is not None else None
        if pinned is not None and pinned.excluded is None:
            chosen, chosen_policy = pinned, "pinned"
            chosen.probability = 1.0
        else:
            if pin is not None:
                why = pinned.excluded if pinned else "not in this handbook"
                note = f"pinned {pin} cannot take this turn ({why}); routed instead"
            if policy == "greedy":
                chosen = greedy
                chosen.probability = 1.0
            else:
                eps, qf = hb.settings.exploration_floor, hb.settings.quality_floor
                # The quality share goes to whoever may be the most competent, price aside: at a high
                # lambda the strongest model is rarely drawn, and without it its record goes stale
                # exactly where a lower lambda (or a harder turn) would need it.
                sds = [c.sd for c in eligible]
                quality = win_probabilities([c.mean for c in eligible], sds) if qf > 0 else [0.0] * len(eligible)
                for c, p, q in zip(eligible, win_probabilities([c.score for c in eligible], sds), quality, strict=True):
                    c.probability = (1.0 - eps - qf) * p + eps / len(eligible) + qf * q
                if policy == "gentle":
                    _gentle(eligible, greedy)
                u, acc = (rng or random.Random()).random(), 0.0
                chosen = eligible[-1]
                for c in eligible:
                    acc += c.probability
                    if u < acc:
                        chosen = c
                        break

        ranking = sorted(
            (
                AgentScore(
                    agent_id=c.agent.id,
                    name=c.agent.name,
                    model=c.agent.model,
                    competence=c.mean,
                    uncertainty=c.sd,
                    cost_usd=c.usd,
                    cost_known=c.cost.known,
                    cost_norm=c.norm,
                    score=c.score,
                    probability=c.probability,
                    eligible=c.excluded is None,
                    excluded=c.excluded,
                )
                for c in cands
            ),
            key=lambda a: (not a.eligible, -a.score, a.cost_usd, a.agent_id),
        )
        decision = RoutingDecision(
            handbook=hb.name,
            handbook_version=hb.version,
            mode=profile.mode,
            skills=profile.skills,
            confident=profile.confident,
            ranking=tuple(ranking),
            chosen=chosen.agent.id,
            probability=chosen.probability,
            policy=chosen_policy,
            lam=lam,
            prompt_tokens=prompt_tokens,
            reason="",
        )
        return _with_reason(decision, hb, greedy.agent.id, note)


def _gentle(eligible: list[_Candidate], best: _Candidate) -> None:
    """Cap the chance of drawing another agent than the best expected one at GENTLE_SHARE. The
    others keep their proportions (floors included, so every agent stays reachable), and the turns
    that do explore still go to the agents most likely to be as good as the best one."""
    away = 1.0 - best.probability
    if away <= GENTLE_SHARE:
        return
    for c in eligible:
        c.probability *= GENTLE_SHARE / away
    best.probability = 1.0 - GENTLE_SHARE


def _best_expected(hb: Handbook, eligible: list[_Candidate], lam: float, mode: str) -> _Candidate:
    """The agent to take when not exploring: the proven one unless the evidence says otherwise.

    Per-skill estimates are noisy, and the agent with the highest estimate on a thin skill is often
    just the luckiest (the winner's curse). So the turn goes to an incumbent, and a challenger
    that is not dearer takes it only by beating the incumbent by more than `challenge_z` standard
    deviations of the difference (a dearer one by `_DEARER_MARGIN` of that), one level at a time:
    the overall champion holds the turn's mode unless an agent beats it on the mode; the mode's
    holder keeps the turn unless an agent beats it on the turn's own skills (by twice the margin if
    it is worse than the holder on the mode).

    The overall champion is the best proven agent (the best score at this lambda on the usual mix of
    turns, see core/standing.py, counting `challenge_z` standard deviations against it): a short
    lucky record is not a record. When only quality counts (lambda 0) and the handbook's prior rates
    every agent the same (the bench's, or a handbook that knows nothing of its models), price is the
    one public hint of quality left: the dearest agent is presumed best and keeps the crown unless
    others beat it on the standing, and then the best proven of those takes it. Teaching rarely
    draws a model again after a few unlucky early answers, and without the presumption a cheaper
    model with a long record took the crown from the best one on a record that only looked better
    than the starved one's. Price hints at quality, no more: an agent presumed as good as a cheaper
    one loses to it at any cost weight above 0 (applied there, the presumption kept the dearest
    agent's crown past the cost weights where a cheap one should take it). Where the prior does
    rank the agents, it is already in their standing.
    """
    key = lambda c: (c.score, -c.usd, c.agent.id)  # noqa: E731
    z = hb.settings.challenge_z
    if z <= 0 or len(eligible) == 1:
        return max(eligible, key=key)
    fit = standing(hb)

    def proven(c: _Candidate) -> tuple[float, float, str]:
        mean, sd = fit.overall[c.agent.id]
        return (mean - z * sd - lam * c.norm, -c.usd, c.agent.id)

    def beats(c: _Candidate, gain: float, sd: float, incumbent: _Candidate) -> bool:
        # Taking a turn from the incumbent for a cheaper agent risks the answer, so it needs clear
        # evidence; so does an agent at the same price (agents of unknown price all cost the typical
        # one), which saves nothing for that risk. A dearer agent already pays for its place through
        # lambda, but only in proportion to the price gap: among agents of about the same price, one
        # lucky record would otherwise take the turn from a better agent and charge more for it. So
        # it needs half the margin.
        return gain > z * sd * (1.0 if c.usd <= incumbent.usd else _DEARER_MARGIN)

    holder = max(eligible, key=proven)
    if lam == 0 and _prior_is_silent(hb, eligible):
        presumed = max(eligible, key=lambda c: (c.usd, c.agent.id))
        overall = {c.agent.id: (fit.overall[c.agent.id][0] - lam * c.norm, fit.overall[c.agent.id][1]) for c in eligible}
        p_score, p_sd = overall[presumed.agent.id]
        challengers = [c for c in eligible if c is not presumed and beats(
            c, overall[c.agent.id][0] - p_score, math.hypot(overall[c.agent.id][1], p_sd), presumed)]
        holder = max(challengers, key=proven) if challengers else presumed

    # Each agent's score on the turn's mode and its sd; a mode nobody has been rated on yet has no
    # standing to compare, and the champion keeps it.
    on_mode: dict[str, tuple[float, float]] = {}
    if all((c.agent.id, mode) in fit.by_mode for c in eligible):
        for c in eligible:
            mean, sd = fit.by_mode[c.agent.id, mode]
            on_mode[c.agent.id] = (mean - lam * c.norm, sd)
        h_score, h_sd = on_mode[holder.agent.id]
        better = [c for c in eligible
                  if beats(c, on_mode[c.agent.id][0] - h_score, math.hypot(on_mode[c.agent.id][1], h_sd), holder)]
        if better:
            holder = max(better, key=lambda c: (on_mode[c.agent.id][0], -c.usd, c.agent.id))

    def on_skills_sd(c: _Candidate) -> float:
        # An agent worse than the holder on the whole mode but ahead on a thin record of the turn's
        # own skill is most often just lucky (with many agents, one is): it needs twice the margin.
        # A real specialist, with a long record on the skill, still clears it.
        sd = math.hypot(c.sd, holder.sd)
        return 2.0 * sd if on_mode and on_mode[c.agent.id][0] < on_mode[holder.agent.id][0] else sd

    better = [c for c in eligible if beats(c, c.score - holder.score, on_skills_sd(c), holder)]
    return max(better, key=key) if better else holder


def _prior_is_silent(hb: Handbook, eligible: list[_Candidate]) -> bool:
    """Whether the handbook's prior rates every eligible agent alike, in every mode and skill."""
    first = hb.agents[eligible[0].agent.id].prior
    return all((p.mean, p.modes, p.skills) == (first.mean, first.modes, first.skills)
               for p in (hb.agents[c.agent.id].prior for c in eligible[1:]))


@dataclass(slots=True)
class _Candidate:
    agent: Agent
    mean: float
    sd: float
    cost: CostEstimate
    excluded: str | None
    usd: float = 0.0
    norm: float = 0.0
    score: float = 0.0
    probability: float = 0.0


class NoEligibleAgent(SkillchatError):
    """Every agent was excluded (context windows, failures): the turn cannot be routed."""


def _with_reason(d: RoutingDecision, hb: Handbook, greedy: str, note: str = "") -> RoutingDecision:
    """The decision with `best_expected` set and a reason that names what actually decided.

    Greedy picks name the best expected score and then competence honestly: "most competent"
    only when no eligible agent is more competent, otherwise the more competent agent and its
    price. "exploring" only when the draw took another agent than the best expected one with a
    different score (`RoutingDecision.explored`, which the app's chip uses too).
    """
    d = replace(d, best_expected=greedy)
    w, best = d.winner, d.best
    top_skill = max(d.skills, key=lambda s: s.weight)
    skill_name = hb.skills[top_skill.id].name
    eligible = [a for a in d.ranking if a.eligible]
    others = [a for a in eligible if a.agent_id != w.agent_id]
    tied = 1e-12

    def two(a: float, b: float) -> tuple[str, str]:
        # Two different numbers must not read "0.79 vs 0.79".
        digits = 2 if f"{a:.2f}" != f"{b:.2f}" else 3
        return f"{a:.{digits}f}", f"{b:.{digits}f}"

    def vs(a: float, b: float) -> str:
        return " vs ".join(two(a, b))

    def holds(kept: AgentScore, passed: AgentScore) -> str:
        # "Surer" only when it is: at lambda 0, where the prior says nothing, the dearest agent
        # holds the crown on what may be a thinner record than the one it passes over.
        return "is the surer bet" if kept.uncertainty <= passed.uncertainty else "keeps the turn until the evidence is clear"

    if d.policy == "pinned":
        reason = f"pinned by you ({w.name})"
    elif not others:
        reason = f"{w.name} is the only agent that can take this turn"
    elif d.explored:
        drawn = f"exploring (drawn with p={d.probability:.0%})"
        if w.score < best.score:
            reason = (f"{drawn}: {best.name} has the best expected score ({vs(best.score, w.score)}); "
                      f"trying {w.name} keeps its {skill_name} estimate honest")
        else:
            reason = (f"{drawn}: {best.name} {holds(best, w)}; {w.name}'s higher estimate at {skill_name} "
                      f"({vs(w.score, best.score)}) is within its uncertainty, and trying it tests that")
    else:
        top = max(eligible, key=lambda a: a.score)
        if top.score > w.score + tied:
            # Greedy routing passed over a higher but uncertain estimate on this turn's skills (it
            # trusts an agent's record, or the price where the prior says nothing, until the
            # evidence against it is clear): say so, not "best".
            reason = (f"{w.name} {holds(w, top)}: {top.name}'s estimate at {skill_name} is higher "
                      f"({vs(top.score, w.score)}) but not by more than its uncertainty")
        else:
            tie = next((a for a in others if a.score >= w.score - tied), None)
            reason = f"best expected score ({w.score:.2f}" + (f", tied with {tie.name})" if tie else ")")
            ablest = max(others, key=lambda a: a.competence)
            if w.competence >= ablest.competence - tied:
                mine, theirs = two(w.competence, ablest.competence)
                reason += f"; most competent at {skill_name} ({mine} vs {ablest.name} {theirs})"
                if all(w.cost_usd < a.cost_usd for a in others):
                    reason += " and cheapest"
            else:
                # More competent, yet no better a score than the winner's: only its price explains it.
                ratio = ablest.cost_usd / w.cost_usd if w.cost_usd > 0 else math.inf
                more = f"{ratio:.0f}x as much" if math.isfinite(ratio) and ratio >= 2 else "more"
                reason += (f": {ablest.name} is more competent at {skill_name} ({vs(ablest.competence, w.competence)}) "
                           f"but costs {more}; at lambda={d.lam:g} the saving wins")
    if not w.cost_known:
        reason += "; its price is unknown, so cost is a guess"
    if not d.confident:
        reason += "; no specific skill detected, using the general one"
    if note:
        reason = f"{note}: {reason}"
    return replace(d, reason=reason)
