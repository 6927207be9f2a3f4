"""Which two agents a compared turn goes to, and the propensities logged with its two answers."""

import random
from collections import Counter
from dataclasses import replace

import pytest
from ratings import rate  # tests/core/ratings.py

from skillchat.core import Message, Router
from skillchat.core.compare import (
    CHALLENGER_FLOOR,
    POLICY,
    beat_probability,
    challenger_odds,
    continues_right,
    outcome_ratings,
    pick_pair,
    side_decision,
    slot_propensity,
)


def decide(hb, text="Why does this raise TypeError?", **kw):
    return Router(hb).route([Message("user", text)], rng=random.Random(0), **kw)


def test_beat_probability_is_the_normal_chance_of_a_higher_score():
    assert beat_probability(0.5, 0.1, 0.5, 0.1) == pytest.approx(0.5)
    assert beat_probability(0.6, 0.0, 0.5, 0.0) == 1.0
    assert beat_probability(0.4, 0.0, 0.5, 0.0) == 0.0
    rng = random.Random(1)
    mc = sum(rng.gauss(0.55, 0.05) > rng.gauss(0.6, 0.08) for _ in range(40000)) / 40000
    assert beat_probability(0.55, 0.05, 0.6, 0.08) == pytest.approx(mc, abs=0.01)


def test_pair_is_the_best_expected_and_a_challenger(tiny):
    d = decide(tiny)
    pair = pick_pair(d, random.Random(0))
    assert pair.best == d.best.agent_id
    assert pair.challenger != pair.best and pair.challenger in {a.agent_id for a in d.ranking if a.eligible}
    assert pair.called[pair.best] == 1.0
    # Every eligible agent can be called, and exactly two are called: the chances sum to 2.
    assert set(pair.called) == {a.agent_id for a in d.ranking if a.eligible}
    assert all(p > 0 for p in pair.called.values())
    assert sum(pair.called.values()) == pytest.approx(2.0)


def test_challenger_is_drawn_with_its_logged_probability(tiny):
    d = decide(tiny)
    called = pick_pair(d, random.Random(0)).called
    rng = random.Random(7)
    n = 20000
    drawn = Counter(pick_pair(d, rng).challenger for _ in range(n))
    for agent, p in called.items():
        if agent != d.best.agent_id:
            assert drawn[agent] / n == pytest.approx(p, abs=0.015)


def test_likelier_challenger_is_drawn_more_often(tiny):
    # Big clearly best, mid close behind it, small far behind: mid is the one worth checking.
    rate(tiny, "big", "code.debugging", 40, 4)
    rate(tiny, "mid", "code.debugging", 36, 6)
    rate(tiny, "small", "code.debugging", 3, 30)
    d = decide(tiny, lam=0.0)
    assert d.best.agent_id == "big"
    beats, draw = challenger_odds(d)
    assert beats["mid"] > beats["small"]
    assert draw["mid"] > draw["small"] >= CHALLENGER_FLOOR / 2 - 1e-12
    assert sum(draw.values()) == pytest.approx(1.0)


def test_floor_keeps_a_hopeless_challenger_reachable(tiny):
    rate(tiny, "big", "code.debugging", 200, 0)
    rate(tiny, "small", "code.debugging", 0, 200)
    _, draw = challenger_odds(decide(tiny, lam=0.0), floor=0.2)
    assert draw["small"] >= 0.1 - 1e-12


def test_a_tie_with_no_uncertainty_does_not_beat_the_best():
    assert beat_probability(0.5, 0.0, 0.5, 0.0) == 0.0  # "exceeds": a certain tie is no win


def scored(hb, **score_sd):
    """A routed decision with big as the best expected agent and every agent's (score, sd) set."""
    d = decide(hb)
    ranking = tuple(replace(a, score=score_sd[a.agent_id][0], uncertainty=score_sd[a.agent_id][1]) for a in d.ranking)
    return replace(d, ranking=ranking, best_expected="big")


