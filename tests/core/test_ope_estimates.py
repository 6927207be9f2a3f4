"""Off-policy evaluation's arithmetic, worked by hand: the estimators on a few rows, the
"not worse" rule at its edges, the one-line summary, and which logged turns it may use."""

from __future__ import annotations

import dataclasses
import math

import pytest

from skillchat.core import ope
from skillchat.core.compare import slot_propensity
from skillchat.core.inference import profile_from_weights
from skillchat.core.learning import RatedTurn
from skillchat.core.ope import Comparison, Estimate, PolicyEstimate, _Row
from skillchat.core.router import Router


def test_a_mean_with_its_standard_error():
    assert math.isnan(ope._mean([]).value) and math.isnan(ope._mean([]).se)
    assert ope._mean([0.4]) == Estimate(0.4, math.inf)  # one turn: a value, no spread to tell
    e = ope._mean([1.0, 2.0, 3.0])
    assert e.value == pytest.approx(2.0)
    assert e.se == pytest.approx(math.sqrt(1.0 / 3.0))  # sample variance 1, over n = 3


def test_self_normalised_estimate_and_its_delta_method_error():
    e = ope._snips([(1.0, 1.0), (3.0, 0.0)])
    assert e.value == pytest.approx(0.25)
    assert e.se == pytest.approx(math.sqrt(0.75**2 + 0.75**2) / 4.0)
    for empty in ([], [(0.0, 1.0)]):  # no weight at all: nothing to normalise by
        assert math.isnan(ope._snips(empty).value)
    assert ope._snips([(2.0, 0.5)]) == Estimate(0.5, 0.0)  # one weighted turn is an estimate
    assert ope._snips([(0.5, 0.4)]) == Estimate(0.4, 0.0)  # however small its weight


def test_clipping_keeps_the_error_and_leaves_unknown_values_alone():
    assert ope._clip(Estimate(1.2, 0.1), 0.0, 1.0) == Estimate(1.0, 0.1)
    assert ope._clip(Estimate(-0.3, 0.1), 0.0, 1.0) == Estimate(0.0, 0.1)
    assert ope._clip(Estimate(0.5, 0.1), 0.0, 1.0) == Estimate(0.5, 0.1)
    nan = ope._clip(Estimate(math.nan, 0.1), 0.0, 1.0)
    assert math.isnan(nan.value)


def test_an_interval_is_196_standard_errors_each_side():
    e = Estimate(0.5, 0.1)
    assert e.low == pytest.approx(0.5 - 0.1959964) and e.high == pytest.approx(0.5 + 0.1959964)
    assert e.to_dict() == {"value": 0.5, "se": 0.1, "low": e.low, "high": e.high}


# Two logged turns: a (rated 1, $0.01, logged with p 0.5) and b (rated 0, no cost, p 0.25).
Q = {"a": 0.6, "b": 0.3}
QC = {"a": 0.02, "b": 0.001}
ROWS = [
    _Row(1.0, 0.01, 0.5, {"a": 0.8, "b": 0.2}, Q, QC, "a"),
    _Row(0.0, None, 0.25, {"a": 0.5, "b": 0.5}, Q, QC, "b"),
]


def test_the_estimators_on_two_turns_worked_by_hand():
    est, dr, dr_cost = ope._estimate(ROWS, None)
    # importance weights: 0.8 / 0.5 = 1.6 and 0.5 / 0.25 = 2
    assert est.ips.value == pytest.approx((1.6 * 1.0 + 2.0 * 0.0) / 2)
    assert est.ips.se == pytest.approx(0.8)
    assert est.snips.value == pytest.approx(1.6 / 3.6)
    # DR: the reward model's value under the policy, plus the weighted surprise of the logged turn
    assert dr == pytest.approx([0.8 * 0.6 + 0.2 * 0.3 + 1.6 * (1.0 - 0.6), 0.5 * 0.6 + 0.5 * 0.3 + 2.0 * (0.0 - 0.3)])
    assert est.dr.value == pytest.approx(sum(dr) / 2)
    # cost only where it was logged
    assert dr_cost[0] == pytest.approx(0.8 * 0.02 + 0.2 * 0.001 + 1.6 * (0.01 - 0.02))
    assert math.isnan(dr_cost[1])
    assert est.cost_dr == Estimate(pytest.approx(dr_cost[0]), math.inf)
    assert est.cost_snips.value == pytest.approx(0.01)
    assert est.ess == pytest.approx(3.6**2 / (1.6**2 + 2.0**2))
    assert est.n == 2
    # the policy's likeliest agent is the logged one on both turns (a tie goes to the later id, b)
    assert est.agreement == 1.0


