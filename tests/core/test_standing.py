import dataclasses
import math

import pytest
from ratings import rate  # tests/core/ratings.py

from skillchat.core import standing as standing_mod
from skillchat.core.competence import mode_center
from skillchat.core.standing import _MIN_SPREAD, mode_spread, net_of_hardness, standing


def test_an_agent_sent_the_hard_turns_is_not_judged_by_its_rawrate(tiny):
    # big was asked mostly hard debugging questions, mid mostly easy Python ones. big is better at
    # both, yet its raw success rate (0.51) is far below mid's (0.78).
    rate(tiny, "big", "code.debugging", 16, 24)
    rate(tiny, "big", "code.python", 10, 0)
    rate(tiny, "mid", "code.debugging", 3, 7)
    rate(tiny, "mid", "code.python", 36, 4)
    fit = standing(tiny)
    assert fit.overall["big"][0] > fit.overall["mid"][0] + 0.03
    assert fit.by_mode["big", "code"][0] > fit.by_mode["mid", "code"][0]
    # On the usual mix (half hard, half easy) the figures land near what the counts say.
    assert fit.overall["mid"][0] == pytest.approx((0.3 + 0.9) / 2, abs=0.07)


@pytest.mark.parametrize(("others", "mid_above_big"), [(("big", "small"), True), (("big",), False)])
def test_an_agent_rated_only_where_every_agent_struggles_is_not_judged_weak_elsewhere(tiny, others, mid_above_big):
    # Calculus is hard for everyone: big answers a quarter of it and small a tenth, where on Python
    # they answer 90% and 70%. mid was only ever asked calculus, and answered half: better than
    # both. By its raw rate elsewhere (0.5) it would stand below big at code; net of how hard
    # calculus is, it stands above. With one other agent rated on calculus, "calculus is hard"
    # cannot be told from "big is weak at it", and nothing is taken out.
    ratings = {"big": (10, 30, 36, 4), "small": (4, 36, 28, 12)}
    for agent in others:
        calc_good, calc_bad, py_good, py_bad = ratings[agent]
        rate(tiny, agent, "math.calculus", calc_good, calc_bad)
        rate(tiny, agent, "code.python", py_good, py_bad)
    rate(tiny, "mid", "math.calculus", 20, 20)
    fit = standing(tiny)
    assert (fit.by_mode["mid", "code"][0] > fit.by_mode["big", "code"][0] + 0.01) is mid_above_big
    assert (fit.by_mode["mid", "code"][0] < fit.by_mode["big", "code"][0] - 0.03) is not mid_above_big


def test_more_evidence_means_a_surer_standing(tiny):
    rate(tiny, "big", "code.python", 8, 2)
    rate(tiny, "mid", "code.python", 80, 20)
    fit = standing(tiny)
    assert fit.overall["mid"][1] < fit.overall["big"][1]


def test_the_standing_follows_new_ratings(tiny):
    rate(tiny, "mid", "code.python", 5, 5)
    before = standing(tiny).overall["mid"][0]
    rate(tiny, "mid", "code.python", 20, 0)
    assert standing(tiny).overall["mid"][0] > before + 0.1


def test_before_any_rating_the_standing_is_the_tier_prior_with_its_uncertainty(tiny):
    # No rating yet: each mode sits at the centre the competence tiers give it, with the prior's
    # uncertainty (precision mode_strength / 4 on the logit scale) carried through the curve; the
    # overall figure weighs the modes by their share of skills.
    fit = standing(tiny)
    prec = 0.25 * tiny.settings.mode_strength
    skills_in = {m: len(tiny.skills_in_mode(m)) for m in tiny.modes}
    for a in tiny.agents:
        mean_all = var_all = 0.0
        for m in tiny.modes:
            q = mode_center(tiny, a, m)
            sd = q * (1 - q) / math.sqrt(prec)
            assert fit.by_mode[a, m] == pytest.approx((q, sd))
            share = skills_in[m] / len(tiny.skills)
            mean_all += share * q
            var_all += (share * sd) ** 2
        assert fit.overall[a] == pytest.approx((mean_all, math.sqrt(var_all)))
    assert fit.overall["big"][0] == pytest.approx((3 * 0.8 + 2 * 0.85 + 0.8) / 6)


