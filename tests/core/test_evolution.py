"""Skill evolution: splits fire when outcomes diverge (and only then), merges sum, discovery names."""

from __future__ import annotations

import random

import pytest
from synthetic_log import cells, make_log, topic_text

from skillchat.core.evolution import Retagger, SkillName, TermNamer, interval_z, nearest_child, slugify
from skillchat.core.evolution.discover import discoveries
from skillchat.core.evolution.naming import unique_id
from skillchat.core.evolution.stats import beta_interval, beta_sd
from skillchat.core.evolution.stats import cells as evidence_cells
from skillchat.core.evolution.texts import Texts, clip_example
from skillchat.core.handbook import from_dict, to_dict
from skillchat.core.inference import KeywordInferrer
from skillchat.core.learning import RatedTurn
from skillchat.core.ports import Message
from skillchat.core.rated_log import RatedLog
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


def test_interval_z_is_bonferroni_corrected_over_the_tests_of_a_round():
    # z of the difference at alpha / (2 * tests), divided by sqrt(2) for two intervals of equal width.
    assert interval_z(1) == pytest.approx(2.5758 / 2**0.5, abs=1e-4)
    assert interval_z(10) == pytest.approx(3.2905 / 2**0.5, abs=1e-4)
    assert interval_z(0) == interval_z(1)


def test_beta_intervals_are_of_beta_with_one_success_and_one_failure_added():
    # Beta(4, 2): mean 4/6, variance 4 * 2 / (6**2 * 7).
    sd = (8 / 252) ** 0.5
    assert beta_sd(3.0, 1.0) == pytest.approx(sd)
    assert beta_interval(3.0, 1.0, 2.0) == pytest.approx((4 / 6, 4 / 6 - 2 * sd, 4 / 6 + 2 * sd))


def test_evidence_cells_share_each_turn_among_its_known_skills_with_decay(tiny):
    def turn(agent, skills, score, age=0.0):  # type: ignore[no-untyped-def]
        return RatedTurn("t", agent, "code", skills, score, 1.0, age_days=age)

    log = RatedLog([
        turn("big", {"code.debugging": 0.75, "code.python": 0.25}, 1.0),
        turn("big", {"code.debugging": 1.0}, 0.0, age=30.0),  # one half-life old: counts half
        turn("mid", {"code.debugging": 0.5, "code.gone": 0.5}, 1.0),  # only known skills share the turn
        turn("mid", {"code.debugging": 1.0, "code.python": 0.0}, 0.0),  # a zero weight makes no cell
        turn("gone", {"code.debugging": 1.0}, 1.0),  # an agent no longer in the handbook
        turn("mid", {}, 1.0),
    ])
    assert evidence_cells(tiny, log, 30.0) == {
        "code.debugging": {"big": [0.75, 0.5], "mid": [1.0, 1.0]},
        "code.python": {"big": [0.25, 0.0]},
    }


def test_examples_are_one_line_of_at_most_160_characters():
    assert clip_example(" why  does\nit fail ") == "why does it fail"
    assert clip_example("x" * 160) == "x" * 160
    assert clip_example("x" * 161) == "x" * 159 + "\u2026"


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
    assert len(namer.seen[0][0]) == 5  # the five turns nearest the cluster's centre


def test_no_discovery_from_few_down_ratings(tiny):
    assert relearn(tiny, _fallback_log(n_down_topic=4)).changes == []


def test_term_namer_is_offline_and_valid():
    n = TermNamer().name(["how to bake bread"], ["bake", "bread", "oven"], ["chat"])
    assert n.slug == "bake_bread" and n.name.startswith("Bake") and n.mode is None


def test_term_namer_names_by_three_terms_and_describes_by_six():
    terms = ["bake", "bread", "oven", "flour", "sugar", "cake", "dough"]
    n = TermNamer().name(["how to bake bread"], terms, ["chat"])
    assert n.slug == "bake_bread" and n.name == "Bake / bread / oven"
    assert n.description == "Discovered from your rated turns about: bake, bread, oven, flour, sugar, cake."
    empty = TermNamer().name([], [], ["chat"])
    assert (empty.slug, empty.name) == ("topic", "Topic")
    assert empty.description == "Discovered from your rated turns about: one topic."


def test_slugs_are_lowercase_words_and_at_most_40_characters():
    assert slugify("  Bake & Bread!  ") == "bake_bread"
    assert slugify("x" * 45) == "x" * 40
    assert slugify("!!!") == "topic" and slugify("", default="part") == "part"


def test_a_taken_id_gets_the_next_free_number_from_2():
    taken = {"chat.baking"}
    assert unique_id("chat.baking", taken) == "chat.baking_2"
    assert unique_id("chat.baking", taken) == "chat.baking_3"
    assert unique_id("chat.garden", taken, sep=".") == "chat.garden"
    assert taken == {"chat.baking", "chat.baking_2", "chat.baking_3", "chat.garden"}