@pytest.mark.parametrize("floor, mid, small", [(0.0, 1.0, 0.0), (CHALLENGER_FLOOR, 0.95, 0.05), (1.0, 0.5, 0.5)])
def test_the_draw_mixes_the_beat_chances_with_the_floor_including_both_ends(tiny, floor, mid, small):
    # big is certain at 0.6; mid ties it with some uncertainty (beats it with p = 1/2), small is
    # certainly below (p = 0). The draw is (1 - floor) * p / sum(p) + floor / 2.
    d = scored(tiny, big=(0.6, 0.0), mid=(0.6, 0.1), small=(0.3, 0.0))
    beats, draw = challenger_odds(d, floor)
    assert beats == {"mid": pytest.approx(0.5), "small": 0.0}
    assert draw == {"mid": pytest.approx(mid), "small": pytest.approx(small)}
    assert pick_pair(d, random.Random(0), floor=floor).called == {"big": 1.0, "mid": pytest.approx(mid),
                                                                   "small": pytest.approx(small)}


def test_when_no_challenger_can_win_the_draw_is_even(tiny):
    d = scored(tiny, big=(0.9, 0.0), mid=(0.4, 0.0), small=(0.1, 0.0))
    beats, draw = challenger_odds(d, floor=0.0)
    assert beats == {"mid": 0.0, "small": 0.0}
    assert draw == {"mid": 0.5, "small": 0.5}


def test_a_seeded_draw_takes_the_agent_whose_share_holds_the_first_uniform(tiny):
    # Agents in id order own consecutive slices of [0, 1): mid [0, 0.95), small [0.95, 1). The same
    # seed must draw the same challenger (the bench's runs are replayed from their seeds).
    d = scored(tiny, big=(0.6, 0.0), mid=(0.6, 0.1), small=(0.3, 0.0))
    for seed in range(60):
        u = random.Random(seed).random()
        assert pick_pair(d, random.Random(seed)).challenger == ("mid" if u < 0.95 else "small")


def test_no_pair_when_only_one_agent_can_answer(tiny):
    d = Router(tiny).route([Message("user", "hi")], exclude={"mid": "x", "small": "y"})
    assert pick_pair(d, random.Random(0)) is None
    with pytest.raises(ValueError):
        pick_pair(decide(tiny), floor=1.5)


def test_side_decision_logs_the_chance_of_being_called(tiny):
    d = decide(tiny)
    pair = pick_pair(d, random.Random(3))
    left, right = side_decision(d, pair, pair.best), side_decision(d, pair, pair.challenger)
    assert (left.chosen, left.probability, left.policy) == (pair.best, 1.0, POLICY)
    assert (right.chosen, right.probability) == (pair.challenger, pair.called[pair.challenger])
    assert {a.agent_id: a.probability for a in right.ranking if a.eligible} == dict(pair.called)
    assert left.skills == d.skills and left.mode == d.mode  # credited to the same skills
    assert "compared" in right.reason
    with pytest.raises(ValueError):
        side_decision(d, pair, "nobody")


def test_side_decision_logs_no_chance_for_an_excluded_agent_and_names_the_other_side(tiny):
    d = decide(tiny, exclude={"small": "over budget"})
    pair = pick_pair(d, random.Random(3))
    names = {a.agent_id: a.name for a in d.ranking}
    left, right = side_decision(d, pair, pair.best), side_decision(d, pair, pair.challenger)
    for side in (left, right):
        assert {a.agent_id: a.probability for a in side.ranking if not a.eligible} == {"small": 0.0}
    assert names[pair.challenger] in left.reason and names[pair.best] not in left.reason
    assert names[pair.best] in right.reason and names[pair.challenger] not in right.reason


