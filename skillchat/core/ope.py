"""Off-policy evaluation: how would another handbook have done on the turns you already rated?

Every routed turn logs the probability with which the policy chose its agent (the propensity).
That makes the user's own history an unbiased test set for any other routing policy:

* IPS: mean of w_i * r_i, with w_i = pi_new(a_i | x_i) / mu(a_i | x_i);
* SNIPS (self-normalised): sum(w r) / sum(w), slightly biased, much lower variance;
* DR (doubly robust): mean of sum_a pi_new(a|x) q(x, a) + w_i * (r_i - q(x_i, a_i)), where the
  reward model q is a handbook's posterior competence (and its cost estimate for USD).
  Unbiased when either the propensities or q are right; q is cross-fitted (learned on the other
  folds of the log) so that it does not grade its own homework.

x_i is the logged skill profile, mapped onto the evaluated handbook's taxonomy (merged, split and
discovered skills, see core/evolution.Retagger); pi_new comes from `Router.decide` on it, greedy or
Thompson. Turns on a pinned model, or answered by a fallback agent after a failure, were not policy
decisions and are left out, as are turns with a non-positive propensity. The two answers of a
side-by-side comparison count as two rows, weighted by core/compare.slot_propensity, and only as a
complete pair: half of one (the other answer unrated) would bias the estimate.

Intervals are normal approximations (mean +- 1.96 standard errors); the effective sample size
(sum w)^2 / sum w^2 says how many logged turns the estimate is really worth. `compare` pairs the
two policies turn by turn, so the interval of the difference is much narrower than the two
intervals side by side.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from skillchat.core.compare import POLICY as COMPARE
from skillchat.core.compare import slot_propensity
from skillchat.core.handbook import Handbook
from skillchat.core.inference import profile_from_weights
from skillchat.core.learning import RatedTurn
from skillchat.core.ports import HeuristicCounter, Message, PriceBook
from skillchat.core.router import DEFAULT_LAMBDA, NoEligibleAgent, Router

Z95 = 1.959964
NON_POLICY = frozenset({"pinned", "fallback"})



def signed(x: float, digits: int = 3) -> str:
    """x with its sign, and never "-0.000": a change that rounds to nothing has no direction."""
    r = round(x, digits)
    return f"{r if r != 0 else 0.0:+.{digits}f}"

@dataclass(frozen=True, slots=True)
class Estimate:
    value: float
    se: float

    @property
    def low(self) -> float:
        return self.value - Z95 * self.se

    @property
    def high(self) -> float:
        return self.value + Z95 * self.se

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "se": self.se, "low": self.low, "high": self.high}


@dataclass(frozen=True, slots=True)
class PolicyEstimate:
    """Estimated mean satisfaction (rating in [0, 1]) and USD per turn of one policy."""

    ips: Estimate
    snips: Estimate
    dr: Estimate
    cost_snips: Estimate
    cost_dr: Estimate
    ess: float  # effective sample size of the importance weights
    n: int  # turns the estimate used
    agreement: float  # share of turns where the policy's most likely choice is the logged agent

    def to_dict(self) -> dict[str, Any]:
        return {
            "ips": self.ips.to_dict(), "snips": self.snips.to_dict(), "dr": self.dr.to_dict(),
            "cost_snips": self.cost_snips.to_dict(), "cost_dr": self.cost_dr.to_dict(),
            "ess": self.ess, "n": self.n, "agreement": self.agreement,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """A candidate handbook against the current one, on the same logged turns."""

    current: PolicyEstimate
    candidate: PolicyEstimate
    delta: Estimate  # candidate - current, satisfaction, doubly robust, paired
    delta_cost: Estimate  # candidate - current, USD per turn, doubly robust, paired
    n_logged: int
    skipped: dict[str, int] = field(default_factory=dict)
    policy: str = "greedy"
    lam: float = DEFAULT_LAMBDA

    def not_worse(self, margin: float = 0.01, min_ess: float = 30.0) -> bool:
        """Not credibly worse: the point estimate is within `margin` and the interval reaches 0.

        Needs an effective sample of at least `min_ess` turns for the candidate; below that the
        log cannot tell, and the answer is False.
        """
        if self.candidate.n == 0 or self.candidate.ess < min_ess:
            return False
        return self.delta.value >= -margin and self.delta.high >= 0.0

    @property
    def summary(self) -> str:
        """One line for people: the estimated change in satisfaction and cost, with its interval."""
        if self.candidate.n == 0:
            return "no logged policy turns to evaluate on (pinned or fallback turns do not count)"
        d, dc = self.delta, self.delta_cost
        ci = f"95% CI {signed(d.low)} to {signed(d.high)}" if math.isfinite(d.low) and math.isfinite(d.high) else "no interval"
        text = (f"satisfaction {self.current.dr.value:.3f} -> {self.candidate.dr.value:.3f} "
                f"({signed(d.value)}, {ci})")
        if math.isfinite(dc.value):
            text += (f"; cost per turn ${self.current.cost_dr.value:.5f} -> ${self.candidate.cost_dr.value:.5f}")
        text += (f"; doubly robust on {self.candidate.n:,} logged turns, effective sample "
                 f"{self.candidate.ess:,.0f}, {self.policy} routing at lambda {self.lam:g}")
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current.to_dict(), "candidate": self.candidate.to_dict(),
            "delta": self.delta.to_dict(), "delta_cost": self.delta_cost.to_dict(),
            "n_logged": self.n_logged, "skipped": dict(self.skipped), "policy": self.policy, "lam": self.lam,
        }


# --- per-turn contributions ----------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    r: float  # rating
    c: float | None  # USD of the logged turn
    mu: float  # logged propensity
    probs: dict[str, float]  # target policy's probabilities
    q: dict[str, float]  # reward model: expected rating per agent
    qc: dict[str, float]  # reward model: expected USD per agent
    agent: str


class _Policy:
    """Action probabilities of one handbook's router on logged turns (retagged onto its skills)."""

    def __init__(self, hb: Handbook, *, lam: float, policy: str, prices: PriceBook | None) -> None:
        from skillchat.core.evolution import Retagger

        self.hb = hb
        self.router = Router(hb, prices=prices)
        self.retag = Retagger(hb)
        self.lam, self.policy = lam, policy
        self._rng = random.Random(0)  # the draw is not used: only the probabilities are

    def decide(self, t: RatedTurn, tokens: int) -> Any:
        w = dict(t.skills)
        if self.retag.needs(w):
            w = self.retag(t, w)
        prof = profile_from_weights(self.hb, w)
        return self.router.decide(prof, tokens, lam=self.lam, policy=self.policy, rng=self._rng)

    def probs(self, t: RatedTurn, tokens: int) -> dict[str, float] | None:
        try:
            d = self.decide(t, tokens)
        except NoEligibleAgent:
            return None
        return {a.agent_id: a.probability for a in d.ranking}