def test_the_likeliest_agent_decides_agreement():
    rows = [_Row(1.0, None, 0.5, {"a": 0.3, "b": 0.7}, Q, QC, "a")]
    assert ope._estimate(rows, None)[0].agreement == 0.0


def test_an_agent_missing_from_the_policy_or_the_reward_model_counts_as_zero():
    # the logged agent left the handbook: the policy never picks it (weight 0) and the reward
    # model has no estimate for it
    rows = [_Row(1.0, 0.01, 0.5, {"b": 1.0}, {"b": 0.3}, {"b": 0.001}, "a")]
    est, dr, dr_cost = ope._estimate(rows, None)
    assert est.ips.value == 0.0 and est.ess == 0.0
    assert dr == [pytest.approx(0.3)] and dr_cost == [pytest.approx(0.001)]
    # the reward model knows no agent at all: DR falls back to the weighted rating alone
    bare = [_Row(1.0, 0.01, 0.5, {"a": 0.5}, {}, {}, "a")]
    est, dr, dr_cost = ope._estimate(bare, None)
    assert dr == [pytest.approx(1.0)] and dr_cost == [pytest.approx(0.01)]


def test_the_effective_sample_of_small_weights():
    rows = [_Row(1.0, None, 1.0, {"a": 0.5, "b": 0.5}, Q, QC, "a")]  # one turn, weight 0.5
    assert ope._estimate(rows, None)[0].ess == pytest.approx(1.0)


def test_weights_are_capped_at_max_weight():
    est, _, _ = ope._estimate(ROWS, 1.5)
    assert est.ips.value == pytest.approx(1.5 / 2)
    assert est.ess == pytest.approx(2.0)  # equal weights: every turn counts fully


def test_dr_is_clipped_into_what_it_estimates():
    high = [_Row(1.0, 0.01, 0.1, {"a": 1.0}, {"a": 0.5}, {"a": 0.05}, "a")]  # 0.5 + 10 * 0.5
    est, dr, dr_cost = ope._estimate(high, None)
    assert dr == [pytest.approx(5.5)] and est.dr.value == 1.0
    assert dr_cost == [pytest.approx(0.05 + 10 * (0.01 - 0.05))] and est.cost_dr.value == 0.0


def test_no_rows_give_no_estimate():
    est, dr, dr_cost = ope._estimate([], None)
    assert est.n == 0 and est.ess == 0.0 and dr == [] and dr_cost == []
    assert math.isnan(est.dr.value) and math.isnan(est.agreement)


def _policy(n: int = 100, ess: float = 50.0, dr: float = 0.7, cost: float = 0.002) -> PolicyEstimate:
    e = Estimate(dr, 0.01)
    return PolicyEstimate(e, e, e, Estimate(cost, 0.0), Estimate(cost, 0.0), ess, n, 0.5)


def _comparison(delta: Estimate, *, ess: float = 50.0, n: int = 100, cost: float = 0.002) -> Comparison:
    return Comparison(_policy(), _policy(n=n, ess=ess, dr=0.7 + delta.value, cost=cost), delta, Estimate(0.0, 0.0), 120)


def test_not_worse_at_its_edges():
    z = 0.1959964  # Z95 * se 0.1
    assert _comparison(Estimate(-0.01, 0.01 / 1.959964)).not_worse()  # exactly -margin, high exactly 0
    assert not _comparison(Estimate(-0.0101, 1.0)).not_worse()  # beyond the margin
    assert not _comparison(Estimate(-0.005, 0.001)).not_worse()  # within the margin but credibly worse
    assert _comparison(Estimate(-0.005, z / 1.959964)).not_worse()
    assert _comparison(Estimate(0.0, 0.1), ess=30.0).not_worse()  # exactly the effective sample needed
    assert not _comparison(Estimate(0.0, 0.1), ess=29.9).not_worse()
    assert _comparison(Estimate(0.0, 0.1), n=0).not_worse() is False
    assert _comparison(Estimate(-0.02, 0.1)).not_worse(margin=0.02)
    assert not _comparison(Estimate(0.0, 0.1), ess=40.0).not_worse(min_ess=41.0)


def test_the_summary_line():
    c = _comparison(Estimate(0.05, 0.01))
    assert c.summary == (
        "satisfaction 0.700 -> 0.750 (+0.050, 95% CI +0.030 to +0.070); cost per turn $0.00200 -> $0.00200; "
        "doubly robust on 100 logged turns, effective sample 50, greedy routing at lambda 0.1")
    assert "no interval" in _comparison(Estimate(0.05, math.inf)).summary
    no_cost = Comparison(_policy(), _policy(), Estimate(0.0, 0.01), Estimate(math.nan, math.nan), 120)
    assert "cost per turn" not in no_cost.summary
    assert _comparison(Estimate(0.0, 0.1), n=0).summary.startswith("no logged policy turns")


