import pytest
from ratings import rate  # tests/core/ratings.py

from skillchat.core import posterior


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