def _tokens(t: RatedTurn) -> int:
    if t.prompt_tokens is not None and t.prompt_tokens > 0:
        return int(t.prompt_tokens)
    return HeuristicCounter().count([Message("user", t.text)])


def usable(t: RatedTurn) -> str | None:
    """Why a logged turn cannot be used for off-policy evaluation, or None."""
    if t.policy in NON_POLICY:
        return t.policy
    if not (t.propensity > 0.0):
        return "no propensity"
    return None


def logged_propensity(t: RatedTurn) -> float:
    """The propensity a usable turn's importance weight divides by."""
    return slot_propensity(t.propensity) if t.policy == COMPARE else t.propensity


def half_pairs(turns: Sequence[RatedTurn]) -> set[str]:
    """Turn ids of compared answers whose partner is not among `turns` (or not usable)."""
    seen: dict[str, list[str]] = {}
    for t in turns:
        if t.policy == COMPARE and usable(t) is None:
            seen.setdefault(t.pair or t.turn_id, []).append(t.turn_id)
    return {tid for ids in seen.values() if len(ids) != 2 for tid in ids}


def _estimate(rows: Sequence[_Row], max_weight: float | None) -> tuple[PolicyEstimate, list[float], list[float]]:
    """Estimates plus the per-turn DR contributions (satisfaction, cost) for pairing."""
    n = len(rows)
    if n == 0:
        z = Estimate(float("nan"), float("nan"))
        return PolicyEstimate(z, z, z, z, z, 0.0, 0, float("nan")), [], []
    ws, ips, dr, dr_c = [], [], [], []
    agree = 0
    cost_rows: list[tuple[float, float]] = []
    for row in rows:
        p = row.probs.get(row.agent, 0.0)
        w = p / row.mu
        if max_weight is not None:
            w = min(w, max_weight)
        ws.append(w)
        ips.append(w * row.r)
        direct = sum(pa * row.q.get(a, 0.0) for a, pa in row.probs.items())
        dr.append(direct + w * (row.r - row.q.get(row.agent, 0.0)))
        if row.probs and max(row.probs.items(), key=lambda kv: (kv[1], kv[0]))[0] == row.agent:
            agree += 1
        if row.c is not None:
            direct_c = sum(pa * row.qc.get(a, 0.0) for a, pa in row.probs.items())
            dr_c.append(direct_c + w * (row.c - row.qc.get(row.agent, 0.0)))
            cost_rows.append((w, row.c))
        else:
            dr_c.append(float("nan"))
    sw = sum(ws)
    sw2 = sum(w * w for w in ws)
    ess = sw * sw / sw2 if sw2 > 0 else 0.0
    snips = _snips(list(zip(ws, (row.r for row in rows), strict=True)))
    cost_dr_vals = [x for x in dr_c if not math.isnan(x)]
    est = PolicyEstimate(
        ips=_mean(ips),
        snips=snips,
        # DR can land outside what it estimates on a few turns (1.008 satisfaction, a negative
        # cost); the true value is in range, so the clipped estimate is never further from it.
        dr=_clip(_mean(dr), 0.0, 1.0),
        cost_snips=_snips(cost_rows),
        cost_dr=_clip(_mean(cost_dr_vals), 0.0, math.inf),
        ess=ess,
        n=n,
        agreement=agree / n,
    )
    return est, dr, dr_c