def test_a_comparison_to_dict_names_every_part():
    c = _comparison(Estimate(0.05, 0.01))
    d = c.to_dict()
    assert d["delta"] == c.delta.to_dict() and d["n_logged"] == 120 and d["policy"] == "greedy" and d["lam"] == 0.1
    assert d["candidate"]["ess"] == 50.0 and d["candidate"]["dr"]["value"] == pytest.approx(0.75)
    assert set(d["current"]) == {"ips", "snips", "dr", "cost_snips", "cost_dr", "ess", "n", "agreement"}


def turn(tid: str, *, policy: str = "thompson", propensity: float = 0.5, pair: str = "", tokens: int | None = 10) -> RatedTurn:
    return RatedTurn(tid, "a", "chat", {"chat.general": 1.0}, 1.0, propensity, policy, text="hello there",
                     prompt_tokens=tokens, pair=pair)


def test_which_turns_off_policy_evaluation_may_use():
    assert ope.usable(turn("t")) is None
    assert ope.usable(turn("t", policy="pinned")) == "pinned"
    assert ope.usable(turn("t", policy="fallback")) == "fallback"
    assert ope.usable(turn("t", propensity=0.0)) == "no propensity"
    assert ope.usable(turn("t", propensity=math.nan)) == "no propensity"
    assert ope.logged_propensity(turn("t", propensity=0.4)) == 0.4
    assert ope.logged_propensity(turn("t", policy="compare", propensity=0.4)) == slot_propensity(0.4)


def test_half_a_comparison_is_found_by_its_pair():
    whole = [turn("x1", policy="compare", pair="p"), turn("x2", policy="compare", pair="p")]
    half = [turn("y1", policy="compare", pair="q")]
    assert ope.half_pairs(whole + half + [turn("z")]) == {"y1"}
    # an unpaired compare row is its own pair, so it is always half of one
    assert ope.half_pairs([turn("w", policy="compare")]) == {"w"}
    # a pinned partner does not count
    assert ope.half_pairs([turn("v1", policy="compare", pair="r"), turn("v2", policy="pinned", pair="r")]) == {"v1"}


def test_prompt_tokens_come_from_the_log_or_are_counted():
    assert ope._tokens(turn("t", tokens=42)) == 42
    assert ope._tokens(turn("t", tokens=1)) == 1
    counted = ope._tokens(turn("t", tokens=None))
    assert counted > 0 and ope._tokens(turn("t", tokens=0)) == counted


def rated(tid: str, rating_id: int, score: float = 1.0, *, agent: str = "big", policy: str = "thompson",
          pair: str = "") -> RatedTurn:
    return RatedTurn(tid, agent, "code", {"code.debugging": 1.0}, score, 1 / 3, policy, text="fix this bug",
                     prompt_tokens=100, cost_usd=0.01, rating_id=rating_id, pair=pair)


def test_compare_uses_each_turns_latest_rating(tiny):
    # t1 was rated up, then down: only the down counts (a tie in rating id goes to the later one)
    log = [rated("t1", 1, 1.0), rated("t2", 2, 1.0), rated("t1", 3, 0.0), rated("t2", 2, 0.0)]
    c = ope.compare(tiny, tiny, log, lam=0.0, folds=1)
    assert c.n_logged == 2 and c.candidate.n == 2
    assert c.candidate.snips.value == 0.0


def test_compare_keeps_the_newest_turns_and_says_what_it_left_out(tiny):
    log = [rated(f"t{i}", i) for i in range(1, 6)] + [rated("p", 6, policy="pinned")]
    c = ope.compare(tiny, tiny, log, lam=0.0, max_turns=3)
    assert c.skipped == {"pinned": 1, "older than the newest 3": 2}
    assert c.candidate.n == 3 and c.n_logged == 6
    assert ope.compare(tiny, tiny, log, lam=0.0, max_turns=5).skipped == {"pinned": 1}


def test_a_comparison_parted_by_the_cut_is_left_out_whole(tiny):
    log = [rated("x1", 1, policy="compare", pair="p"), rated("x2", 2, agent="mid", policy="compare", pair="p"),
           rated("t3", 3), rated("t4", 4)]
    c = ope.compare(tiny, tiny, log, lam=0.0, max_turns=3)
    assert c.skipped == {"older than the newest 3": 1, "half a comparison": 1}
    assert c.candidate.n == 2
    assert ope.compare(tiny, tiny, log, lam=0.0).candidate.n == 4