def test_with_many_ratings_the_uncertainty_is_the_binomial_standard_error(tiny):
    rate(tiny, "mid", "code.python", 80, 20)
    mean, sd = standing(tiny).by_mode["mid", "code"]
    assert mean == pytest.approx(0.8, abs=0.01)
    assert sd == pytest.approx(math.sqrt(0.8 * 0.2 / 100), rel=0.1)


def test_the_fit_is_reused_until_evidence_or_settings_change(tiny):
    rate(tiny, "mid", "code.python", 5, 5)
    first = standing(tiny)
    assert standing(tiny) is first
    tiny.settings = dataclasses.replace(tiny.settings, mode_strength=60.0)
    refit = standing(tiny)
    assert refit is not first and refit.by_mode["mid", "code"] != first.by_mode["mid", "code"]


def test_a_long_history_keeps_its_fit_for_one_more_rating_but_a_short_one_refits(tiny):
    rate(tiny, "mid", "code.python", 3, 3)
    short = standing(tiny)
    rate(tiny, "mid", "code.python", 1, 0)
    assert standing(tiny) is not short
    rate(tiny, "mid", "code.python", 200, 100)
    long = standing(tiny)
    rate(tiny, "mid", "code.python", 1, 0)
    assert standing(tiny) is long
    rate(tiny, "mid", "code.python", 20, 0)  # more than 2% more evidence: refitted
    assert standing(tiny).overall["mid"][0] > long.overall["mid"][0]


def test_a_changed_rating_refits_even_though_the_amount_of_evidence_is_the_same(tiny):
    from skillchat.core.learning import replace_rating

    rate(tiny, "mid", "code.python", 200, 100)
    long = standing(tiny)
    for _ in range(30):  # thumbs up turned down: as many ratings as before, 10% fewer good
        replace_rating(tiny, "mid", {"code.python": 1.0}, "up", "down")
    assert tiny.evidence.total() == pytest.approx(300)
    assert standing(tiny).by_mode["mid", "code"][0] < long.by_mode["mid", "code"][0] - 0.05


def test_the_usual_mix_is_the_rated_turns_alone(tiny):
    # Only code was rated, so the usual mix is all code: a skill nobody was rated on has no share.
    rate(tiny, "mid", "code.python", 40, 10)
    fit = standing(tiny)
    assert fit.overall["mid"] == pytest.approx(fit.by_mode["mid", "code"])


def test_the_spread_between_modes_is_what_the_deviations_say_beyond_their_noise():
    # prec 1.5 is a configured spread of 2/3, worth 10 cells. Two cells with 100 and 50 units of
    # evidence beyond the prior, whose fitted abilities sit 0.5 and 0 from their centres: the
    # shrinkage undone, 0.5 * 101.5 / 100; less each cell's sampling variance.
    ability = {("a", "m"): 1.5, ("b", "m"): 0.2}
    centre = {("a", "m"): 1.0, ("b", "m"): 0.2}
    info = {("a", "m"): 101.5, ("b", "m"): 51.5}
    d = 0.5 * 101.5 / 100
    expected = (10 / 1.5 + d * d - 1 / 100 + 0 - 1 / 50) / 12
    assert mode_spread(ability, centre, info, 1.5) == pytest.approx(expected)


def test_modes_alike_over_many_records_make_a_small_spread_and_little_evidence_none():
    keys = [(f"a{i}", "m") for i in range(400)]
    alike = mode_spread(dict.fromkeys(keys, 0.3), dict.fromkeys(keys, 0.3), dict.fromkeys(keys, 201.5), 1.5)
    assert alike == pytest.approx(max(_MIN_SPREAD, (10 / 1.5 - 400 / 200) / 410))
    assert alike < 0.05
    # A cell with up to one rating's worth of evidence says nothing about the spread; one with more does.
    assert mode_spread({("a", "m"): 2.0}, {("a", "m"): 0.0}, {("a", "m"): 2.0}, 1.5) is None
    assert mode_spread({("a", "m"): 2.0}, {("a", "m"): 0.0}, {("a", "m"): 2.5}, 1.5) is None
    assert mode_spread({("a", "m"): 2.0}, {("a", "m"): 0.0}, {("a", "m"): 3.0}, 1.5) is not None


