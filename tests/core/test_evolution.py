"""Skill evolution: splits fire when outcomes diverge (and only then), merges sum, discovery names."""

from __future__ import annotations

import math
import random

import pytest
from synthetic_log import cells, make_log, topic_text

from skillchat.core.evolution import Retagger, SkillName, TermNamer, interval_z, nearest_child, slugify
from skillchat.core.evolution.discover import discoveries
from skillchat.core.evolution.merge import MERGE_MARGIN, merges
from skillchat.core.evolution.naming import unique_id
from skillchat.core.evolution.split import splits
from skillchat.core.evolution.stats import beta_interval, beta_sd
from skillchat.core.evolution.stats import cells as evidence_cells
from skillchat.core.evolution.texts import Texts, clip_example
from skillchat.core.handbook import from_dict, to_dict
from skillchat.core.inference import KeywordInferrer
from skillchat.core.learning import RatedTurn
from skillchat.core.ports import Message
from skillchat.core.rated_log import RatedLog, Reporter
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


def _rated(counts, extra=()):  # type: ignore[no-untyped-def]
    """A log from {skill: {agent: (successes, failures)}}: one text-less turn per rating, all weight on the skill."""
    turns = list(extra)
    for skill, per_agent in counts.items():
        for agent, (s, f) in per_agent.items():
            for k in range(s + f):
                n = len(turns) + 1
                turns.append(RatedTurn(f"t{n}", agent, "code", {skill: 1.0}, 1.0 if k < s else 0.0, 1.0, rating_id=n))
    return RatedLog(turns)


def _merge(hb, counts, *, min_split=12, margin=MERGE_MARGIN, extra=()):  # type: ignore[no-untyped-def]
    log = _rated(counts, extra)
    hb, changes = merges(hb, log, evidence_cells(hb, log, None), min_split=min_split, margin=margin)
    return hb, changes, log


PERF, PY = "code.performance", "code.python"  # siblings of mode code; PERF sorts first
EVEN = {"big": (100, 100), "mid": (100, 100)}  # 90% interval of the difference: 0 +- 1.645 * 0.0496 = +-0.082


def test_rates_agree_within_the_default_margin_of_0_12_only_with_enough_turns(tiny):
    # 30 turns a side at 50%: sd of the difference hypot(0.087, 0.087) = 0.123, so the 90% interval is +-0.20,
    # wider than +-0.12 although both agents have min_split turns on both; at 200 a side it is +-0.082.
    few = _rated({s: {"big": (15, 15), "mid": (15, 15)} for s in (PERF, PY)}).turns
    assert relearn(tiny, few, min_split=12).changes == []
    many = _rated({s: EVEN for s in (PERF, PY)}).turns
    assert [c.kind for c in relearn(tiny, many, min_split=12).changes] == ["merge"]


def test_a_merge_needs_two_agents_with_min_split_turns_on_both_skills(tiny):
    # mid's 50/50 on each side: interval 0 +- 1.645 * 0.070 = +-0.115, within 0.12, at exactly min_split turns.
    hb, changes, _ = _merge(tiny, {s: {"big": (100, 100), "mid": (50, 50)} for s in (PERF, PY)}, min_split=100)
    assert [c.skills for c in changes] == [(PERF, PY)] and changes[0].evidence["agents_with_data"] == 2
    # One turn fewer: mid's interval (+-0.115) still agrees, but on 99 turns, so only big counts.
    _, changes, _ = _merge(tiny, {s: {"big": (100, 100), "mid": (50, 49)} for s in (PERF, PY)}, min_split=100)
    assert changes == []


