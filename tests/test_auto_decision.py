"""`relearn --auto` activates a new version only when the log says it is not worse."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from skillchat import relearning
from skillchat.core.handbook import from_dict
from skillchat.core.ope import Comparison, Estimate, PolicyEstimate
from skillchat.core.relearn import Change, RelearnCounts

TINY = Path(__file__).parent / "data" / "tiny.json"


def _policy(value: float, ess: float = 200.0, n: int = 200) -> PolicyEstimate:
    e = Estimate(value, 0.01)
    return PolicyEstimate(ips=e, snips=e, dr=e, cost_snips=Estimate(0.001, 0.0), cost_dr=Estimate(0.001, 0.0),
                          ess=ess, n=n, agreement=0.5)


def _comparison(delta: float, se: float = 0.01, ess: float = 200.0, n: int = 200) -> Comparison:
    return Comparison(current=_policy(0.7), candidate=_policy(0.7 + delta, ess, n), delta=Estimate(delta, se),
                      delta_cost=Estimate(0.0, 0.0), n_logged=n)


@pytest.fixture
def outcome() -> relearning.RelearnOutcome:
    hb = from_dict(json.loads(TINY.read_text()))
    return relearning.RelearnOutcome(handbook=hb, base=hb, changes=[], counts=RelearnCounts())


SPLIT = [Change(kind="split", skills=("a",), created=("a1", "a2"))]


@pytest.mark.parametrize(
    ("delta", "se", "expected"),
    [
        (0.02, 0.01, True),  # better
        (-0.005, 0.01, True),  # within the margin and the interval reaches 0
        (-0.03, 0.01, False),  # credibly worse
        (-0.005, 0.001, False),  # within the margin but the interval stays below 0
    ],
)
def test_a_changed_taxonomy_is_activated_only_when_not_worse(outcome, delta, se, expected):
    o = replace(outcome, changes=SPLIT, evaluation=_comparison(delta, se))
    activated, reason = relearning.auto_decision(o)
    assert activated is expected
    assert ("not worse" if expected else "worse") in reason


def test_nothing_new_is_never_activated(outcome):
    assert relearning.auto_decision(replace(outcome, unchanged=True, evaluation=_comparison(0.1)))[0] is False


def test_too_few_logged_turns_block_a_changed_taxonomy_but_not_a_recount(outcome):
    thin = _comparison(0.1, ess=5.0)
    assert relearning.auto_decision(replace(outcome, changes=SPLIT, evaluation=thin))[0] is False
    assert relearning.auto_decision(replace(outcome, evaluation=thin))[0] is True
    # Decayed evidence is not a plain recount either.
    decayed = replace(outcome, evaluation=thin, counts=RelearnCounts(half_life_days=30.0))
    assert relearning.auto_decision(decayed)[0] is False


def test_without_an_evaluation_only_a_plain_recount_is_activated(outcome):
    assert relearning.auto_decision(outcome)[0] is True
    assert relearning.auto_decision(replace(outcome, changes=SPLIT))[0] is False


def test_no_policy_turns_to_compare_on(outcome):
    empty = _comparison(0.0, n=0)
    assert relearning.auto_decision(replace(outcome, changes=SPLIT, evaluation=empty))[0] is False
    assert relearning.auto_decision(replace(outcome, evaluation=empty))[0] is True
