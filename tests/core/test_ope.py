"""Off-policy evaluation recovers known policy values from logged propensities."""

from __future__ import annotations

import random

import pytest
from synthetic_log import draw, make_log

from skillchat.core.inference import profile_from_weights
from skillchat.core.learning import RatedTurn
from skillchat.core.ope import compare, evaluate
from skillchat.core.relearn import relearn
from skillchat.core.router import Router

TRUE = {  # true satisfaction of each agent on each skill
    "big": {"code.debugging": 0.6, "math.calculus": 0.9, "chat.general": 0.5},
    "mid": {"code.debugging": 0.85, "math.calculus": 0.5, "chat.general": 0.6},
    "small": {"code.debugging": 0.3, "math.calculus": 0.2, "chat.general": 0.8},
}
SKILLS = list(TRUE["big"])


def logged(hb, n, seed, logger=None, lam=0.0):  # type: ignore[no-untyped-def]
    """Turns chosen uniformly at random, or by `logger`'s Thompson probabilities (logged)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        s = SKILLS[i % 3]
        if logger is None:
            probs = {a: 1 / 3 for a in TRUE}
        else:
            d = logger.decide(profile_from_weights(hb, {s: 1.0}), 100, lam=lam, policy="thompson", rng=rng)
            probs = {a.agent_id: a.probability for a in d.ranking}
        a = draw(rng, probs)
        y = 1.0 if rng.random() < TRUE[a][s] else 0.0
        out.append(RatedTurn(f"t{i}", a, hb.skills[s].mode, {s: 1.0}, y, probs[a], "thompson", text="x",
                             prompt_tokens=100, cost_usd={"big": 0.01, "mid": 0.002, "small": 0.0}[a],
                             rating_id=i + 1, probabilities=probs))
    return out


def knowing(tiny, strength=40.0):  # type: ignore[no-untyped-def]
    """A handbook whose evidence matches the truth: greedy picks the best agent per skill."""
    hb = tiny.copy()
    for a, row in TRUE.items():
        for s, p in row.items():
            hb.evidence.add(a, s, strength * p, strength * (1 - p))
    return hb


def true_value(hb, policy, lam=0.0):  # type: ignore[no-untyped-def]
    r = Router(hb)
    v = 0.0
    for s in SKILLS:
        d = r.decide(profile_from_weights(hb, {s: 1.0}), 100, lam=lam, policy=policy)
        v += sum(a.probability * TRUE[a.agent_id][s] for a in d.ranking) / len(SKILLS)
    return v


def test_greedy_policy_value_is_recovered_from_uniform_logs(tiny):
    target = knowing(tiny)
    truth = true_value(target, "greedy")
    assert truth == pytest.approx(0.85)
    e = evaluate(target, logged(tiny, 6000, seed=1), lam=0.0, policy="greedy", reward_model=tiny)
    for est in (e.ips, e.snips, e.dr):
        assert abs(est.value - truth) < max(0.03, 3 * est.se)
        assert est.low < truth < est.high or abs(est.value - truth) < 0.02
    assert e.ess == pytest.approx(2000, rel=0.1)  # a third of the turns match a deterministic policy
    assert e.n == 6000


def test_thompson_policy_value_is_recovered_from_thompson_logs(tiny):
    logger = Router(tiny)  # the prior-only handbook logged the turns with its own probabilities
    target = knowing(tiny, strength=10.0)
    truth = true_value(target, "thompson")
    e = evaluate(target, logged(tiny, 6000, seed=2, logger=logger), lam=0.0, policy="thompson", reward_model=tiny)
    for est in (e.snips, e.dr):
        assert abs(est.value - truth) < max(0.03, 3 * est.se), (est, truth)


def test_doubly_robust_survives_a_wrong_reward_model(tiny):
    wrong = tiny.copy()
    for a in TRUE:  # says every agent is terrible everywhere
        for s in SKILLS:
            wrong.evidence.add(a, s, 0.0, 500.0)
    target = knowing(tiny)
    e = evaluate(target, logged(tiny, 6000, seed=3), lam=0.0, policy="greedy", reward_model=wrong)
    assert abs(e.dr.value - 0.85) < max(0.03, 3 * e.dr.se)


def test_compare_estimates_the_difference_with_a_paired_interval(tiny):
    current, candidate = tiny, knowing(tiny)
    log = logged(tiny, 6000, seed=4)
    c = compare(current, candidate, log, lam=0.0, policy="greedy")
    truth = true_value(candidate, "greedy") - true_value(current, "greedy")
    assert truth > 0.1
    assert abs(c.delta.value - truth) < max(0.03, 3 * c.delta.se)
    assert c.delta.low > 0 and c.not_worse()
    # paired: the difference is known more precisely than the two values side by side
    assert c.delta.se < c.current.dr.se + c.candidate.dr.se
    assert c.candidate.cost_dr.value == pytest.approx(
        sum({"code.debugging": 0.002, "math.calculus": 0.01, "chat.general": 0.0}.values()) / 3, abs=0.002)
    worse = compare(candidate, current, log, lam=0.0, policy="greedy")
    assert not worse.not_worse()


def test_non_policy_turns_are_left_out(tiny):
    log = logged(tiny, 300, seed=5)
    extra = [RatedTurn("p1", "big", "code", {"code.debugging": 1.0}, 1.0, 1.0, "pinned", rating_id=10_001),
             RatedTurn("f1", "mid", "code", {"code.debugging": 1.0}, 0.0, 1.0, "fallback", rating_id=10_002),
             RatedTurn("z1", "mid", "code", {"code.debugging": 1.0}, 0.0, 0.0, "thompson", rating_id=10_003)]
    c = compare(tiny, knowing(tiny), log + extra, lam=0.0)
    assert c.skipped == {"pinned": 1, "fallback": 1, "no propensity": 1}
    assert c.candidate.n == 300 and c.n_logged == 303


def test_too_little_data_is_never_called_not_worse(tiny):
    c = compare(tiny, knowing(tiny), logged(tiny, 12, seed=6), lam=0.0)
    assert c.candidate.ess < 30 and not c.not_worse()
    empty = compare(tiny, tiny, [], lam=0.0)
    assert empty.candidate.n == 0 and not empty.not_worse()


def test_a_split_handbook_is_evaluated_on_turns_logged_under_the_parent(tiny):
    rates = {"keyerror": {"big": 0.5, "mid": 0.95, "small": 0.3}, "segfault": {"big": 0.9, "mid": 0.15, "small": 0.3}}
    log = make_log(600, rates, seed=7)
    new = relearn(tiny, log).handbook
    assert any(s.parent == "code.debugging" for s in new.skills.values())
    c = compare(relearn(tiny, log, evolve=False).handbook, new, log, lam=0.0, policy="greedy")
    # Knowing which half a turn is in lets routing pick mid or big: clearly better.
    assert c.delta.value > 0.1 and c.delta.low > 0


def test_signed_changes_never_read_minus_zero():
    from skillchat.core.ope import signed

    assert [signed(x) for x in (-0.0001, -0.0, 0.0004, -0.0006, 0.01234)] == ["+0.000", "+0.000", "+0.000", "-0.001", "+0.012"]
    assert signed(-0.04, 1) == "+0.0" and signed(-0.06, 1) == "-0.1"


def test_doubly_robust_estimates_stay_in_the_range_of_what_they_estimate():
    from skillchat.core.ope import _estimate, _Row

    # A reward model that is far off on a rare, rewarded choice pushes DR above 1 and the cost
    # correction below 0; the true satisfaction and cost are in [0, 1] and >= 0.
    rows = [_Row(r=1.0, c=0.0, mu=0.1, probs={"a": 1.0}, q={"a": 0.9}, qc={"a": 0.01}, agent="a")] + [
        _Row(r=1.0, c=0.0, mu=1.0, probs={"a": 1.0}, q={"a": 0.95}, qc={"a": 0.001}, agent="a")
    ] * 3
    est, dr, dr_c = _estimate(rows, None)
    assert max(dr) > 1.0 and min(dr_c) < 0.0  # the raw contributions do leave the range
    assert est.dr.value == 1.0
    assert est.cost_dr.value == 0.0