def test_merge_evidence_gives_each_agents_posterior_rates_and_the_largest_gap(tiny):
    # small: Beta(1 + 2, 1 + 10) against Beta(1 + 7, 1 + 5): means 3/14 and 8/14, 2.15 sd apart, under the
    # 2.39 of 95% corrected for 3 agents; not within the margin, so only big and mid count as equal.
    _, changes, _ = _merge(tiny, {PERF: {**EVEN, "small": (2, 10)}, PY: {**EVEN, "small": (7, 5)}})
    ev = changes[0].evidence
    assert ev["agents_with_data"] == 2 and ev["margin"] == MERGE_MARGIN
    assert ev["max_abs_diff"] == pytest.approx(5 / 14)
    assert ev["per_agent"]["small"] == pytest.approx(
        {"rate_a": 3 / 14, "rate_b": 8 / 14, "n_a": 12, "n_b": 12, "diff_sd": math.hypot(beta_sd(2, 10), beta_sd(7, 5)),
         "equivalent": False})
    assert ev["per_agent"]["big"] == pytest.approx(
        {"rate_a": 0.5, "rate_b": 0.5, "n_a": 200, "n_b": 200, "diff_sd": math.hypot(beta_sd(100, 100), beta_sd(100, 100)),
         "equivalent": True})


def test_an_agent_tells_two_skills_apart_at_95_percent_corrected_for_the_agents(tiny):
    # 3 agents: z = inv_cdf(1 - 0.05 / 6) = 2.394. small at 0/12 against 5/12 is 2.48 sd apart: blocked
    # (it would not be at z = 2.54 or more); 2/12 against 7/12 is 2.15 sd apart: merged (it would not be at 1.96).
    _, changes, _ = _merge(tiny, {PERF: {**EVEN, "small": (0, 12)}, PY: {**EVEN, "small": (5, 7)}})
    assert changes == []
    _, changes, _ = _merge(tiny, {PERF: {**EVEN, "small": (2, 10)}, PY: {**EVEN, "small": (7, 5)}})
    assert len(changes) == 1
    # One agent: z = 1.96. 300/600 against 335/600 is 2.03 sd apart, although within the margin (0.105).
    doc = to_dict(tiny)
    doc["agents"] = [a for a in doc["agents"] if a["id"] == "small"]
    alone = from_dict(doc)
    assert _merge(alone, {PERF: {"small": (300, 300)}, PY: {"small": (335, 265)}})[1] == []
    assert len(_merge(alone, {PERF: {"small": (300, 300)}, PY: {"small": (320, 280)}})[1]) == 1


@pytest.mark.parametrize(("perf", "py"), [((0, 1), (40, 0)), ((40, 0), (0, 1))])
def test_one_rated_turn_of_an_agent_can_tell_two_skills_apart(tiny, perf, py):
    # small failed its one turn on one skill and succeeded on all 40 of the other: Beta(1, 2) against Beta(41, 1),
    # means 1/3 and 41/42, 2.71 sd apart: more than 2.39.
    _, changes, _ = _merge(tiny, {PERF: {**EVEN, "small": perf}, PY: {**EVEN, "small": py}})
    assert changes == []


@pytest.mark.parametrize("side", [PERF, PY])
def test_an_agent_rated_on_only_one_of_two_skills_is_left_out_of_the_merge_test(tiny, side):
    counts = {PERF: dict(EVEN), PY: dict(EVEN)}
    counts[side]["small"] = (0, 50)
    _, changes, _ = _merge(tiny, counts)
    assert len(changes) == 1
    assert set(changes[0].evidence["per_agent"]) == {"big", "mid"} and changes[0].evidence["max_abs_diff"] == 0.0


@pytest.mark.parametrize(("perf", "py", "keep"), [((20, 180), (30, 270), PY), ((30, 270), (20, 180), PERF)])
def test_the_skill_with_more_rated_turns_survives_a_merge(tiny, perf, py, keep):
    # Rates 21/202 and 31/302 per agent; 400 against 600 turns, whichever comes first by id.
    hb, changes, _ = _merge(tiny, {PERF: {"big": perf, "mid": perf}, PY: {"big": py, "mid": py}})
    drop = PY if keep == PERF else PERF
    assert [(c.skills, c.removed) for c in changes] == [((keep, drop), (drop,))]
    assert keep in hb.skills and drop not in hb.skills


