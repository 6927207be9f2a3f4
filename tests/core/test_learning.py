import pytest

from skillchat.core import apply_rating, rating_score, replace_rating


def test_rating_is_split_by_skill_weight(tiny):
    assert apply_rating(tiny, "mid", {"code.debugging": 0.6, "code.python": 0.4}, "up")
    assert tiny.evidence.skill("mid", "code.debugging") == pytest.approx((0.6, 0.0))
    assert tiny.evidence.skill("mid", "code.python") == pytest.approx((0.4, 0.0))
    assert tiny.evidence.agent("mid") == pytest.approx((1.0, 0.0))  # one observation in total
    apply_rating(tiny, "mid", {"code.debugging": 1.0}, 0.25)
    assert tiny.evidence.skill("mid", "code.debugging") == pytest.approx((0.85, 0.75))


def test_unrated_turn_changes_nothing(tiny):
    assert not apply_rating(tiny, "mid", {"code.debugging": 1.0}, None)
    assert tiny.evidence.total() == 0


def test_unknown_skills_and_agents_are_ignored(tiny):
    assert not apply_rating(tiny, "mid", {"gone.skill": 1.0}, "up")
    assert not apply_rating(tiny, "ghost", {"code.debugging": 1.0}, "up")
    assert tiny.evidence.total() == 0


def test_new_rating_replaces_old(tiny):
    w = {"code.debugging": 0.5, "math.calculus": 0.5}
    apply_rating(tiny, "big", w, "up")
    replace_rating(tiny, "big", w, "up", "down")
    assert tiny.evidence.skill("big", "code.debugging") == pytest.approx((0.0, 0.5))
    assert tiny.evidence.mode("big", "math") == pytest.approx((0.0, 0.5))
    replace_rating(tiny, "big", w, "down", None)
    assert tiny.evidence.agent("big") == pytest.approx((0.0, 0.0))


def test_a_changed_rating_takes_back_only_its_own_credit(tiny):
    w = {"code.debugging": 1.0}
    apply_rating(tiny, "big", w, "down")  # another turn's rating on the same skill
    apply_rating(tiny, "big", w, "up")
    replace_rating(tiny, "big", w, "up", "down")
    assert tiny.evidence.skill("big", "code.debugging") == pytest.approx((0.0, 2.0))
    replace_rating(tiny, "big", w, "down", 0.25)
    assert tiny.evidence.skill("big", "code.debugging") == pytest.approx((0.25, 1.75))
    assert tiny.evidence.clamped == []


def test_replacing_nothing_applies_the_new_rating(tiny):
    replace_rating(tiny, "mid", {"code.debugging": 1.0}, None, "up")
    assert tiny.evidence.skill("mid", "code.debugging") == pytest.approx((1.0, 0.0))


def test_a_replaced_rating_is_taken_back_from_the_skills_and_agents_still_there(tiny):
    # The turn was routed to a skill and an agent since removed from the handbook. Its rating went
    # in full to the skill that remains (shares are over the known skills: 0.6 / 0.6), so that is
    # what a change takes back; the removed agent has nothing to take back.
    w = {"code.debugging": 0.6, "gone.skill": 0.4}
    apply_rating(tiny, "big", w, "up")
    assert tiny.evidence.skill("big", "code.debugging") == pytest.approx((1.0, 0.0))
    replace_rating(tiny, "big", w, "up", "down")
    assert tiny.evidence.skill("big", "code.debugging") == pytest.approx((0.0, 1.0))
    replace_rating(tiny, "ghost", w, "up", "down")
    assert tiny.evidence.agent("ghost") == (0.0, 0.0)
    assert tiny.evidence.clamped == []


def test_rating_changes_from_the_log_are_applied_replaced_or_taken_back(tiny):
    from types import SimpleNamespace as Change

    from skillchat.core.learning import apply_rating_changes

    w = {"code.debugging": 1.0}
    apply_rating_changes(tiny, [Change(agent_id="big", skills=w, old=None, new=1.0),
                                Change(agent_id="mid", skills=w, old=None, new=0.0),
                                Change(agent_id="ghost", skills=w, old=None, new=1.0)])
    assert tiny.evidence.skill("big", "code.debugging") == pytest.approx((1.0, 0.0))
    assert tiny.evidence.skill("mid", "code.debugging") == pytest.approx((0.0, 1.0))
    apply_rating_changes(tiny, [Change(agent_id="big", skills=w, old=1.0, new=0.0),
                                Change(agent_id="mid", skills=w, old=0.0, new=None),
                                Change(agent_id="small", skills=w, old=1.0, new=1.0)])  # unchanged: nothing
    assert tiny.evidence.skill("big", "code.debugging") == pytest.approx((0.0, 1.0))
    assert tiny.evidence.agent("mid") == pytest.approx((0.0, 0.0))
    assert tiny.evidence.agent("small") == (0.0, 0.0)


@pytest.mark.parametrize("bad", ["meh", 1.5, -0.1])
def test_rating_values_are_checked(bad):
    with pytest.raises(ValueError):
        rating_score(bad)


def test_decay_discounts_all_tiers(tiny):
    apply_rating(tiny, "big", {"code.debugging": 1.0}, "up")
    tiny.evidence.scale(0.5)
    assert tiny.evidence.skill("big", "code.debugging") == pytest.approx((0.5, 0.0))
    assert tiny.evidence.agent("big") == pytest.approx((0.5, 0.0))