def test_evolved_skills_never_collide_with_existing_ids(tiny):
    log = make_log(300, DIVERGENT) + _fallback_log()
    hb = relearn(tiny, log).handbook
    assert len(set(hb.skills)) == len(hb.skills)
    again = relearn(hb, log + [RatedTurn("z", "big", "code", {"code.debugging": 1.0}, 1.0, 1.0, rating_id=99_999)])
    assert len(set(again.handbook.skills)) == len(again.handbook.skills)


def _skill(sid, mode, parent=None, signature=None, **provenance):  # type: ignore[no-untyped-def]
    return {"id": sid, "mode": mode, "name": sid, "description": "", "indicators": [], "examples": [],
            "parent": parent, "signature": signature, "provenance": provenance or None}


@pytest.fixture
def evolved(tiny):  # type: ignore[no-untyped-def]
    """tiny after a few relearns: debugging split twice (one child since merged away), python merged with
    an old skill, and two skills discovered under chat.general (one written by hand, without its threshold)."""
    doc = to_dict(tiny)
    skills = {s["id"]: s for s in doc["skills"]}
    skills["code.debugging"]["provenance"] = {"split_into": ["code.debugging.keyerror", "code.debugging.segfault",
                                                             "code.debugging.gone"]}
    skills["code.python"]["provenance"] = {"merged_from": ["code.scripting"]}
    doc["skills"] += [
        _skill("code.debugging.keyerror", "code", "code.debugging", {"keyerror": 1.0, "dict": 1.0, "json": 1.0},
               split_from="code.debugging",
               split_into=["code.debugging.keyerror.json", "code.debugging.keyerror.dict"]),
        _skill("code.debugging.segfault", "code", "code.debugging", {"segfault": 1.0, "pointer": 1.0, "malloc": 1.0},
               split_from="code.debugging"),
        _skill("code.debugging.keyerror.json", "code", "code.debugging.keyerror", {"json": 1.0, "config": 1.0}),
        _skill("code.debugging.keyerror.dict", "code", "code.debugging.keyerror", {"dict": 1.0, "lookup": 1.0}),
        _skill("chat.baking", "chat", None, {"bake": 1.0, "bread": 1.0, "flour": 1.0, "oven": 1.0},
               discovered_from="chat.general", min_similarity=0.3),
        _skill("chat.garden", "chat", None, {"garden": 1.0, "tomato": 1.0, "soil": 1.0},
               discovered_from="chat.general"),
    ]
    return from_dict(doc)


def _turn(text: str) -> RatedTurn:
    return RatedTurn("t1", "big", "code", {}, 1.0, 1.0, text=text)


def test_retagging_follows_splits_down_to_the_deepest_child(evolved):
    r = Retagger(evolved)
    assert r.needs({"code.debugging": 1.0}) and not r.needs({"code.python": 1.0})
    assert r(_turn("keyerror in my json config"), {"code.debugging": 1.0}) == {"code.debugging.keyerror.json": 1.0}
    # Only the parent's share moves; the other skills keep theirs.
    assert r(_turn("segfault on a null pointer"), {"code.debugging": 0.75, "code.python": 0.25}) == {
        "code.debugging.segfault": 0.75, "code.python": 0.25}
    # A text that resembles no child stays with the parent (which keeps turns that fit neither).
    assert r(_turn("thanks a lot"), {"code.debugging": 1.0}) == {"code.debugging": 1.0}


def test_retagging_adds_a_merged_skills_weight_to_its_survivor(evolved):
    r = Retagger(evolved)
    assert r.needs({"code.scripting": 1.0})
    assert r(_turn("bake bread"), {"code.scripting": 0.25, "code.python": 0.75}) == {"code.python": 1.0}
    assert r(_turn("bake bread"), {"code.scripting": 1.0}) == {"code.python": 1.0}  # not a fallback turn


def test_retagging_moves_fallback_turns_to_the_discovered_skill_they_resemble(evolved):
    r = Retagger(evolved)
    assert r.needs({"chat.general": 1.0})
    assert r(_turn("how to bake bread with flour"), {"chat.general": 1.0}) == {"chat.baking": 1.0}
    # Half the weight on the fallback is enough, as at discovery; only that half moves.
    assert r(_turn("bake bread"), {"chat.general": 0.5, "code.python": 0.5}) == {"chat.baking": 0.5, "code.python": 0.5}
    assert r(_turn("bake bread"), {"chat.general": 0.25, "code.python": 0.75}) == {"chat.general": 0.25, "code.python": 0.75}
    # A discovered skill written without its threshold takes turns from a similarity of 0.2.
    assert r(_turn("my garden tomato plants"), {"chat.general": 1.0}) == {"chat.garden": 1.0}
    # Split children are not discovered skills: a fallback turn about their topic stays where it was.
    assert r(_turn("keyerror in my json config"), {"chat.general": 1.0}) == {"chat.general": 1.0}
    # Nor does a turn logged without its text.
    assert r(_turn(""), {"chat.general": 1.0}) == {"chat.general": 1.0}