def test_the_closest_pair_merges_first_and_a_skill_merges_once_a_round(tiny):
    # PERF and PY are identical; debugging differs a little from both (within the margin): PERF and PY merge,
    # and debugging, whose partners are taken, waits for the next round.
    near = {"big": (104, 96), "mid": (100, 100)}
    _, changes, _ = _merge(tiny, {"code.debugging": near, PERF: EVEN, PY: EVEN})
    assert [c.skills for c in changes] == [(PERF, PY)] and changes[0].evidence["max_abs_diff"] == 0.0
    # Three skills at exactly the same rates (0.5) on 400, 600 and 480 turns: a tie, so the first two by id merge.
    _, changes, _ = _merge(tiny, {"code.debugging": EVEN, PERF: {"big": (150, 150), "mid": (150, 150)},
                                  PY: {"big": (120, 120), "mid": (120, 120)}})
    assert [c.skills for c in changes] == [(PERF, "code.debugging")]


def test_a_merge_moves_the_removed_skills_weight_to_the_survivor_and_counts_those_turns(tiny):
    mixed = [RatedTurn("m1", "big", "code", {PY: 0.5, PERF: 0.5}, 1.0, 1.0),
             RatedTurn("m2", "big", "code", {PY: 0.25, "code.debugging": 0.75}, 1.0, 1.0)]
    hb, changes, log = _merge(tiny, {PERF: {"big": (150, 150), "mid": (150, 150)}, PY: EVEN}, extra=mixed)
    assert [c.skills for c in changes] == [(PERF, PY)]
    assert log.weights[0] == {PERF: 1.0} and log.weights[1] == {PERF: 0.25, "code.debugging": 0.75}
    assert all(w == {PERF: 1.0} for w in log.weights[2:])
    assert changes[0].retagged == 2 + 400  # the mixed turns and PY's own


def test_a_skill_other_skills_name_as_parent_is_never_merged(tiny):
    doc = to_dict(tiny)
    next(s for s in doc["skills"] if s["id"] == PERF)["parent"] = PY  # a hand-written hierarchy, no split
    _, changes, _ = _merge(from_dict(doc), {"code.debugging": EVEN, PY: EVEN})
    assert changes == []


def test_a_merged_skill_keeps_twelve_examples_and_the_removed_skills_terms(tiny):
    doc = to_dict(tiny)
    skills = {s["id"]: s for s in doc["skills"]}
    skills[PERF]["examples"] = [f"perf {i}" for i in range(8)]
    skills[PY]["examples"] = [f"py {i}" for i in range(8)]
    # A discovered skill carries a signature; the survivor has none, so it takes the 8 heaviest terms (ties by term).
    sig = {"zeta": 0.5, "alpha": 0.5, "gamma": 0.9, "beta": 0.9, "eta": 0.3, "delta": 0.7, "iota": 0.1, "theta": 0.2,
           "kappa": 0.05, "epsilon": 0.6}
    doc["skills"].append(_skill("code.async", "code", None, sig, discovered_from="chat.general"))
    hb = from_dict(doc)
    hb, changes, _ = _merge(hb, {PERF: EVEN, PY: EVEN})
    assert list(hb.skills[PERF].examples) == [f"perf {i}" for i in range(8)] + [f"py {i}" for i in range(4)]
    hb, changes, _ = _merge(from_dict(doc), {PY: {"big": (150, 150), "mid": (150, 150)}, "code.async": EVEN})
    assert [c.skills for c in changes] == [(PY, "code.async")]
    assert hb.skills[PY].examples[-1] == "beta gamma delta epsilon alpha zeta eta theta"
    assert hb.skills[PY].signature is None
    # The other way round, the survivor keeps its own signature and gains no example.
    hb, changes, _ = _merge(from_dict(doc), {PY: EVEN, "code.async": {"big": (150, 150), "mid": (150, 150)}})
    assert [c.skills for c in changes] == [("code.async", PY)]
    assert hb.skills["code.async"].signature == sig
    assert list(hb.skills["code.async"].examples) == [f"py {i}" for i in range(8)]