def _clip(e: Estimate, lo: float, hi: float) -> Estimate:
    return Estimate(min(max(e.value, lo), hi), e.se) if math.isfinite(e.value) else e


def _mean(xs: Sequence[float]) -> Estimate:
    n = len(xs)
    if n == 0:
        return Estimate(float("nan"), float("nan"))
    m = sum(xs) / n
    if n == 1:
        return Estimate(m, float("inf"))
    var = sum((x - m) ** 2 for x in xs) / (n - 1)
    return Estimate(m, math.sqrt(var / n))


def _snips(pairs: Sequence[tuple[float, float]]) -> Estimate:
    n = len(pairs)
    sw = sum(w for w, _ in pairs)
    if n == 0 or sw <= 0:
        return Estimate(float("nan"), float("nan"))
    v = sum(w * r for w, r in pairs) / sw
    # Delta method: var(sum w (r - v)) / (sum w)^2.
    var = sum((w * (r - v)) ** 2 for w, r in pairs)
    return Estimate(v, math.sqrt(var) / sw)


# --- public API ----------------------------------------------------------------------------------


def evaluate(
    hb: Handbook,
    turns: Sequence[RatedTurn],
    *,
    lam: float = DEFAULT_LAMBDA,
    policy: str = "greedy",
    reward_model: Handbook | None = None,
    prices: PriceBook | None = None,
    max_weight: float | None = None,
) -> PolicyEstimate:
    """The value of routing with `hb` on the logged turns (reward model: `reward_model` or `hb`)."""
    target = _Policy(hb, lam=lam, policy=policy, prices=prices)
    model = _Policy(reward_model or hb, lam=lam, policy="greedy", prices=prices)
    rows = []
    halves = half_pairs(turns)
    for t in turns:
        if usable(t) is not None or t.turn_id in halves:
            continue
        tokens = _tokens(t)
        probs = target.probs(t, tokens)
        if probs is None:
            continue
        q, qc = _reward(model, t, tokens)
        rows.append(_Row(t.score, t.cost_usd, logged_propensity(t), probs, q, qc, t.agent_id))
    return _estimate(rows, max_weight)[0]