def test_nearest_child_is_none_for_a_text_like_no_child_and_the_first_on_a_tie():
    same = {"bake": 1.0}
    assert nearest_child({"garden": 1.0}, [("a", same), ("b", {"oven": 1.0})]) is None
    assert nearest_child({"bake": 1.0}, [("a", same), ("b", same)]) == "a"
    assert nearest_child({"bake": 0.6, "oven": 0.8}, [("a", same), ("b", {"oven": 1.0})]) == "b"






def _fallback_turns(n, score, *, seed, skills=None, topic="recipe", start_id=1, agent="small"):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    return [RatedTurn(f"t{start_id + i}", agent, "chat", dict({"chat.general": 1.0} if skills is None else skills), score, 1.0,
                      text=topic_text(rng, topic), rating_id=start_id + i) for i in range(n)]


def test_discovery_counts_what_no_skill_explains_and_moves_exactly_those_turns(tiny):
    turns = (
        _fallback_turns(30, 0.0, seed=1)  # down-rated baking questions on the fallback
        + _fallback_turns(4, 1.0, seed=2, start_id=100)  # up-rated ones: unexplained, not clustered
        + _fallback_turns(1, 0.5, seed=3, start_id=200)  # a neutral rating is not a down-rating
        + _fallback_turns(1, 0.0, seed=4, start_id=300, skills={"chat.general": 0.5, "code.python": 0.5})
        + _fallback_turns(1, 0.0, seed=5, start_id=400, skills={"chat.general": 0.25, "code.python": 0.75})
        + _fallback_turns(1, 0.0, seed=6, start_id=500, agent="gone")  # an agent no longer in the handbook
        + _fallback_turns(1, 0.0, seed=7, start_id=600, skills={})  # no skill weights at all
        + [RatedTurn("t700", "small", "chat", {"chat.general": 1.0}, 0.0, 1.0, rating_id=700)]  # no text
    )
    log = RatedLog(turns)
    hb, changes = discoveries(tiny, log, Texts(), min_size=12, seed=0, namer=TermNamer(), half_life=None)
    assert len(changes) == 1
    c = changes[0]
    sid = c.created[0]
    ev = c.evidence
    assert ev["unexplained_turns"] == 36 and ev["unexplained_up"] == 5
    assert ev["down_rated_in_cluster"] == 31 and 0.2 <= ev["coherence"] <= 1.0
    assert f"({', '.join(ev['top_terms'][:4])}; mean similarity {ev['coherence']:.2f})" in c.rationale
    assert len(hb.skills[sid].examples) == 3
    # Only the fallback's share moves, and the count is of the turns that moved.
    assert log.weights[35] == {sid: 0.5, "code.python": 0.5}
    assert log.weights[36] == {"chat.general": 0.25, "code.python": 0.75}
    assert c.retagged == sum(1 for w in log.weights if sid in w) > 30


def test_exactly_min_split_down_rated_turns_on_one_topic_are_a_skill(tiny):
    # Under 4 * min_size down-rated turns k-means runs with k = 1, whose cluster has no terms that set it
    # apart from the (same) background: it was dropped as nameless, so no fewer than 48 could be discovered.
    log = RatedLog(_fallback_turns(12, 0.0, seed=1))
    hb, changes = discoveries(tiny, log, Texts(), min_size=12, seed=0, namer=TermNamer(), half_life=None)
    assert [c.kind for c in changes] == ["discover"] and changes[0].evidence["down_rated_in_cluster"] == 12
    assert discoveries(tiny, RatedLog(_fallback_turns(11, 0.0, seed=1)), Texts(), min_size=12, seed=0,
                       namer=TermNamer(), half_life=None) == (tiny, [])


def test_down_rated_turns_that_share_no_topic_are_not_a_skill(tiny):
    # 60 texts of 8 words out of 2,000: k-means cuts them in two, a loose cluster of 49 (mean similarity
    # under 0.2) and a tight one of 11, too small for a skill.
    rng = random.Random(0)
    words = [f"w{i}" for i in range(2000)]
    turns = [RatedTurn(f"t{i}", "small", "chat", {"chat.general": 1.0}, 0.0, 1.0, text=" ".join(rng.sample(words, 8)),
                       rating_id=i) for i in range(60)]
    assert discoveries(tiny, RatedLog(turns), Texts(), min_size=12, seed=0, namer=TermNamer(), half_life=None) == (tiny, [])


def test_a_relearn_discovers_three_topics_a_round_largest_first_and_the_rest_in_the_next(tiny):
    log = []
    for n, topic in enumerate(["keyerror", "segfault", "recipe", "garden"]):  # 30, 34, 38 and 42 turns, all down
        log += make_log(30 + 4 * n, {topic: {"big": 0.0, "mid": 0.0, "small": 0.0}},
                        skills={topic: {"chat.general": 1.0}}, seed=n, start_id=1000 * (n + 1))
    first = relearn(tiny, log, max_rounds=1).changes
    assert [c.evidence["top_terms"][0] for c in first] == ["garden", "cake", "memory"]
    later = relearn(tiny, log).changes
    assert later[:3] == first and any(c.evidence["top_terms"][0] == "keyerror" for c in later[3:])