def _said(counts, *, skill="code.debugging", weight=None, seed=0, start=0):  # type: ignore[no-untyped-def]
    """Turns with texts from {topic: {agent: (successes, failures)}}, weighted on `skill` (or `weight`)."""
    rng = random.Random(seed)
    turns = []
    for topic, per_agent in counts.items():
        for agent, (s, f) in per_agent.items():
            for k in range(s + f):
                n = start + len(turns) + 1
                turns.append(RatedTurn(f"t{n}", agent, "code", dict(weight or {skill: 1.0}), 1.0 if k < s else 0.0, 1.0,
                                       text=topic_text(rng, topic), rating_id=n))
    return turns


def _split(hb, turns, *, min_split=12):  # type: ignore[no-untyped-def]
    log = RatedLog(turns)
    hb, changes = splits(hb, log, evidence_cells(hb, log, None), Texts(), min_split=min_split, seed=0, half_life=None,
                         report=Reporter(None, None), tried={})
    return hb, changes, log


def test_exactly_min_split_turns_of_an_agent_on_each_side_is_enough_to_split(tiny):
    # mid alone, 24 turns: Beta(12, 2) against Beta(2, 12) at z = interval_z(1) = 1.82: 0.69 to 1 and 0 to 0.31.
    _, changes, _ = _split(tiny, _said({"keyerror": {"mid": (11, 1)}, "segfault": {"mid": (1, 11)}}))
    assert [c.kind for c in changes] == ["split"] and sorted(changes[0].evidence["per_agent"]["mid"]["n"]) == [12, 12]
    # One turn fewer on one side: no split, though big's 24 turns make the skill a candidate (and split nothing).
    turns = _said({"keyerror": {"mid": (12, 0), "big": (6, 6)}, "segfault": {"mid": (0, 11), "big": (6, 6)}})
    _, changes, _ = _split(tiny, turns)
    assert changes == []


def test_a_turn_left_with_part_of_its_weight_counts_whole_in_the_split_test_as_in_the_evidence(tiny):
    # A skill deleted by hand from the handbook file: re-tagging drops its half, and code.debugging's 0.5 is all the
    # turn's known weight, so the turn is a member and counts as one rated turn on its side.
    _, changes, _ = _split(tiny, _said({"keyerror": {"mid": (12, 0)}, "segfault": {"mid": (0, 12)}},
                                       weight={"code.debugging": 0.5}))
    assert [c.kind for c in changes] == ["split"] and changes[0].evidence["per_agent"]["mid"]["n"] == [12, 12]


def test_split_evidence_counts_each_agents_turns_per_side_by_their_weight_on_the_skill(tiny):
    half = {"code.debugging": 0.5, "code.python": 0.5}
    turns = (
        _said({"keyerror": {"mid": (11, 1)}, "segfault": {"mid": (1, 11), "big": (2, 1)}})
        + _said({"keyerror": {"small": (3, 1)}}, weight=half, seed=1, start=100)  # half a turn each
        + _said({"keyerror": {"small": (4, 0)}}, weight={"code.debugging": 0.4, "code.python": 0.6}, seed=2, start=200)
        + _said({"keyerror": {"gone": (3, 0)}}, seed=3, start=300)  # an agent no longer in the handbook
        + [RatedTurn("t400", "mid", "code", {"code.debugging": 1.0}, 1.0, 1.0, rating_id=400)]  # no text
    )
    _, changes, log = _split(tiny, turns)
    ev = changes[0].evidence
    key = changes[0].created.index(next(iter(log.weights[0])))  # the side the first keyerror turn went to
    seg = 1 - key
    assert ev["sizes"][key] == 12 + 4 and ev["sizes"][seg] == 12 + 3  # members hold at least half their weight here
    assert set(ev["per_agent"]) == {"big", "mid", "small"}
    small, big, mid = ev["per_agent"]["small"], ev["per_agent"]["big"], ev["per_agent"]["mid"]
    assert small["n"][key] == 2.0 and small["n"][seg] == 0.0 and big["n"][seg] == 3 and big["n"][key] == 0.0
    # Beta(1 + 1.5, 1 + 0.5) and Beta(1, 1).
    assert small["rates"][key] == pytest.approx(2.5 / 4) and small["rates"][seg] == 0.5
    assert mid["rates"][key] == pytest.approx(12 / 14) and mid["rates"][seg] == pytest.approx(2 / 14)
    assert mid["separated"] and not small["separated"] and not big["separated"]
    # mid, big and small have cells on code.debugging: 3 tests, z = inv_cdf(1 - 0.01 / 6) / sqrt(2).
    assert ev["tests"] == 3 and ev["z"] == pytest.approx(interval_z(3)) and ev["min_split"] == 12


