"""Skill evolution: splits fire when outcomes diverge (and only then), merges sum, discovery names."""

from __future__ import annotations

import pytest
from synthetic_log import cells, make_log

from skillchat.core.evolution import SkillName, TermNamer, interval_z
from skillchat.core.inference import KeywordInferrer
from skillchat.core.learning import RatedTurn
from skillchat.core.ports import Message
from skillchat.core.relearn import relearn
from skillchat.core.router import Router

DIVERGENT = {  # mid is great on KeyErrors and poor on segfaults; the others do not care
    "keyerror": {"big": 0.8, "mid": 0.95, "small": 0.5},
    "segfault": {"big": 0.8, "mid": 0.15, "small": 0.5},
}
SAME = {
    "keyerror": {"big": 0.8, "mid": 0.6, "small": 0.5},
    "segfault": {"big": 0.8, "mid": 0.6, "small": 0.5},
}


def test_split_fires_when_an_agent_clearly_differs_between_halves(tiny):
    log = make_log(300, DIVERGENT)
    res = relearn(tiny, log)
    splits = [c for c in res.changes if c.kind == "split"]
    assert len(splits) == 1
    c = splits[0]
    assert c.skills == ("code.debugging",) and len(c.created) == 2
    assert c.evidence["agent"] == "mid"
    assert all(n >= 12 for n in c.evidence["per_agent"]["mid"]["n"])
    assert "mid" in c.rationale.lower() or "Mid" in c.rationale
    hb = res.handbook
    kids = [hb.skills[s] for s in c.created]
    assert all(k.parent == "code.debugging" and k.signature and k.provenance["split_from"] == "code.debugging" for k in kids)
    assert hb.skills["code.debugging"].provenance["split_into"] == list(c.created)
    # The history moved to the children: mid's rates there are far apart.
    rates = []
    for k in kids:
        s, f = hb.evidence.skill("mid", k.id)
        rates.append(s / (s + f))
    assert max(rates) > 0.8 and min(rates) < 0.3
    assert hb.evidence.skill("mid", "code.debugging") == (0.0, 0.0)
    assert c.retagged == 300 and res.counts.retagged == 300


def test_a_split_survives_the_next_relearn_and_maps_new_turns(tiny):
    log = make_log(300, DIVERGENT)
    first = relearn(tiny, log).handbook
    more = make_log(60, DIVERGENT, seed=5, start_id=1000)  # still logged under the parent skill
    second = relearn(first, log + more)
    assert second.changes == [] and list(second.handbook.skills) == list(first.skills)
    assert second.handbook.evidence.total() == pytest.approx(360)
    assert second.handbook.evidence.skill("mid", "code.debugging") == (0.0, 0.0)


def test_inference_finds_the_children(tiny):
    hb = relearn(tiny, make_log(300, DIVERGENT)).handbook
    kid = next(s for s in hb.skills.values() if s.parent == "code.debugging" and "segfault" in (s.provenance or {})["top_terms"])
    prof = KeywordInferrer(hb).infer([Message("user", "segfault when I malloc a null pointer, core dump")])
    assert kid.id in prof.weights()
    Router(hb).route([Message("user", "segfault in malloc")])  # routes without error


def test_no_split_when_outcomes_do_not_diverge(tiny):
    res = relearn(tiny, make_log(1200, SAME, seed=3))
    assert [c for c in res.changes if c.kind == "split"] == []


@pytest.mark.parametrize("seed", range(6))
def test_no_split_by_chance_on_many_seeds(tiny, seed):
    res = relearn(tiny, make_log(400, SAME, seed=100 + seed))
    assert [c.kind for c in res.changes] == []


def test_no_split_below_the_minimum_sample(tiny):
    res = relearn(tiny, make_log(40, DIVERGENT), min_split=12)  # ~6 mid turns per side
    assert res.changes == []
    res = relearn(tiny, make_log(300, DIVERGENT), min_split=80)
    assert [c for c in res.changes if c.kind == "split"] == []


def test_interval_width_grows_with_the_number_of_tests():
    assert interval_z(1, alpha=0.2) == pytest.approx(1.6449, abs=1e-3)  # floor: a 90% interval
    assert interval_z(100) > interval_z(10) > interval_z(3) > 2.0


def _two_skills(n, rates_a, rates_b, seed=0):  # type: ignore[no-untyped-def]
    a = make_log(n, {"keyerror": rates_a}, skills={"keyerror": {"code.performance": 1.0}}, seed=seed)
    b = make_log(n, {"keyerror": rates_b}, skills={"keyerror": {"code.python": 1.0}}, seed=seed + 1, start_id=n + 1)
    return a + b