def _reward(model: _Policy, t: RatedTurn, tokens: int) -> tuple[dict[str, float], dict[str, float]]:
    try:
        d = model.decide(t, tokens)
    except NoEligibleAgent:
        return {}, {}
    return {a.agent_id: a.competence for a in d.ranking}, {a.agent_id: a.cost_usd for a in d.ranking}


def compare(
    current: Handbook,
    candidate: Handbook,
    turns: Sequence[RatedTurn],
    *,
    lam: float = DEFAULT_LAMBDA,
    policy: str = "greedy",
    prices: PriceBook | None = None,
    folds: int = 2,
    max_turns: int | None = 5000,
    max_weight: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    cancel: Any = None,
) -> Comparison:
    """Both handbooks' policies on the same logged turns, with a paired doubly robust difference.

    The reward model is the candidate's taxonomy with evidence relearned on the *other* folds of
    the log (cross-fitting), the same for both policies, so it favours neither. Only the newest
    `max_turns` usable turns are evaluated (the routing cost is a few Router decisions per turn).
    """
    from skillchat.core.relearn import RelearnCancelled, relearn

    latest: dict[str, RatedTurn] = {}
    for t in turns:
        old = latest.get(t.turn_id)
        if old is None or t.rating_id >= old.rating_id:
            latest[t.turn_id] = t
    log = sorted(latest.values(), key=lambda t: (t.rating_id, t.turn_id))
    skipped: dict[str, int] = {}
    use: list[RatedTurn] = []
    for t in log:
        why = usable(t)
        if why is None:
            use.append(t)
        else:
            skipped[why] = skipped.get(why, 0) + 1
    if max_turns is not None and len(use) > max_turns:
        skipped[f"older than the newest {max_turns:,}"] = len(use) - max_turns
        use = use[-max_turns:]
    halves = half_pairs(use)  # after the cut, which may part a pair
    if halves:
        skipped["half a comparison"] = len(halves)
        use = [t for t in use if t.turn_id not in halves]

    folds = max(1, min(folds, len(use)))
    fold_of = {t.turn_id: (k % folds) for k, t in enumerate(use)}
    models = []
    for f in range(folds):
        train = [t for t in log if fold_of.get(t.turn_id, -1) != f] if folds > 1 else log
        models.append(_Policy(relearn(candidate, train, evolve=False).handbook, lam=lam, policy="greedy", prices=prices))

    pol_cur = _Policy(current, lam=lam, policy=policy, prices=prices)
    pol_new = _Policy(candidate, lam=lam, policy=policy, prices=prices)
    rows_cur: list[_Row] = []
    rows_new: list[_Row] = []
    total = len(use)
    for k, t in enumerate(use):
        if k % 256 == 0:
            if cancel is not None and cancel.is_set():
                raise RelearnCancelled("evaluation cancelled")
            if progress is not None:
                progress("evaluate", k, total)
        tokens = _tokens(t)
        p_cur = pol_cur.probs(t, tokens)
        p_new = pol_new.probs(t, tokens)
        if p_cur is None or p_new is None:
            skipped["no eligible agent"] = skipped.get("no eligible agent", 0) + 1
            continue
        q, qc = _reward(models[fold_of[t.turn_id]], t, tokens)
        mu = logged_propensity(t)
        rows_cur.append(_Row(t.score, t.cost_usd, mu, p_cur, q, qc, t.agent_id))
        rows_new.append(_Row(t.score, t.cost_usd, mu, p_new, q, qc, t.agent_id))
    est_cur, dr_cur, c_cur = _estimate(rows_cur, max_weight)
    est_new, dr_new, c_new = _estimate(rows_new, max_weight)
    delta = _mean([b - a for a, b in zip(dr_cur, dr_new, strict=True)])
    delta_cost = _mean([b - a for a, b in zip(c_cur, c_new, strict=True) if not (math.isnan(a) or math.isnan(b))])
    if progress is not None:
        progress("evaluate", total, total)
    return Comparison(est_cur, est_new, delta, delta_cost, len(log), skipped, policy, lam)