def test_the_second_fit_pools_the_modes_with_exactly_the_learned_spread(tiny, monkeypatch):
    # A learned spread v is a prior precision of 1 / v on the abilities: the same fit as a
    # configured mode_strength of 4 / v (precision mode_strength / 4) with nothing learned.
    rate(tiny, "big", "code.python", 30, 10)
    rate(tiny, "mid", "code.python", 9, 1)
    rate(tiny, "mid", "math.calculus", 12, 8)
    monkeypatch.setattr(standing_mod, "mode_spread", lambda *a: 0.1)
    learned = standing_mod._fit(tiny).by_mode
    monkeypatch.setattr(standing_mod, "mode_spread", lambda *a: None)
    tiny.settings = dataclasses.replace(tiny.settings, mode_strength=40.0)
    configured = standing_mod._fit(tiny).by_mode
    for key in (("big", "code"), ("mid", "code"), ("mid", "math")):
        assert learned[key] == pytest.approx(configured[key], abs=1e-4)


def test_a_larger_skill_strength_puts_more_of_a_failure_on_the_agent_than_on_the_skill(tiny):
    # Only mid was rated on debugging, and it failed: the skill may be hard, or mid weak at code.
    # The skills' ease is shrunk towards 0 with skill_strength, so the stronger that is, the more
    # of the blame lands on mid's ability in code, and the lower mid stands on Python, where the
    # usual code turn is.
    rate(tiny, "big", "code.python", 60, 20)
    rate(tiny, "mid", "code.debugging", 2, 8)
    loose = standing_mod._fit(tiny).by_mode["mid", "code"][0]
    tiny.settings = dataclasses.replace(tiny.settings, skill_strength=40.0)
    strict = standing_mod._fit(tiny).by_mode["mid", "code"][0]
    assert strict < loose - 0.02


def test_where_models_differ_little_between_modes_one_odd_mode_needs_more_evidence(tiny, monkeypatch):
    # Every agent does in every mode what its level elsewhere predicts, except mid in math, on a
    # thin record. Learned from the rest, the spread is small, so that record moves mid's math
    # standing less than the configured mode_strength alone would let it.
    for _ in range(3):
        for a in tiny.agents:
            for m in tiny.modes:
                if (a, m) != ("mid", "math"):
                    q = mode_center(tiny, a, m)
                    skill = tiny.skills_in_mode(m)[0]
                    rate(tiny, a, skill, round(40 * q), 40 - round(40 * q))
    rate(tiny, "mid", tiny.skills_in_mode("math")[0], 9, 1)
    centre = mode_center(tiny, "mid", "math")
    learned = standing(tiny).by_mode["mid", "math"][0]
    monkeypatch.setattr(standing_mod, "mode_spread", lambda *a: None)
    configured = standing_mod._fit(tiny).by_mode["mid", "math"][0]
    assert centre < learned < configured


def test_the_centre_is_taken_net_of_the_hardness_the_other_agents_show():
    # a was rated 10 times in x; b 20 in x and 10 in y; c 30 in x and 10 in y. In x, b's and c's
    # abilities sit 1 and 2 below their raw centres: x is hard. For a in y: x's hardness without a
    # is 1.5 * (-3) / (1 + 1.5 * 2) = -1.125, and a's centre is 10 / (10 + 10) of its evidence, so it
    # rises by 0.5625. For b in y: without b, a and c sit +0.5 and -2 off, -0.5625, on 20 of 30;
    # for c in y, a and b: +0.5 and -1, -0.1875, on 30 of 40.
    # b in x and c in x: only one other agent was rated in y, so nothing is taken out. a in x has
    # no ratings elsewhere and is left out.
    raw = {(a, m): 0.0 for a in "abc" for m in "xy"}
    ability = dict(raw) | {("a", "x"): 0.5, ("b", "x"): -1.0, ("c", "x"): -2.0, ("b", "y"): 1.0, ("c", "y"): 1.0}
    rated_in = {"a": {"x": 10.0}, "b": {"x": 20.0, "y": 10.0}, "c": {"x": 30.0, "y": 10.0}}
    net = net_of_hardness(raw, ability, rated_in, ["x", "y"], prec=1.5, prec_hard=1.0, prior_strength=10.0)
    assert net == pytest.approx({
        ("a", "y"): 1.125 * 10 / 20,
        ("b", "x"): 0.0,
        ("b", "y"): 0.5625 * 20 / 30,
        ("c", "x"): 0.0,
        ("c", "y"): 0.1875 * 30 / 40,
    })