def test_outcomes_become_ratings():
    assert outcome_ratings("left") == (1.0, 0.0)
    assert outcome_ratings("right") == (0.0, 1.0)
    assert outcome_ratings("both_good") == (1.0, 1.0)
    assert outcome_ratings("both_bad") == (0.0, 0.0)
    assert [continues_right(o) for o in ("left", "right", "both_good", "both_bad")] == [False, True, False, False]
    with pytest.raises(ValueError, match="one of"):
        outcome_ratings("sideways")


def test_slot_propensity_makes_the_per_row_estimate_unbiased():
    # Three agents with known rewards; a target policy pi. Logging: the best (a) always, a challenger
    # drawn with q. Each logged pair adds two rows w * r with w = pi / slot_propensity(P(called));
    # the mean over all rows must converge to the target's true value.
    reward = {"a": 0.8, "b": 0.5, "c": 0.2}
    pi = {"a": 0.2, "b": 0.5, "c": 0.3}
    q = {"b": 0.7, "c": 0.3}
    called = {"a": 1.0, **q}
    rng = random.Random(5)
    rows = []
    for _ in range(40000):
        ch = "b" if rng.random() < q["b"] else "c"
        for agent in ("a", ch):
            r = 1.0 if rng.random() < reward[agent] else 0.0
            rows.append(pi[agent] / slot_propensity(called[agent]) * r)
    truth = sum(pi[a] * reward[a] for a in pi)
    assert sum(rows) / len(rows) == pytest.approx(truth, abs=0.01)


def _logged_pair(hb, pair_id, left_score, right_score, rng):
    from skillchat.core.learning import RatedTurn

    d = decide(hb)
    pair = pick_pair(d, rng)
    out = []
    for k, (agent, score) in enumerate(zip(pair.agents, (left_score, right_score), strict=True)):
        side = side_decision(d, pair, agent)
        out.append(RatedTurn(turn_id=f"{pair_id}-{k}", agent_id=agent, mode=side.mode, skills=side.skill_weights(),
                             score=score, propensity=side.probability, policy=side.policy, text="Why does this raise TypeError?",
                             cost_usd=0.001, prompt_tokens=20, rating_id=2 * int(pair_id) + k,
                             probabilities={a.agent_id: a.probability for a in side.ranking}, pair=pair_id))
    return out


def test_off_policy_check_weights_a_complete_pair_and_drops_half_of_one(tiny):
    from skillchat.core import ope

    rng = random.Random(2)
    full = _logged_pair(tiny, "1", 1.0, 0.0, rng)
    half = _logged_pair(tiny, "2", 1.0, 1.0, rng)[:1]
    cmp = ope.compare(tiny, tiny, full + half, policy="greedy", folds=1)
    assert cmp.skipped == {"half a comparison": 1}
    assert cmp.candidate.n == 2
    # IPS by hand: greedy puts probability 1 on the best expected agent, the left answer (rated 1),
    # logged with P(called) = 1, so its weight is 1 / (1 / 2) = 2; the challenger's is 0.
    est = ope.evaluate(tiny, full + half, policy="greedy")
    assert est.n == 2
    assert est.ips.value == pytest.approx((2.0 * 1.0 + 0.0) / 2)


def test_simulated_preference_is_the_better_answer_or_both_alike():
    from skillchat.core.compare import preference

    assert preference(1.0, 0.0) == "left" and preference(0.2, 0.7) == "right"
    assert preference(1.0, 1.0) == "both_good" and preference(0.0, 0.0) == "both_bad"
    # Replay scores are floats: two answers alike at exactly half marks are both good, just under it both bad.
    assert preference(0.5, 0.5) == "both_good" and preference(0.49, 0.49) == "both_bad"


def test_a_cut_to_the_newest_turns_never_keeps_half_a_pair(tiny):
    from skillchat.core import ope

    full = _logged_pair(tiny, "1", 1.0, 0.0, random.Random(4))
    cmp = ope.compare(tiny, tiny, full, policy="greedy", folds=1, max_turns=1)
    assert cmp.skipped == {"older than the newest 1": 1, "half a comparison": 1}
    assert cmp.candidate.n == 0
