"""The "exploring" chip above an answer says what the decision's reason says (issue 9, item 7)."""

from __future__ import annotations

import random
from dataclasses import replace

from skillchat.core import Message, Router
from skillchat.ui.format import decision_summary


def summary(d, hb):
    return decision_summary(d, hb).plain


def thompson(hb, want_explored):
    for seed in range(200):
        d = Router(hb).route([Message("user", "Why does this raise TypeError?")], policy="thompson", rng=random.Random(seed))
        if d.explored == want_explored:
            return d
    raise AssertionError("no such draw")


def test_the_chip_shows_exploring_only_for_a_draw_of_another_agent(tiny):
    d = thompson(tiny, True)
    assert f"exploring (p={d.probability:.2f})" in summary(d, tiny)
    assert d.reason.startswith("exploring")


def test_an_unlikely_draw_of_the_best_agent_is_not_called_exploring(tiny):
    # The old chip said "exploring" whenever p < 0.5, even for the best expected agent.
    d = replace(thompson(tiny, False), probability=0.3)
    assert d.chosen == d.best_expected
    assert "exploring" not in summary(d, tiny) and "exploring" not in d.reason


def test_greedy_and_pinned_decisions_have_no_exploring_chip(tiny):
    d = thompson(tiny, True)
    assert "exploring" not in summary(replace(d, policy="greedy"), tiny)
    assert "pinned" in summary(replace(d, policy="pinned"), tiny)
    assert "exploring" not in summary(replace(d, policy="pinned"), tiny)


def test_a_decision_stored_before_best_expected_gets_the_chip_from_its_ranking(tiny):
    d = thompson(tiny, True)
    old = replace(d, best_expected="")
    assert old.best.agent_id == d.ranking[0].agent_id
    assert ("exploring" in summary(old, tiny)) == (old.chosen != d.ranking[0].agent_id)
