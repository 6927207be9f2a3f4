"""The counts a handbook learns: per cell, per mode and per agent, never below zero."""

import pytest

from skillchat.core.evidence import CostStat, Evidence

MODE_OF = {"code.debugging": "code", "code.python": "code", "math.calculus": "math"}


def test_a_cost_stat_is_the_running_mean_of_every_call():
    c = CostStat()
    assert (c.n, c.prompt_tokens, c.completion_tokens, c.usd) == (0, 0, 0, 0)
    for prompt, completion, usd in ((100, 10, 0.01), (300, 30, 0.03), (200, 50, 0.05)):
        c.add(prompt, completion, usd)
    assert c.n == 3
    assert (c.prompt_tokens, c.completion_tokens, c.usd) == pytest.approx((200.0, 30.0, 0.03))


def test_counts_add_up_per_cell_mode_and_agent():
    ev = Evidence(MODE_OF)
    ev.add("a", "code.debugging", 0.6, 0.0)
    ev.add("a", "code.python", 0.4, 1.0)
    ev.add("a", "math.calculus", 0.0, 2.0)
    ev.add("b", "code.debugging", 1.0, 0.0)
    assert ev.skill("a", "code.python") == pytest.approx((0.4, 1.0))
    assert ev.mode("a", "code") == pytest.approx((1.0, 1.0))
    assert ev.agent("a") == pytest.approx((1.0, 3.0))
    assert ev.skill("b", "code.python") == ev.mode("b", "math") == ev.agent("c") == (0.0, 0.0)
    assert ev.total() == pytest.approx(5.0)
    assert sorted(ev.cells()) == [("a", "code.debugging", 0.6, 0.0), ("a", "code.python", 0.4, 1.0),
                                  ("a", "math.calculus", 0.0, 2.0), ("b", "code.debugging", 1.0, 0.0)]


def test_taking_back_what_a_cell_holds_leaves_zero_and_no_complaint():
    ev = Evidence(MODE_OF)
    ev.add("a", "code.debugging", 0.6, 0.4)
    ev.add("a", "code.debugging", -0.6, -0.4)
    assert ev.skill("a", "code.debugging") == ev.mode("a", "code") == ev.agent("a") == (0.0, 0.0)
    # Float rounding a hair below zero is clamped without a message.
    ev.add("a", "code.python", 0.1 + 0.2, 0.0)
    ev.add("a", "code.python", -0.3 - 1e-12, 0.0)
    assert ev.skill("a", "code.python") == (0.0, 0.0)
    assert ev.clamped == []


def test_taking_back_more_than_a_cell_holds_stops_at_zero_everywhere_and_says_why():
    ev = Evidence(MODE_OF)
    ev.add("a", "code.debugging", 1.0, 0.5)
    ev.add("a", "code.python", 2.0, 1.0)
    ev.add("a", "code.debugging", -3.0, -0.25)
    assert ev.skill("a", "code.debugging") == pytest.approx((0.0, 0.25))
    # The mode and the agent lose only what the cell had, not what was asked.
    assert ev.mode("a", "code") == ev.agent("a") == pytest.approx((2.0, 1.25))
    assert ev.clamped == [
        "a on code.debugging: taking back 3 successes and 0.25 failures from 1 and 0.5 would go below zero; "
        "kept at zero (a rating was taken back that this handbook never had)"
    ]
    # From an empty cell, with the other count added as asked.
    ev.add("a", "math.calculus", 0.5, -1.0)
    assert ev.skill("a", "math.calculus") == ev.mode("a", "math") == (0.5, 0.0)
    assert ev.clamped[-1].startswith("a on math.calculus: taking back 0 successes and 1 failures from 0 and 0 ")
    ev.add("b", "code.python", -1.0, 0.5)
    assert ev.skill("b", "code.python") == (0.0, 0.5)
    assert ev.clamped[-1].startswith("b on code.python: taking back 1 successes and 0 failures from 0 and 0 ")
    ev.add("b", "math.calculus", 0.0, -1.0)  # nothing asked of successes reads 0, not -0
    assert ev.clamped[-1].startswith("b on math.calculus: taking back 0 successes and 1 failures from 0 and 0 ")


def test_only_the_latest_ten_clamps_are_kept():
    ev = Evidence(MODE_OF)
    for i in range(12):
        ev.add(f"agent{i}", "code.python", -1.0, 0.0)
    assert len(ev.clamped) == 10
    assert ev.clamped[0].startswith("agent2 ") and ev.clamped[-1].startswith("agent11 ")


def test_scale_discounts_every_table_and_clear_empties_them():
    ev = Evidence(MODE_OF)
    ev.add("a", "code.debugging", 2.0, 4.0)
    versions = [ev.version]
    ev.scale(0.5)
    versions.append(ev.version)
    assert ev.skill("a", "code.debugging") == ev.mode("a", "code") == ev.agent("a") == pytest.approx((1.0, 2.0))
    ev.clear()
    versions.append(ev.version)
    assert ev.total() == 0 and list(ev.cells()) == [] and ev.mode("a", "code") == (0.0, 0.0)
    # Derived figures are cached by version: every change must move it.
    assert len(set(versions)) == 3