def test_compare_reports_progress_and_stops_when_cancelled(tiny):
    from skillchat.core.relearn import RelearnCancelled

    log = [rated(f"t{i}", i) for i in range(1, 4)]
    seen: list[tuple[str, int, int]] = []
    ope.compare(tiny, tiny, log, lam=0.0, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert seen[0] == ("evaluate", 0, 3) and seen[-1] == ("evaluate", 3, 3)

    class Set:
        def is_set(self) -> bool:
            return True

    with pytest.raises(RelearnCancelled):
        ope.compare(tiny, tiny, log, lam=0.0, cancel=Set())


def narrow(hb, window: int = 10):  # type: ignore[no-untyped-def]
    """A copy of `hb` whose agents cannot hold a 100-token conversation."""
    out = hb.copy()
    out.agents = {a: dataclasses.replace(agent, context_window=window) for a, agent in out.agents.items()}
    return out


def test_evaluate_uses_its_reward_model_or_the_handbook_itself(tiny):
    # Logged on mid; the greedy policy takes big, so DR is the reward model's estimate for big.
    log = [rated(f"t{i}", i, agent="mid") for i in range(1, 9)] + [rated("p", 9, policy="pinned")]
    big = Router(tiny).decide(profile_from_weights(tiny, {"code.debugging": 1.0}), 100, lam=0.0, policy="greedy")
    assert big.chosen == "big"
    own = ope.evaluate(tiny, log, lam=0.0)
    assert own.n == 8  # the pinned turn is no policy decision
    assert own.ips.value == 0.0 and own.dr.value == pytest.approx(big.ranking[0].competence)
    assert own.dr == ope.evaluate(tiny, log, lam=0.0, reward_model=tiny).dr
    sure = tiny.copy()
    sure.evidence.add("big", "code.debugging", 40.0, 0.0)
    assert ope.evaluate(tiny, log, lam=0.0, reward_model=sure).dr.value > own.dr.value + 0.1
    # a reward model that can route none of the turns has no estimates to give
    assert ope.evaluate(tiny, log, lam=0.0, reward_model=narrow(tiny)).dr.value == 0.0


def test_a_turn_no_agent_can_take_is_left_out_and_counted(tiny):
    log = [rated(f"t{i}", i) for i in range(1, 5)]
    c = ope.compare(narrow(tiny), tiny, log, lam=0.0)  # only the current handbook cannot route them
    assert c.skipped == {"no eligible agent": 4} and c.candidate.n == 0
    assert ope.evaluate(narrow(tiny), log, lam=0.0).n == 0


def test_the_reward_model_is_cross_fitted_on_the_other_folds(tiny, monkeypatch):
    from skillchat.core import relearn as relearn_mod

    trained: list[tuple[list[str], bool]] = []
    real = relearn_mod.relearn

    def spy(base, turns, **kw):  # type: ignore[no-untyped-def]
        trained.append((sorted(t.turn_id for t in turns), kw.get("evolve", True)))
        return real(base, turns, **kw)

    monkeypatch.setattr(relearn_mod, "relearn", spy)
    log = [rated(f"t{i}", i) for i in range(1, 5)] + [rated("p", 5, policy="pinned")]
    ope.compare(tiny, tiny, log, lam=0.0, folds=2)
    # turns alternate between the folds; each model learns from the other fold and every unused turn
    assert trained == [(["p", "t2", "t4"], False), (["p", "t1", "t3"], False)]
    trained.clear()
    ope.compare(tiny, tiny, log, lam=0.0, folds=1)
    assert trained == [(["p", "t1", "t2", "t3", "t4"], False)]
    trained.clear()
    ope.compare(tiny, tiny, log[:1], lam=0.0, folds=2)  # more folds than turns: one
    assert trained == [(["t1"], False)]


def test_progress_is_reported_every_256_turns(tiny):
    log = [rated(f"t{i}", i) for i in range(1, 301)]
    seen: list[tuple[str, int, int]] = []
    ope.compare(tiny, tiny, log, lam=0.0, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert seen == [("evaluate", 0, 300), ("evaluate", 256, 300), ("evaluate", 300, 300)]


def test_the_cost_difference_is_paired_and_ignores_turns_without_a_cost(tiny):
    sure = tiny.copy()
    sure.evidence.add("small", "code.debugging", 40.0, 0.0)  # the candidate sends debugging to small
    log = [dataclasses.replace(rated(f"t{i}", i), cost_usd=0.02) for i in range(1, 7)]
    log.append(dataclasses.replace(rated("n", 7), cost_usd=None))
    c = ope.compare(tiny, sure, log, lam=0.0)
    assert c.candidate.n == 7
    assert math.isfinite(c.delta_cost.value)
    assert c.delta_cost.value == pytest.approx(c.candidate.cost_dr.value - c.current.cost_dr.value)
    assert c.delta_cost.value < 0  # small is cheaper than big
