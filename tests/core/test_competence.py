import math
from dataclasses import replace

import pytest
from ratings import rate  # tests/core/ratings.py

from skillchat.core import Posterior, competence, posterior


def test_unseen_skill_scores_its_prior_not_zero(tiny):
    post = posterior(tiny, "mid", "code.debugging")
    assert post.mean == pytest.approx(0.72, abs=1e-6)  # mid's code-mode prior
    assert 0 < post.variance < 0.25


def test_one_lucky_rating_does_not_make_a_skill_certain(tiny):
    tiny.record_outcome("small", {"math.calculus": 1.0}, 1.0)
    post = posterior(tiny, "small", "math.calculus")
    assert post.mean < 0.5  # prior 0.35 with 4 pseudo-counts: (1.4 + 1) / 5
    assert post.mean == pytest.approx((4 * 0.35 + 1) / 5)


def test_evidence_moves_the_skill_towards_it(tiny):
    before = posterior(tiny, "big", "code.python").mean
    for _ in range(30):
        tiny.record_outcome("big", {"code.python": 1.0}, 0.0)
    after = posterior(tiny, "big", "code.python")
    assert after.mean < 0.2 < before
    assert after.variance < 0.01


def test_thin_skill_is_shrunk_towards_its_mode(tiny):
    # Many failures on sibling skills of the same mode pull the unseen skill down...
    for _ in range(40):
        tiny.record_outcome("big", {"code.debugging": 1.0}, 0.0)
    unseen_code = posterior(tiny, "big", "code.performance").mean
    assert unseen_code < 0.5
    # ...more than they pull a skill of another mode, which only follows the agent's overall level.
    unseen_math = posterior(tiny, "big", "math.calculus").mean
    assert unseen_code < unseen_math < 0.85


def test_relative_strength_from_the_prior_survives_a_level_shift(tiny):
    for _ in range(50):
        tiny.record_outcome("small", {"chat.general": 1.0}, 1.0)
    # small's math prior (0.35) is well below its overall prior (0.55); more chat success lifts both,
    # but math stays below its chat level.
    assert posterior(tiny, "small", "math.calculus").mean < posterior(tiny, "small", "chat.general").mean


def test_no_evidence_counted_twice_across_tiers(tiny):
    tiny.record_outcome("mid", {"code.debugging": 1.0}, 1.0)
    post = posterior(tiny, "mid", "code.debugging")
    # With evidence only on this skill, the tiers above see nothing (it is excluded from them),
    # so the result is exactly the prior centre plus one success.
    assert post.alpha == pytest.approx(4 * 0.72 + 1)
    assert post.beta == pytest.approx(4 * 0.28)



def test_a_skill_every_tried_agent_struggles_on_is_hard_for_the_untried_one_too(tiny):
    # big and mid do as usual on python but fail far more often on performance work. small has
    # never been tried on either: it must not look best exactly where everyone else failed.
    for agent in ("big", "mid"):
        rate(tiny, agent, "code.python", 16, 4)
        rate(tiny, agent, "code.performance", 4, 16)
    hard = posterior(tiny, "small", "code.performance").mean
    usual = posterior(tiny, "small", "code.python").mean
    assert hard < usual - 0.1


def test_one_agents_failures_do_not_make_the_skill_hard_for_others(tiny):
    # With one agent's ratings, "the skill is hard" and "that agent is weak here" look the same:
    # the others keep their estimate.
    before = posterior(tiny, "small", "code.performance").mean
    rate(tiny, "big", "code.performance", 0, 30)
    assert posterior(tiny, "small", "code.performance").mean == pytest.approx(before)


def test_difficulty_leaves_an_agents_own_ratings_out(tiny):
    # mid and small find performance hard; big's estimate shifts by what *they* show, and its own
    # ratings then count once, as skill evidence.
    for agent in ("mid", "small"):
        rate(tiny, agent, "code.python", 16, 4)
        rate(tiny, agent, "code.performance", 4, 16)
    shifted = posterior(tiny, "big", "code.performance")
    rate(tiny, "big", "code.performance", 3, 0)
    after = posterior(tiny, "big", "code.performance")
    # Three successes add exactly three to alpha: the centre, set by the others, does not move.
    assert shifted.mean < posterior(tiny, "big", "code.python").mean
    assert after.alpha - shifted.alpha == pytest.approx(3, abs=1e-9)
    assert after.beta == pytest.approx(shifted.beta, abs=1e-9)


# The tests below pin the tiers' arithmetic to the module docstring's formulas, worked by hand on
# tiny.json: prior_strength 12, mode_strength 6 (the default), skill_strength 4; mid's prior is 0.7
# overall and 0.72 in code; big's is 0.8 (no code override); small's is 0.55 (no code override).
def _logit(p):
    return math.log(p / (1 - p))


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_variance_is_the_beta_variance():
    # a b / ((a + b)^2 (a + b + 1)): 2 * 3 / (25 * 6)
    assert Posterior(2.0, 3.0).variance == pytest.approx(0.04)