def test_the_agent_whose_halves_lie_furthest_apart_is_named_and_the_first_by_id_on_a_tie(tiny):
    # small's 9/3 against 3/9 is not separated at z = 2.07 (0.47 to 0.96 and 0.05 to 0.53), though it has the turns.
    turns = _said({"keyerror": {"big": (12, 0), "mid": (12, 0), "small": (9, 3)},
                   "segfault": {"big": (0, 12), "mid": (0, 12), "small": (3, 9)}})
    _, changes, _ = _split(tiny, turns)
    per = changes[0].evidence["per_agent"]
    assert changes[0].evidence["agent"] == "big" and per["mid"]["separated"] and not per["small"]["separated"]
    turns = _said({"keyerror": {"big": (10, 2), "small": (12, 0)}, "segfault": {"big": (2, 10), "small": (0, 12)}})
    assert _split(tiny, turns)[1][0].evidence["agent"] == "small"


def test_split_children_are_named_after_their_topics_and_carry_the_evidence(tiny):
    hb, changes, log = _split(tiny, _said({"keyerror": {"mid": (12, 0)}, "segfault": {"mid": (0, 13)}}))
    c = changes[0]
    key = c.created.index(next(iter(log.weights[0])))  # the side the first keyerror turn went to
    n = [12, 13] if key == 0 else [13, 12]
    kids = [hb.skills[s] for s in c.created]
    terms = [k.provenance["top_terms"] for k in kids]
    assert all(len(t) == 8 for t in terms) and c.evidence["top_terms"] == [terms[0][:6], terms[1][:6]]
    for kid, top in zip(kids, terms, strict=True):
        assert kid.id == f"code.debugging.{slugify('_'.join(top[:2]))}" and kid.mode == "code"
        assert kid.name == f"Debugging: {', '.join(top[:3])}"
        assert kid.description == (f"Find why code fails from errors or tracebacks. (Split from Debugging: turns about "
                                   f"{', '.join(top[:6])}.)")
        assert kid.provenance["version"] == tiny.version
        assert kid.provenance["rationale"] == c.rationale and len(kid.examples) == 3
    assert [k.provenance["turns"] for k in kids] == n == c.evidence["sizes"]
    assert all("keyerror" in e or "dict" in e or "json" in e or "key" in e for e in kids[key].examples)
    rates = ["93%", "7%"] if key == 0 else ["7%", "93%"]  # Beta(13, 1) and Beta(1, 14)
    assert c.rationale == (
        f"Mid succeeds {rates[0]} of the time on 'Debugging' turns about {', '.join(terms[0][:3])} but {rates[1]} on "
        f"those about {', '.join(terms[1][:3])} ({n[0]} vs {n[1]} rated turns; credible intervals at z=1.82, "
        f"corrected for 1 tests, do not overlap)")


