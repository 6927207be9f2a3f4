import dataclasses
import math
import random
from collections import Counter

import pytest
from ratings import rate  # tests/core/ratings.py

from skillchat.core import Message, NoEligibleAgent, Router, RoutingDecision, win_probabilities
from skillchat.core.ports import Price


class FixedCounter:
    def __init__(self, n):
        self.n = n

    def count(self, messages):
        return self.n


def route(hb, text="Why does this raise TypeError?", **kw):
    router = Router(hb, token_counter=kw.pop("counter", None))
    return router.route([Message("user", text)], **kw)


def _sampled_wins(means, sds, seed, n=40000):
    rng = random.Random(seed)
    wins = Counter(max(range(len(means)), key=lambda i: rng.gauss(means[i], sds[i])) for _ in range(n))
    return [wins[i] / n for i in range(len(means))]


def test_win_probabilities_match_monte_carlo():
    means, sds = [0.70, 0.66, 0.55, 0.2], [0.05, 0.08, 0.10, 0.01]
    p = win_probabilities(means, sds)
    assert p == pytest.approx(_sampled_wins(means, sds, seed=0), abs=0.015)
    assert sum(p) == pytest.approx(1.0)
    assert p[3] == 0.0  # hopeless: pruned without integration


def test_win_probabilities_hold_when_one_score_is_far_less_certain_than_the_others():
    # A wide, low estimate stretches the integration grid far below the others: the grid must still
    # span every contender's range, or the narrow ones are integrated over the wrong stretch.
    means, sds = [0.30, 0.10, 0.25], [0.02, 0.30, 0.05]
    assert win_probabilities(means, sds) == pytest.approx(_sampled_wins(means, sds, seed=1), abs=0.015)


def test_win_probabilities_edge_cases():
    assert win_probabilities([], []) == []
    assert win_probabilities([0.3], [0.1]) == [1.0]
    p = win_probabilities([0.5, 0.5], [0.0, 0.0])
    assert sum(p) == pytest.approx(1.0)


def test_decision_carries_everything_the_ui_shows(tiny):
    d = route(tiny, rng=random.Random(3))
    assert d.mode == "code" and d.handbook == "tiny" and d.handbook_version == 1
    assert {a.agent_id for a in d.ranking} == {"big", "mid", "small"}
    assert sum(a.probability for a in d.ranking) == pytest.approx(1.0)
    assert d.probability == d.winner.probability > 0
    assert d.reason
    scores = [a.score for a in d.ranking if a.eligible]
    assert scores == sorted(scores, reverse=True)
    w = d.winner
    assert w.score == pytest.approx(w.competence - d.lam * w.cost_norm)


def test_decision_round_trips_through_json(tiny):
    import json

    d = route(tiny, rng=random.Random(1))
    assert RoutingDecision.from_dict(json.loads(json.dumps(d.to_dict()))) == d


def test_cost_estimate_uses_tokens_and_prices(tiny):
    d = route(tiny, counter=FixedCounter(1000), policy="greedy")
    big = next(a for a in d.ranking if a.agent_id == "big")
    # 1000 prompt tokens at $10/M + code's 600 expected completion tokens at $30/M
    assert big.cost_usd == pytest.approx(1000 * 10e-6 + 600 * 30e-6)
    assert big.cost_norm == 1.0
    small = next(a for a in d.ranking if a.agent_id == "small")
    assert small.cost_usd == 0 and small.cost_known


def test_observed_completion_length_refines_the_estimate(tiny):
    for _ in range(20):
        tiny.record_cost("big", "code", 100, 100, 0.004)
    d = route(tiny, counter=FixedCounter(0), policy="greedy")
    big = next(a for a in d.ranking if a.agent_id == "big")
    assert big.cost_usd == pytest.approx(((20 * 100 + 2 * 600) / 22) * 30e-6)


