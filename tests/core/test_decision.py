"""What a routing decision says about its turn: the agent to fall back on, the cost shown, whether
the draw explored, and decisions read back from traces written by earlier versions."""

from __future__ import annotations

from dataclasses import replace

from skillchat.core.decision import AgentScore, RoutingDecision
from skillchat.core.inference import ActiveSkill


def score(agent_id: str, s: float, *, cost: float = 0.01, eligible: bool = True) -> AgentScore:
    return AgentScore(agent_id=agent_id, name=agent_id.title(), model=f"openai/{agent_id}", competence=s + 0.1,
                      uncertainty=0.05, cost_usd=cost, cost_known=True, cost_norm=cost / 0.04, score=s,
                      probability=0.0 if not eligible else 0.25, eligible=eligible,
                      excluded=None if eligible else "conversation exceeds its context window")


def decision(chosen: str = "b", policy: str = "thompson", best_expected: str = "a") -> RoutingDecision:
    return RoutingDecision(
        handbook="general", handbook_version=3, mode="code",
        skills=(ActiveSkill("code.python", 0.75, ("python",)), ActiveSkill("code.debugging", 0.25)),
        confident=True,
        # Ranked by score, the excluded agent last, as the router ranks them.
        ranking=(score("a", 0.8, cost=0.04), score("b", 0.7, cost=0.002), score("c", 0.6), score("d", 0.9, eligible=False)),
        chosen=chosen, probability=0.2, policy=policy, lam=0.1, prompt_tokens=42, reason="", best_expected=best_expected,
    )


def test_fallbacks_are_the_other_eligible_agents_best_first():
    assert decision(chosen="b").fallbacks() == ["a", "c"]
    assert decision(chosen="a").fallbacks() == ["b", "c"]


def test_the_estimated_cost_is_the_chosen_agents():
    assert decision(chosen="b").estimated_cost == 0.002
    assert decision(chosen="a").estimated_cost == 0.04


def test_skill_weights_map_each_active_skill_to_its_weight():
    assert decision().skill_weights() == {"code.python": 0.75, "code.debugging": 0.25}


def test_a_draw_explores_only_when_it_took_a_worse_agent_than_the_best_expected():
    assert decision(chosen="b").explored
    assert decision(chosen="b", policy="gentle").explored
    assert not decision(chosen="a").explored
    for policy in ("greedy", "pinned"):
        assert not decision(chosen="b", policy=policy).explored
    # A drawn agent scoring the same as the best one is not exploring: greedy could have taken it.
    tied = decision(chosen="b")
    tied = replace(tied, ranking=(tied.ranking[0], replace(tied.ranking[1], score=0.8), *tied.ranking[2:]))
    assert not tied.explored


def test_best_is_the_best_expected_agent_or_else_the_top_eligible_one():
    assert decision(best_expected="c").best.agent_id == "c"
    # Decisions stored before the best expected agent was recorded: the top of the ranking.
    assert decision(best_expected="").best.agent_id == "a"
    # A best expected agent missing from the ranking (a handbook edited since) is not trusted.
    assert decision(best_expected="gone").best.agent_id == "a"


def test_a_decision_reads_back_from_its_dict():
    d = decision()
    assert RoutingDecision.from_dict(d.to_dict()) == d


def test_a_decision_stored_before_eligibility_and_evidence_were_recorded_reads_back():
    stored = decision().to_dict()
    for a in stored["ranking"]:
        del a["eligible"], a["excluded"]
    for s in stored["skills"]:
        del s["evidence"]
    del stored["best_expected"]
    d = RoutingDecision.from_dict(stored)
    assert all(a.eligible and a.excluded is None for a in d.ranking)
    assert d.skills[0] == ActiveSkill("code.python", 0.75)
    assert d.best.agent_id == "a" and d.fallbacks() == ["a", "c", "d"]