def test_a_split_child_splits_again_under_its_roots_name_and_a_split_parent_does_not(tiny):
    doc = to_dict(tiny)
    next(s for s in doc["skills"] if s["id"] == "code.debugging")["provenance"] = {"split_into": ["code.debugging.errors"]}
    doc["skills"].append(_skill("code.debugging.errors", "code", "code.debugging", {"error": 1.0}, split_from="code.debugging"))
    divergent = {"keyerror": {"mid": (12, 0)}, "segfault": {"mid": (0, 12)}}
    turns = _said(divergent, skill="code.debugging.errors") + _said(divergent, seed=1, start=100)
    hb, changes, _ = _split(from_dict(doc), turns)
    assert [c.skills for c in changes] == [("code.debugging.errors",)]
    for cid in changes[0].created:
        kid = hb.skills[cid]
        assert cid.startswith("code.debugging.") and cid.count(".") == 2 and kid.parent == "code.debugging.errors"
        assert kid.name.startswith("Debugging: ") and "(Split from code.debugging.errors: " in kid.description


def test_turns_that_all_read_the_same_are_not_split(tiny):
    turns = [RatedTurn(f"t{i}", "mid", "code", {"code.debugging": 1.0}, float(i % 2), 1.0, text="why does it crash",
                       rating_id=i) for i in range(1, 41)]
    assert _split(tiny, turns)[1] == []


def test_a_discovered_skill_merged_into_a_plain_one_still_takes_its_fallback_turns_next_time(tiny):
    # chat.baking was discovered from chat.general; chat.cooking is written by hand. Their rates agree (big 91/102
    # against 181/202, mid 51/102 against 101/202: within +-0.07 and +-0.10), so baking merges into cooking, which
    # has more turns. The baking questions were logged under chat.general: the next relearn must map them to
    # cooking again. It left them on chat.general, whose down-rated turns it then discovered as new skills.
    baking = {t: 1.0 for t in ("recip", "bake", "oven", "flour", "sugar", "cake", "bread", "dough", "butter")}
    doc = to_dict(tiny)
    doc["skills"] += [
        {**_skill("chat.cooking", "chat"), "indicators": ["cook"]},
        _skill("chat.baking", "chat", None, baking, discovered_from="chat.general"),
    ]
    log = (_said({"recipe": {"big": (90, 10), "mid": (50, 50)}}, weight={"chat.general": 1.0})
           + _said({"garden": {"big": (180, 20), "mid": (100, 100)}}, skill="chat.cooking", seed=1, start=1000))
    first = relearn(from_dict(doc), log)
    assert [(c.kind, c.skills) for c in first.changes] == [("merge", ("chat.cooking", "chat.baking"))]
    assert first.handbook.evidence.skill("mid", "chat.cooking") == (150.0, 150.0)
    again = relearn(first.handbook, log)
    assert again.changes == [] and cells(again.handbook) == cells(first.handbook)
    assert first.handbook.skills["chat.cooking"].provenance["merged_discoveries"] == [
        {"signature": baking, "min_similarity": 0.2}]  # no threshold written: 0.2, as the re-tagging reads it


def test_two_split_children_that_merge_take_over_no_fallback_turns(evolved):
    dict_, json = "code.debugging.keyerror.dict", "code.debugging.keyerror.json"  # both carry a signature
    hb, changes, _ = _merge(evolved, {dict_: EVEN, json: EVEN})
    assert [c.skills for c in changes] == [(dict_, json)]
    assert hb.skills[dict_].provenance == {"merged_from": [json], "changes": [
        {"kind": "merge", "version": evolved.version, "with": json, "rationale": changes[0].rationale}]}


def test_retagging_sends_fallback_turns_like_a_merged_discovery_to_the_skill_it_merged_into(tiny):
    doc = to_dict(tiny)
    next(s for s in doc["skills"] if s["id"] == "code.python")["provenance"] = {"merged_discoveries": [
        {"signature": {}, "min_similarity": 0.0},  # an empty signature takes over nothing
        {"signature": {"bake": 1.0, "bread": 1.0, "flour": 1.0, "oven": 1.0}},  # no threshold: 0.2
    ]}
    r = Retagger(from_dict(doc))
    assert r(_turn("how to bake bread with flour"), {"chat.general": 1.0}) == {"code.python": 1.0}
    assert r(_turn("my garden tomato plants"), {"chat.general": 1.0}) == {"chat.general": 1.0}