def test_an_unseen_skill_is_as_uncertain_as_its_pseudo_counts(tiny):
    # Beta(4 * 0.72, 4 * 0.28): 2.88 * 1.12 / (16 * 5)
    assert posterior(tiny, "mid", "code.debugging").variance == pytest.approx(2.88 * 1.12 / 80)


def test_sibling_ratings_set_the_mode_level_by_mode_strength_pseudo_counts(tiny):
    # mid's code ratings are all on python, so its code centre is its code prior (0.72) and the
    # mode tier for debugging is (6 * 0.72 + 3) / (6 + 3 + 1) = 0.732; debugging has no ratings of
    # its own, so that level gets skill_strength pseudo-counts.
    rate(tiny, "mid", "code.python", 3, 1)
    post = posterior(tiny, "mid", "code.debugging")
    assert post.alpha == pytest.approx(4 * 0.732)
    assert post.beta == pytest.approx(4 * (1 - 0.732))


def test_less_than_one_rating_still_counts_at_every_tier(tiny):
    # One thumbs-up split half and half over chat and code.python: half a rating in another mode
    # moves mid's level, and half a rating on a sibling skill moves its code level.
    tiny.record_outcome("mid", {"chat.general": 0.5, "code.python": 0.5}, 1.0)
    level = (12 * 0.7 + 0.5) / (12 + 0.5)
    center = _sigmoid(_logit(level) + _logit(0.72) - _logit(0.7))  # the code prior's offset kept
    assert competence.mode_center(tiny, "mid", "code") == pytest.approx(center)
    mode_level = (6 * center + 0.5) / (6 + 0.5)
    assert posterior(tiny, "mid", "code.debugging").mean == pytest.approx(mode_level)


def test_a_skill_prior_keeps_its_offset_from_the_mode_and_replaces_a_cached_agent(tiny):
    # Fill the prior-logit cache, then replace mid in place (as the provider pool does) with a
    # prior of 0.9 on debugging: the new prior applies, as an offset from the code level.
    posterior(tiny, "mid", "code.debugging")
    agent = tiny.agents["mid"]
    tiny.agents["mid"] = replace(agent, prior=replace(agent.prior, skills={"code.debugging": 0.9}))
    assert posterior(tiny, "mid", "code.debugging").mean == pytest.approx(0.9)
    rate(tiny, "mid", "code.python", 3, 1)  # code level 0.72 -> 0.732, as above
    expected = _sigmoid(_logit(0.732) + _logit(0.9) - _logit(0.72))
    assert posterior(tiny, "mid", "code.debugging").mean == pytest.approx(expected)


def test_difficulty_is_one_newton_step_over_the_other_agents(tiny):
    # big (level 0.8) goes 1 up 1 down on performance, mid (0.72) 0 up 2 down. For small, never
    # tried there, the shift is sum(succ - n q) / (sum(n q (1 - q)) + skill_strength) over them.
    rate(tiny, "big", "code.performance", 1, 1)
    rate(tiny, "mid", "code.performance", 0, 2)
    resid = (1 - 2 * 0.8) + (0 - 2 * 0.72)
    info = 2 * 0.8 * 0.2 + 2 * 0.72 * 0.28
    assert posterior(tiny, "small", "code.performance").mean == pytest.approx(
        _sigmoid(_logit(0.55) + resid / (info + 4)))
    # Decayed below one rating each, the two agents still count.
    tiny.evidence.scale(0.4)
    resid = (0.4 - 0.8 * 0.8) + (0 - 0.8 * 0.72)
    info = 0.8 * 0.8 * 0.2 + 0.8 * 0.72 * 0.28
    assert posterior(tiny, "small", "code.performance").mean == pytest.approx(
        _sigmoid(_logit(0.55) + resid / (info + 4)))


def test_difficulty_shift_is_capped_at_three_logits(tiny):
    # 200 failures each: one Newton step would be -304 / 76.32 ~ -4 logits; the cap keeps it at -3.
    rate(tiny, "big", "code.performance", 0, 200)
    rate(tiny, "mid", "code.performance", 0, 200)
    assert posterior(tiny, "small", "code.performance").mean == pytest.approx(_sigmoid(_logit(0.55) - 3))


@pytest.mark.parametrize("edge", [0.0, 1.0])
def test_a_prior_at_the_edge_still_gives_a_posterior_inside_zero_and_one(tiny, edge):
    # A handbook file may not hold a prior of 0 or 1, but code may build one (a relearned or
    # generated handbook): it is read as all but certain, never as a division by zero.
    big = tiny.agents["big"]
    tiny.agents["big"] = replace(big, prior=replace(big.prior, mean=edge, modes={"math": edge}))
    for skill in ("math.calculus", "code.python"):
        p = posterior(tiny, "big", skill)
        assert 0 < p.mean < 1 and p.mean == pytest.approx(edge, abs=1e-3)