def test_merge_sums_the_evidence_of_indistinguishable_skills(tiny):
    rates = {"big": 0.9, "mid": 0.5, "small": 0.2}
    log = _two_skills(3000, rates, rates)
    separate = relearn(tiny, log, evolve=False).handbook
    res = relearn(tiny, log)
    merges = [c for c in res.changes if c.kind == "merge"]
    assert len(merges) == 1
    keep, drop = merges[0].skills
    assert {keep, drop} == {"code.performance", "code.python"} and merges[0].removed == (drop,)
    hb = res.handbook
    assert drop not in hb.skills and drop in hb.skills[keep].provenance["merged_from"]
    for agent in ("big", "mid", "small"):
        sa, fa = separate.evidence.skill(agent, "code.performance")
        sb, fb = separate.evidence.skill(agent, "code.python")
        assert hb.evidence.skill(agent, keep) == pytest.approx((sa + sb, fa + fb))  # summed, not averaged
    assert hb.evidence.total() == pytest.approx(6000)
    # Indicators of the removed skill now point at the survivor.
    assert set(tiny.skills[drop].indicators) <= set(hb.skills[keep].indicators)
    # A later relearn maps turns logged under the removed id onto the survivor.
    again = relearn(hb, log)
    assert again.changes == [] and cells(again.handbook) == cells(hb)


def test_empty_skills_are_never_merged(tiny):
    log = make_log(100, {"keyerror": {"big": 0.8, "mid": 0.6, "small": 0.5}})  # only code.debugging has data
    res = relearn(tiny, log)
    assert [c for c in res.changes if c.kind == "merge"] == []
    assert set(res.handbook.skills) == set(tiny.skills)


def test_little_data_is_not_enough_to_merge(tiny):
    rates = {"big": 0.9, "mid": 0.5, "small": 0.2}
    res = relearn(tiny, _two_skills(60, rates, rates), min_split=1000)
    assert res.changes == []


def test_no_merge_when_an_agent_tells_the_skills_apart(tiny):
    log = _two_skills(1500, {"big": 0.9, "mid": 0.9, "small": 0.2}, {"big": 0.9, "mid": 0.3, "small": 0.2})
    res = relearn(tiny, log, min_split=1000)
    assert res.changes == []


def _fallback_log(n_down_topic=40, seed=0):  # type: ignore[no-untyped-def]
    # Baking questions fall to chat.general and small does badly on them; garden chat goes fine.
    bake = make_log(n_down_topic * 2, {"recipe": {"big": 0.5, "mid": 0.5, "small": 0.05}},
                    skills={"recipe": {"chat.general": 1.0}}, seed=seed)
    garden = make_log(n_down_topic * 2, {"garden": {"big": 0.95, "mid": 0.95, "small": 0.95}},
                      skills={"garden": {"chat.general": 1.0}}, seed=seed + 1, start_id=10_000)
    return bake + garden


def test_discovery_from_down_rated_unexplained_turns(tiny):
    res = relearn(tiny, _fallback_log())
    found = [c for c in res.changes if c.kind == "discover"]
    assert len(found) == 1
    sid = found[0].created[0]
    sk = res.handbook.skills[sid]
    assert sk.mode == "chat" and sk.signature and sk.provenance["discovered_from"] == "chat.general"
    baking = ("recipe", "bake", "oven", "flour", "sugar", "cake", "bread", "dough", "butter")
    assert any(t in sk.provenance["top_terms"] for t in baking)
    assert found[0].retagged >= 60
    assert res.handbook.evidence.skill("small", sid)[1] > 10  # small's failures moved there
    # The same turns map to it again next time; nothing new is discovered.
    again = relearn(res.handbook, _fallback_log())
    assert again.changes == [] and cells(again.handbook) == cells(res.handbook)


def test_discovery_uses_the_namer_it_is_given(tiny):
    class Namer:
        def __init__(self) -> None:
            self.seen = []

        def name(self, texts, top_terms, modes):  # type: ignore[no-untyped-def]
            self.seen.append((list(texts), list(top_terms), list(modes)))
            return SkillName("baking", "Baking", "Recipes and baking.", "chat")

    namer = Namer()
    res = relearn(tiny, _fallback_log(), namer=namer)
    assert "chat.baking" in res.handbook.skills and res.handbook.skills["chat.baking"].name == "Baking"
    assert namer.seen and namer.seen[0][2] == list(tiny.modes)


def test_no_discovery_from_few_down_ratings(tiny):
    assert relearn(tiny, _fallback_log(n_down_topic=4)).changes == []


def test_term_namer_is_offline_and_valid():
    n = TermNamer().name(["how to bake bread"], ["bake", "bread", "oven"], ["chat"])
    assert n.slug == "bake_bread" and n.name.startswith("Bake") and n.mode is None


def test_evolved_skills_never_collide_with_existing_ids(tiny):
    log = make_log(300, DIVERGENT) + _fallback_log()
    hb = relearn(tiny, log).handbook
    assert len(set(hb.skills)) == len(hb.skills)
    again = relearn(hb, log + [RatedTurn("z", "big", "code", {"code.debugging": 1.0}, 1.0, 1.0, rating_id=99_999)])
    assert len(set(again.handbook.skills)) == len(again.handbook.skills)
