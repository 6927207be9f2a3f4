import pytest
from ratings import rate  # tests/core/ratings.py

from skillchat.core.standing import standing


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