def test_agent_without_price_uses_observed_cost_or_a_typical_one(tiny):
    from dataclasses import replace

    tiny.agents["mid"] = replace(tiny.agents["mid"], price=None, model="unknown/model")
    d = route(tiny, policy="greedy")
    mid = next(a for a in d.ranking if a.agent_id == "mid")
    assert not mid.cost_known
    known = sorted(a.cost_usd for a in d.ranking if a.cost_known)
    assert mid.cost_usd == known[len(known) // 2]
    tiny.record_cost("mid", "code", 10, 10, 0.5)
    mid = next(a for a in route(tiny, policy="greedy").ranking if a.agent_id == "mid")
    assert mid.cost_known and mid.cost_usd == pytest.approx(0.5)


def test_lambda_trades_competence_for_cost(tiny):
    assert route(tiny, "derivative of x^3", lam=0.0, policy="greedy").chosen == "big"
    assert route(tiny, "derivative of x^3", lam=1.0, policy="greedy").chosen == "mid"


def test_a_turn_of_several_skills_is_scored_by_their_shares_of_its_weight(tiny):
    # Skill weights need not sum to one: each skill counts by its share, and the uncertainty of the
    # blend is that of a weighted sum of independent estimates.
    from skillchat.core.competence import posterior
    from skillchat.core.inference import ActiveSkill, SkillProfile

    rate(tiny, "mid", "code.python", 30, 2)
    rate(tiny, "mid", "code.debugging", 4, 12)
    profile = SkillProfile("code", (ActiveSkill("code.python", 3.0), ActiveSkill("code.debugging", 1.0)))
    d = Router(tiny).decide(profile, 100, lam=0.0, policy="greedy")
    mid = next(a for a in d.ranking if a.agent_id == "mid")
    py, dbg = posterior(tiny, "mid", "code.python"), posterior(tiny, "mid", "code.debugging")
    assert mid.competence == pytest.approx(0.75 * py.mean + 0.25 * dbg.mean)
    assert mid.uncertainty == pytest.approx(math.sqrt(0.75**2 * py.variance + 0.25**2 * dbg.variance))


def test_a_conversation_exactly_as_long_as_the_context_window_still_fits(tiny):
    small = next(a for a in route(tiny, counter=FixedCounter(2000), policy="greedy").ranking if a.agent_id == "small")
    assert small.eligible
    small = next(a for a in route(tiny, counter=FixedCounter(2001), policy="greedy").ranking if a.agent_id == "small")
    assert not small.eligible


@pytest.mark.parametrize("lam", [math.inf, -math.inf, math.nan, -0.1])
def test_a_cost_weight_that_is_not_a_finite_number_at_least_zero_is_refused(tiny, lam):
    with pytest.raises(ValueError, match="lambda must be a finite number >= 0"):
        route(tiny, lam=lam)


def test_context_window_excludes_agents(tiny):
    d = route(tiny, counter=FixedCounter(5000), policy="greedy")
    small = next(a for a in d.ranking if a.agent_id == "small")
    assert not small.eligible and "context window" in small.excluded
    assert small.probability == 0 and d.ranking[-1] is small
    assert "small" not in d.fallbacks()
    with pytest.raises(NoEligibleAgent):
        route(tiny, counter=FixedCounter(10**7))


def test_pin_and_exclude(tiny):
    d = route(tiny, pin="small")
    assert d.chosen == "small" and d.policy == "pinned" and d.probability == 1.0
    assert "pinned" in d.reason
    d = route(tiny, exclude={"big", "mid"})
    assert d.chosen == "small"


def test_sampling_frequencies_equal_logged_probabilities(tiny):
    router = Router(tiny)
    msgs = [Message("user", "Why does this raise TypeError?")]
    rng = random.Random(7)
    first = router.route(msgs, rng=rng)
    counts = Counter(router.route(msgs, rng=rng).chosen for _ in range(4000))
    for a in first.ranking:
        assert counts[a.agent_id] / 4000 == pytest.approx(a.probability, abs=0.03)


def test_same_seed_same_choice(tiny):
    a = [route(tiny, rng=random.Random(s)).chosen for s in range(30)]
    b = [route(tiny, rng=random.Random(s)).chosen for s in range(30)]
    assert a == b
    assert len(set(a)) > 1  # it does explore


def test_no_collapse_after_a_run_of_good_luck(tiny):
    # The strong agent gets 200 thumbs-up on debugging: it should win most of the time, but every
    # other eligible agent keeps at least its share of the exploration floor.
    for _ in range(200):
        tiny.record_outcome("big", {"code.debugging": 1.0}, 1.0)
    d = route(tiny, lam=0.0)
    floor = tiny.settings.exploration_floor / 3
    assert d.ranking[0].agent_id == "big"
    for a in d.ranking:
        assert a.probability >= floor - 1e-12


def test_bad_ratings_move_traffic_away(tiny):
    before = route(tiny, lam=0.0, policy="greedy").chosen
    for _ in range(40):
        tiny.record_outcome(before, {"code.debugging": 1.0}, 0.0)
    assert route(tiny, lam=0.0, policy="greedy").chosen != before


def test_reason_mentions_the_runner_up_or_exploration(tiny):
    d = route(tiny, policy="greedy", lam=0.0)
    assert "Debugging" in d.reason
    other = [a.name for a in d.ranking if a.agent_id != d.chosen]
    assert any(name in d.reason for name in other)


def test_price_book_is_consulted_when_the_handbook_has_no_price(tiny):
    from dataclasses import replace

    class Book:
        def price(self, model):
            return Price.per_million(2, 4) if model == "gpt-5-mini" else None

    tiny.agents["mid"] = replace(tiny.agents["mid"], price=None)
    d = Router(tiny, prices=Book(), token_counter=FixedCounter(1000)).route([Message("user", "TypeError")], policy="greedy")
    mid = next(a for a in d.ranking if a.agent_id == "mid")
    assert mid.cost_usd == pytest.approx(1000 * 2e-6 + 600 * 4e-6)


def test_a_pin_that_cannot_take_the_turn_is_explained(tiny):
    d = route(tiny, counter=FixedCounter(5000), pin="small", policy="greedy")
    assert d.chosen != "small" and d.policy == "greedy"
    assert d.reason.startswith("pinned small cannot take this turn (conversation (5,000 tokens) exceeds")
    d = route(tiny, pin="ghost", policy="greedy")
    assert "pinned ghost cannot take this turn (not in this handbook)" in d.reason



def _champion_world(tiny, mid_good, mid_bad, exclude=()):
    # big is the proven champion (many ratings everywhere); mid has a short record on debugging.
    tiny.settings = dataclasses.replace(tiny.settings, challenge_z=1.0)
    for skill in ("code.python", "code.debugging", "math.calculus", "chat.general"):
        rate(tiny, "big", skill, 40, 10)
    rate(tiny, "mid", "code.debugging", mid_good, mid_bad)
    return route(tiny, lam=0.0, policy="greedy", exclude=exclude)


def test_a_lucky_short_record_does_not_take_the_turn_from_the_champion(tiny):
    d = _champion_world(tiny, 4, 0)
    scores = {a.agent_id: a for a in d.ranking}
    assert scores["mid"].score > scores["big"].score  # mid's estimate is higher...
    assert d.chosen == "big"  # ...but not by more than its uncertainty
    tiny.settings = dataclasses.replace(tiny.settings, challenge_z=0.0)  # without the safeguard the luckiest estimate wins
    assert route(tiny, lam=0.0, policy="greedy").chosen == "mid"


def test_the_champion_keeps_the_turn_against_a_lucky_short_record_with_two_agents_as_well(tiny):
    d = _champion_world(tiny, 4, 0, exclude={"small"})
    scores = {a.agent_id: a for a in d.ranking}
    assert scores["mid"].score > scores["big"].score
    assert d.chosen == "big"


def test_strong_evidence_does_take_the_turn_from_the_champion(tiny):
    assert _champion_world(tiny, 95, 5).chosen == "mid"


def test_a_cheaper_agent_clear_by_more_than_challenge_z_takes_the_turn(tiny):
    # mid, a middling model elsewhere (so big stays the champion), answers 20 of 21 debugging
    # questions: between one and two standard deviations better than big there. One (the default
    # challenge_z) is the margin a cheaper agent must clear, not two.
    tiny.settings = dataclasses.replace(tiny.settings, challenge_z=1.0)
    for skill in ("code.python", "code.debugging", "math.calculus", "chat.general"):
        rate(tiny, "big", skill, 40, 10)
    rate(tiny, "mid", "math.calculus", 30, 20)
    rate(tiny, "mid", "code.debugging", 20, 1)
    assert route(tiny, lam=0.0, policy="greedy").chosen == "mid"


def test_at_a_high_cost_weight_the_cheap_agent_keeps_the_turn(tiny):
    # The safeguard never pulls a turn back to a dear agent that the cost weight rules out.
    for agent in ("big", "small"):
        rate(tiny, agent, "chat.general", 40, 10)
    d = route(tiny, "hello there, how are you?", lam=1.0, policy="greedy")
    assert d.chosen == "small"


@pytest.mark.parametrize(("wins", "takes"), [(2, False), (4, True)])
def test_a_dearer_agent_needs_half_the_margin_of_a_cheaper_one(tiny, wins, takes):
    # small is the proven, cheap champion (long records in three modes); big has a short, perfect
    # record on chat. At this cost weight big's estimate is higher there, but within its
    # uncertainty. A dearer agent risks the user's money, which lambda prices, more than the answer,
    # so it needs less evidence than a cheaper challenger, but some: two lucky answers are not
    # enough, four are (and would not be for a cheaper agent, or with twice the margin).
    from skillchat.core import router as router_mod

    rate(tiny, "small", "chat.general", 70, 30)
    for skill in ("code.python", "math.calculus"):
        rate(tiny, "small", skill, 80, 20)
    rate(tiny, "big", "chat.general", wins, 0)
    d = route(tiny, "hello there, how are you?", lam=0.1, policy="greedy")
    scores = {a.agent_id: a for a in d.ranking}
    gain = scores["big"].score - scores["small"].score
    assert 0 < gain < tiny.settings.challenge_z * math.hypot(scores["big"].uncertainty, scores["small"].uncertainty)
    assert (d.chosen == "big") is takes
    for margin, big_takes in ((0.0, True), (2 * router_mod._DEARER_MARGIN, False)):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(router_mod, "_DEARER_MARGIN", margin)
            assert (route(tiny, "hello there, how are you?", lam=0.1, policy="greedy").chosen == "big") is big_takes


def test_an_agent_at_the_same_price_needs_the_full_margin(tiny):
    # small is the proven champion; big, here at small's price, has seven answers out of seven on
    # chat: more than half the margin ahead of small there, less than all of it. At the same price
    # a lucky record saves nothing for the risk it brings, so it is held to the full margin.
    tiny.agents["big"] = dataclasses.replace(tiny.agents["big"], price=tiny.agents["small"].price)
    rate(tiny, "small", "chat.general", 88, 12)
    for skill in ("code.python", "math.calculus"):
        rate(tiny, "small", skill, 90, 10)
    rate(tiny, "big", "chat.general", 7, 0)
    d = route(tiny, "hello there, how are you?", lam=0.1, policy="greedy", exclude=("mid",))
    scores = {a.agent_id: a for a in d.ranking}
    z_gain = (scores["big"].score - scores["small"].score) / math.hypot(scores["big"].uncertainty, scores["small"].uncertainty)
    assert 0.5 * tiny.settings.challenge_z < z_gain < tiny.settings.challenge_z
    assert d.chosen == "small"


def test_without_any_known_price_every_cost_reads_zero_and_unknown(tiny):
    for aid in list(tiny.agents):
        tiny.agents[aid] = dataclasses.replace(tiny.agents[aid], price=None, model=f"unknown/{aid}")
    d = route(tiny, lam=1.0, policy="greedy")
    assert all((a.cost_usd, a.cost_norm, a.cost_known) == (0.0, 0.0, False) for a in d.ranking)
    assert d.chosen == route(tiny, lam=0.0, policy="greedy").chosen  # the cost weight has nothing to weigh


def test_gentle_exploration_strays_from_the_best_expected_agent_on_at_most_a_quarter_of_turns(tiny):
    from skillchat.core.router import GENTLE_SHARE

    # With the priors alone Thompson sampling sends most turns away from the best expected agent.
    st = tiny.settings
    plain = {a.agent_id: a.probability for a in route(tiny, "hello there, how are you?", lam=0.2).ranking}
    assert len(plain) >= 3
    d = route(tiny, "hello there, how are you?", lam=0.2, policy="gentle", rng=random.Random(3))
    gentle = {a.agent_id: a.probability for a in d.ranking}
    best = d.best_expected
    assert plain[best] < 1 - GENTLE_SHARE
    assert gentle[best] == pytest.approx(1 - GENTLE_SHARE)
    # The turns that do explore keep Thompson sampling's preferences among the others, and every
    # agent stays reachable.
    others = [a for a in gentle if a != best]
    assert [gentle[a] / plain[a] for a in others] == pytest.approx([GENTLE_SHARE / (1 - plain[best])] * len(others))
    assert min(gentle.values()) >= st.exploration_floor / len(gentle) * GENTLE_SHARE
    assert sum(gentle.values()) == pytest.approx(1.0)
    assert d.policy == "gentle"
    # Drawing another agent under gentle exploration is exploring, and says so.
    draws = (route(tiny, "hello there, how are you?", lam=0.2, policy="gentle", rng=random.Random(s)) for s in range(200))
    drawn = next(x for x in draws if x.chosen != best)
    assert drawn.explored and drawn.reason.startswith("exploring")


def test_gentle_exploration_leaves_a_concentrated_draw_alone(tiny):
    rate(tiny, "big", "chat.general", 90, 10)
    for agent in ("mid", "small"):
        rate(tiny, agent, "chat.general", 30, 70)
    plain = route(tiny, "hello there, how are you?", lam=0.0)
    gentle = route(tiny, "hello there, how are you?", lam=0.0, policy="gentle")
    assert [a.probability for a in gentle.ranking] == pytest.approx([a.probability for a in plain.ranking])


def test_the_most_competent_agent_keeps_a_share_of_draws_at_any_price(tiny):
    # At lambda=10 the dear, clearly strongest agent never wins the cost-weighted draw; the quality
    # floor still sends it its share, so its record stays current.
    for skill in ("code.debugging", "code.python"):
        rate(tiny, "big", skill, 45, 5)
        rate(tiny, "mid", skill, 25, 25)
        rate(tiny, "small", skill, 20, 30)
    st = tiny.settings
    d = route(tiny, lam=10.0)
    big = next(a for a in d.ranking if a.agent_id == "big")
    assert big.probability >= 0.9 * st.quality_floor + st.exploration_floor / 3 - 1e-9
    tiny.settings = dataclasses.replace(st, quality_floor=0.0)
    big = next(a for a in route(tiny, lam=10.0).ranking if a.agent_id == "big")
    assert big.probability < st.exploration_floor / 3 + 0.01


def _greedy(hb, skill, lam=0.0, exclude=()):
    from skillchat.core.inference import profile_from_weights

    return Router(hb).decide(profile_from_weights(hb, {skill: 1.0}), 100, lam=lam, policy="greedy", exclude=exclude)


def test_the_champion_is_the_proven_agent_not_the_best_short_record(tiny):
    # mid's six out of six on chat give it a higher mean than big's long record, but not a surer one.
    rate(tiny, "big", "chat.general", 80, 20)
    rate(tiny, "mid", "chat.general", 6, 0)
    d = _greedy(tiny, "chat.general")
    scores = {a.agent_id: a for a in d.ranking}
    assert scores["mid"].score > scores["big"].score
    assert d.chosen == "big"


def _silent_world(tiny, small_good, differ=None):
    # A prior that rates every agent alike (the bench's): big is the dearest. small has a long
    # record, small_good right of 200 on each of four skills; big three answers, two of them right.
    for aid, a in list(tiny.agents.items()):
        tiny.agents[aid] = dataclasses.replace(a, prior=dataclasses.replace(a.prior, mean=0.5, modes={}, skills={}))
    if differ is not None:  # one agent's prior differs in one place: the prior is no longer silent
        a = tiny.agents["small"]
        tiny.agents["small"] = dataclasses.replace(a, prior=dataclasses.replace(a.prior, **differ))
    for skill in ("code.python", "code.debugging", "math.calculus", "chat.general"):
        rate(tiny, "small", skill, small_good, 200 - small_good)
    rate(tiny, "big", "code.python", 2, 1)
    return tiny


def test_with_a_silent_prior_the_dearest_agent_is_presumed_best_until_a_record_clearly_beats_it(tiny):
    # small answers 60% right over 800 turns, big 2 of 3. On the standing small is ahead, but not by
    # more than big's uncertainty: when only quality counts, the price, the one hint of quality the
    # prior leaves, keeps the turn with big, and the reason does not call big the surer bet.
    from skillchat.core.standing import standing

    _silent_world(tiny, 120)
    fit = standing(tiny)
    assert fit.overall["small"][0] > fit.overall["big"][0] + 0.05
    for skill in ("chat.general", "code.python", "math.calculus"):
        d = _greedy(tiny, skill, exclude=("mid",))
        assert d.chosen == "big", skill
    assert d.reason.startswith("Big keeps the turn until the evidence is clear: Small's estimate at Calculus is higher")
    # Price hints at quality, no more: as soon as cost counts, small's record at its price wins.
    for lam in (0.01, 1.0):
        assert _greedy(tiny, "chat.general", lam=lam, exclude=("mid",)).chosen == "small"


def test_a_record_clearly_better_than_the_dearest_agents_takes_the_crown(tiny):
    _silent_world(tiny, 140)  # 70% right over 800 turns
    assert _greedy(tiny, "chat.general", exclude=("mid",)).chosen == "small"


@pytest.mark.parametrize("differ", [{"mean": 0.501}, {"modes": {"chat": 0.5}}, {"skills": {"chat.general": 0.5}}])
def test_a_prior_that_ranks_the_agents_anywhere_presumes_nothing_about_price(tiny, differ):
    # The prior is then already in each agent's standing: the best proven agent is the champion.
    _silent_world(tiny, 120, differ=differ)
    assert _greedy(tiny, "chat.general", exclude=("mid",)).chosen == "small"


def test_the_presumed_agent_is_the_dearest_eligible_one(tiny):
    # With big out of the turn, mid is the dearest left, and presumed best over small's record.
    _silent_world(tiny, 120)
    rate(tiny, "mid", "code.python", 2, 1)
    assert _greedy(tiny, "chat.general", exclude=("big",)).chosen == "mid"


def test_a_clear_record_on_the_mode_carries_to_a_thin_skill_of_it(tiny):
    # big is the overall champion (strong at math, which is much of the traffic); on code, small has
    # a long, clearly better record. Nobody has been rated on performance work: on that skill
    # alone small's lead is within its uncertainty, but the mode's evidence is clear. (mid, never
    # rated, sits out: its prior alone would make it a fair candidate for code.)
    rate(tiny, "big", "math.calculus", 540, 60)
    rate(tiny, "small", "math.calculus", 20, 80)
    for skill in ("code.python", "code.debugging"):
        rate(tiny, "big", skill, 120, 80)
        rate(tiny, "small", skill, 150, 50)
    d = _greedy(tiny, "code.performance", exclude=("mid",))
    scores = {a.agent_id: a for a in d.ranking}
    gain = scores["small"].score - scores["big"].score
    assert 0 < gain < tiny.settings.challenge_z * math.hypot(scores["small"].uncertainty, scores["big"].uncertainty)
    assert d.chosen == "small"


def test_of_two_agents_clearly_better_on_the_mode_the_better_one_takes_it(tiny):
    # big is the overall champion (math is most of the traffic). On code both mid and small have
    # long records clearly better than big's, mid's better than small's; on performance work, which
    # nobody was rated on, neither is clearly better than the other, so the mode's holder keeps it.
    rate(tiny, "big", "math.calculus", 540, 60)
    rate(tiny, "mid", "math.calculus", 100, 100)
    rate(tiny, "small", "math.calculus", 20, 80)
    for skill in ("code.python", "code.debugging"):
        rate(tiny, "big", skill, 60, 40)
        rate(tiny, "mid", skill, 88, 12)
        rate(tiny, "small", skill, 78, 22)
    assert _greedy(tiny, "code.performance").chosen == "mid"


def test_of_two_agents_clearly_better_on_the_turns_skill_the_better_one_takes_it(tiny):
    # big holds code (mid and small are poor at Python, most of code's traffic), but on debugging
    # both are clearly better than big: the turn goes to the better of the two, not just to one.
    rate(tiny, "big", "math.calculus", 540, 60)
    for agent, python, debugging in (("big", (160, 40), (50, 50)), ("mid", (60, 140), (95, 5)), ("small", (50, 150), (88, 12))):
        rate(tiny, agent, "code.python", *python)
        rate(tiny, agent, "code.debugging", *debugging)
    d = _greedy(tiny, "code.debugging")
    assert d.chosen == "mid"
    assert _greedy(tiny, "code.python").chosen == "big"


@pytest.mark.parametrize(("debugging_wins", "chosen"), [(10, "big"), (20, "mid")])
def test_an_agent_worse_on_the_mode_needs_twice_the_margin_on_the_turns_skill(tiny, debugging_wins, chosen):
    # big holds code; mid is far worse at code overall (Python), with an unbeaten record on
    # debugging. Ten straight wins put mid ahead by more than one margin but less than two: with many
    # agents, someone's short record looks like that by luck. Twenty is a specialist's record.
    rate(tiny, "big", "math.calculus", 540, 60)
    rate(tiny, "big", "code.python", 160, 40)
    rate(tiny, "big", "code.debugging", 30, 20)
    rate(tiny, "mid", "code.python", 60, 140)
    rate(tiny, "mid", "code.debugging", debugging_wins, 0)
    d = _greedy(tiny, "code.debugging", exclude=("small",))
    scores = {a.agent_id: a for a in d.ranking}
    margins = (scores["mid"].score - scores["big"].score) / (
        tiny.settings.challenge_z * math.hypot(scores["mid"].uncertainty, scores["big"].uncertainty))
    assert (1 < margins < 2) if chosen == "big" else margins > 2
    assert d.chosen == chosen


def test_excluded_agents_say_why_and_no_agent_is_a_user_facing_error(tiny):
    from skillchat.errors import SkillchatError

    r = Router(tiny)
    why = {a: f"needs KEY_{a.upper()}" for a in tiny.agents}
    d = r.route([Message("user", "hi")], exclude={a: w for a, w in why.items() if a != "big"}, policy="greedy")
    assert d.chosen == "big"
    assert {a.agent_id: a.excluded for a in d.ranking if not a.eligible} == {a: w for a, w in why.items() if a != "big"}
    with pytest.raises(NoEligibleAgent) as e:
        r.route([Message("user", "hi")], exclude=why)
    assert isinstance(e.value, SkillchatError) and all(w in str(e.value) for w in why.values())


class _NoPrices:
    def price(self, model):
        return None


def test_cost_estimate_smooths_observed_answer_lengths_toward_the_modes_default(tiny):
    from skillchat.core.router import estimate_cost

    mid = tiny.agents["mid"]
    fresh = estimate_cost(tiny, mid, "code", 1000, _NoPrices())
    assert (fresh.usd, fresh.known, fresh.completion_tokens) == (pytest.approx(1000 * 1e-6 + 600 * 3e-6), True, 600)
    tiny.record_cost("mid", "code", 1000, 0, 0.001)  # a provider that reported no answer length
    assert estimate_cost(tiny, mid, "code", 1000, _NoPrices()).completion_tokens == 600
    tiny.costs.clear()
    tiny.record_cost("mid", "code", 1000, 1200, 0.01)
    # One observed answer already counts, against the two pseudo-answers.
    assert estimate_cost(tiny, mid, "code", 1000, _NoPrices()).completion_tokens == pytest.approx(800)
    tiny.record_cost("mid", "code", 1000, 1200, 0.01)
    est = estimate_cost(tiny, mid, "code", 1000, _NoPrices())
    # Two observed answers of 1200 tokens against two pseudo-answers of the default 600.
    assert est.completion_tokens == pytest.approx(900)
    assert est.usd == pytest.approx(1000 * 1e-6 + 900 * 3e-6)


def test_without_a_price_the_cost_is_the_observed_mean_pooled_over_modes_when_few_calls(tiny):
    from skillchat.core.router import estimate_cost

    unpriced = dataclasses.replace(tiny.agents["mid"], price=None)
    assert estimate_cost(tiny, unpriced, "code", 100, _NoPrices()).known is False
    tiny.record_cost("mid", "chat", 100, 100, 0.004)
    tiny.record_cost("mid", "chat", 100, 100, 0.004)
    chat_only = estimate_cost(tiny, unpriced, "code", 100, _NoPrices())
    assert (chat_only.usd, chat_only.known) == (pytest.approx(0.004), True)
    tiny.record_cost("mid", "code", 100, 100, 0.010)
    # One code call, three in all: the code mean shrunk toward the pooled mean with weight 2.
    est = estimate_cost(tiny, unpriced, "code", 100, _NoPrices())
    pooled = (0.004 * 2 + 0.010) / 3
    assert (est.usd, est.known) == (pytest.approx((1 * 0.010 + 2 * pooled) / 3), True)
    assert estimate_cost(tiny, unpriced, "code", 100, _NoPrices()).usd < 0.010


def test_an_unknown_policy_is_refused_not_sampled_under_its_name(tiny):
    from skillchat.core.inference import profile_from_weights

    with pytest.raises(ValueError, match="unknown policy 'compare'"):
        Router(tiny).decide(profile_from_weights(tiny, {"chat.general": 1.0}), 100, policy="compare")
    with pytest.raises(ValueError, match="unknown policy 'nope'"):
        route(tiny, policy="nope")
