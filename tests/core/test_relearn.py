"""relearn: evidence recomputed from the log, never counted twice, decayed, cancellable."""

from __future__ import annotations

import threading

import pytest
from synthetic_log import cells, make_log

from skillchat.core.handbook import from_dict, to_dict
from skillchat.core.learning import RatedTurn, apply_rating
from skillchat.core.relearn import Change, RelearnCancelled, TurnCost, handbook_diff, relearn, same_learning

FLAT = {"keyerror": {"big": 0.8, "mid": 0.6, "small": 0.4}}


def online(base, log):  # type: ignore[no-untyped-def]
    hb = base.structure_copy()
    for t in log:
        apply_rating(hb, t.agent_id, t.skills, t.score)
    return hb


def test_recompute_equals_online_updates_on_a_fresh_structure(tiny):
    log = make_log(200, FLAT, skills={"keyerror": {"code.debugging": 0.7, "code.python": 0.3}})
    res = relearn(tiny, log, evolve=False)
    assert cells(res.handbook) == pytest.approx(cells(online(tiny, log)))
    assert res.counts.used == 200 and res.counts.turns == 200
    assert res.handbook.evidence_through == 200
    assert res.handbook.version == tiny.version + 1 and res.handbook.parent_version == tiny.version


def test_online_evidence_in_the_base_is_subsumed_not_added(tiny):
    log = make_log(120, FLAT)
    base = online(tiny, log)  # a handbook that already learned these ratings online
    res = relearn(base, log, evolve=False)
    assert res.handbook.evidence.total() == pytest.approx(120)
    assert cells(res.handbook) == pytest.approx(cells(base))


@pytest.mark.parametrize("evolve", [False, True])
def test_relearn_twice_gives_the_same_evidence(tiny, evolve):
    log = make_log(300, {"keyerror": {"big": 0.9, "mid": 0.9, "small": 0.2},
                         "segfault": {"big": 0.9, "mid": 0.2, "small": 0.2}})
    first = relearn(tiny, log, evolve=evolve)
    second = relearn(first.handbook, log, evolve=evolve)
    assert cells(second.handbook) == cells(first.handbook)
    assert list(second.handbook.skills) == list(first.handbook.skills)
    assert second.changes == []
    assert same_learning(first.handbook, second.handbook)


def test_a_changed_rating_replaces_the_old_one(tiny):
    t = make_log(1, FLAT)[0]
    up = RatedTurn(**{**{f: getattr(t, f) for f in t.__slots__}, "score": 1.0, "rating_id": 1})
    down = RatedTurn(**{**{f: getattr(t, f) for f in t.__slots__}, "score": 0.0, "rating_id": 7})
    res = relearn(tiny, [down, up], evolve=False)  # order in the list does not matter: the newer id wins
    assert res.handbook.evidence.skill(t.agent_id, "code.debugging") == (0.0, 1.0)
    assert res.counts.replaced == 1 and res.counts.used == 1
    assert res.handbook.evidence_through == 7


def test_empty_log_gives_empty_evidence(tiny):
    base = online(tiny, make_log(10, FLAT))
    res = relearn(base, [])
    assert res.handbook.evidence.total() == 0
    assert res.handbook.evidence_through is None
    assert res.changes == []


def test_decay_halves_a_rating_one_half_life_old(tiny):
    old = make_log(1, FLAT, age=30.0)
    new = make_log(1, FLAT, age=0.0, start_id=2)
    res = relearn(tiny, old + new, half_life_days=30.0, evolve=False)
    assert res.counts.observations == pytest.approx(1.5)
    assert res.handbook.evidence.total() == pytest.approx(1.5)
    with pytest.raises(ValueError):
        relearn(tiny, old, half_life_days=0)


def test_decay_follows_a_silent_model_change(tiny):
    # "mid" was great a year ago and is poor now: with a half-life the recent ratings dominate.
    then = make_log(200, {"keyerror": {"big": 0.7, "mid": 0.95, "small": 0.5}}, seed=1, age=365.0)
    now = make_log(40, {"keyerror": {"big": 0.7, "mid": 0.1, "small": 0.5}}, seed=2, start_id=1000)
    plain = relearn(tiny, then + now, evolve=False).handbook
    decayed = relearn(tiny, then + now, evolve=False, half_life_days=30.0).handbook

    def rate(hb):  # type: ignore[no-untyped-def]
        s, f = hb.evidence.skill("mid", "code.debugging")
        return s / (s + f)

    assert rate(plain) > 0.6
    assert rate(decayed) < 0.3


def test_costs_are_recomputed_from_logged_usage(tiny):
    log = make_log(10, FLAT)
    res = relearn(tiny, log, evolve=False)
    agents = {t.agent_id for t in log}
    assert {a for a, _ in res.handbook.costs} == agents
    assert all(c.usd == pytest.approx(0.001) for c in res.handbook.costs.values())
    usage = [TurnCost("big", "code", 1000, 500, 0.01), TurnCost("big", "code", 3000, 700, 0.03)]
    res = relearn(tiny, log, evolve=False, costs=usage)
    c = res.handbook.costs[("big", "code")]
    assert (c.n, c.prompt_tokens, c.usd) == pytest.approx((2, 2000, 0.02))
    assert res.counts.cost_turns == 2


def test_costs_are_kept_when_nothing_logged_usage(tiny):
    base = tiny.copy()
    base.record_cost("big", "code", 10, 10, 0.5)
    log = [RatedTurn("a", "big", "code", {"code.debugging": 1.0}, 1.0, 1.0, rating_id=1)]
    res = relearn(base, log, evolve=False)
    assert res.handbook.costs[("big", "code")].usd == 0.5 and res.counts.costs_kept


def test_unknown_agents_and_skills(tiny):
    log = [
        RatedTurn("a", "gone-model", "code", {"code.debugging": 1.0}, 1.0, 1.0, rating_id=1),
        RatedTurn("b", "big", "code", {"code.renamed": 1.0}, 1.0, 1.0, text="a python traceback with KeyError", rating_id=2),
        RatedTurn("c", "big", "code", {"code.renamed": 1.0}, 0.0, 1.0, text="", rating_id=3),
    ]
    res = relearn(tiny, log, evolve=False)
    assert res.counts.unknown_agent == 1 and res.counts.no_skill == 1 and res.counts.used == 1
    assert res.counts.retagged == 1  # the unknown skill was re-inferred from the text
    assert res.handbook.evidence.agent("big") == (1.0, 0.0)


def test_pinned_turns_count_as_evidence(tiny):
    log = [RatedTurn("a", "small", "chat", {"chat.general": 1.0}, 1.0, 1.0, policy="pinned", rating_id=1)]
    res = relearn(tiny, log)
    assert res.counts.pinned == 1 and res.handbook.evidence.agent("small") == (1.0, 0.0)


def test_progress_is_reported_and_ends_with_done(tiny):
    seen = []
    relearn(tiny, make_log(50, FLAT), progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert seen[0][0] == "read" and seen[-1] == ("done", 1, 1)


def test_cancel_raises_and_returns_nothing(tiny):
    ev = threading.Event()
    ev.set()
    with pytest.raises(RelearnCancelled):
        relearn(tiny, make_log(50, FLAT), cancel=ev)


def test_cancel_midway(tiny):
    ev = threading.Event()

    def progress(stage, done, total):  # type: ignore[no-untyped-def]
        if stage == "evolve":
            ev.set()

    log = make_log(100, {"keyerror": {"big": 0.9, "mid": 0.9, "small": 0.2}, "segfault": {"big": 0.9, "mid": 0.2, "small": 0.2}})
    with pytest.raises(RelearnCancelled):
        relearn(tiny, log, progress=progress, cancel=ev)


def test_the_new_handbook_round_trips_and_records_its_history(tiny):
    log = make_log(300, {"keyerror": {"big": 0.9, "mid": 0.9, "small": 0.2}, "segfault": {"big": 0.9, "mid": 0.2, "small": 0.2}})
    res = relearn(tiny, log, version=5, created="2026-11-22T10:00:00Z")
    hb = res.handbook
    again = from_dict(to_dict(hb))
    assert cells(again) == cells(hb) and list(again.skills) == list(hb.skills)
    rec = hb.history[-1]
    assert rec["kind"] == "relearn" and rec["version"] == 5 and rec["parent_version"] == 1
    assert rec["created"] == "2026-11-22T10:00:00Z" and rec["evidence_through"] == 300
    assert [Change.from_dict(c) for c in rec["changes"]] == [Change.from_dict(c.to_dict()) for c in res.changes]
    assert rec["diff"]["observations_after"] == pytest.approx(300)


def test_handbook_diff_names_what_moved(tiny):
    log = make_log(60, FLAT)
    new = relearn(tiny, log, evolve=False).handbook
    d = handbook_diff(tiny, new)
    assert d["skills_added"] == [] and d["observations_before"] == 0 and d["observations_after"] == pytest.approx(60)
    assert d["evidence_by_skill"][0]["skill"] == "code.debugging"
    assert {m["agent"] for m in d["competence_moves"]} == {"big", "mid", "small"}


def test_costs_are_decayed_means_per_agent_and_mode(tiny):
    log = make_log(10, FLAT)
    usage = [
        TurnCost("big", "code", 1000, 100, 0.01),
        TurnCost("big", "code", 4000, 400, 0.04, age_days=30.0),  # one half-life old: weighs 0.5
        TurnCost("big", "no-such-mode", 2000, 200, 0.02),  # counted under the fallback skill's mode
        TurnCost("gone-model", "code", 9000, 900, 9.0),  # an agent no longer in the handbook
    ]
    res = relearn(tiny, log, evolve=False, costs=usage, half_life_days=30.0)
    c = res.handbook.costs[("big", "code")]
    assert (c.n, c.prompt_tokens, c.completion_tokens, c.usd) == pytest.approx((1.5, 2000, 200, 0.02))
    assert set(res.handbook.costs) == {("big", "code"), ("big", tiny.fallback().mode)}
    assert res.counts.cost_turns == 3


def test_costs_from_the_log_skip_turns_without_a_cost(tiny):
    log = [
        RatedTurn("a", "big", "code", {"code.debugging": 1.0}, 1.0, 1.0, rating_id=1, cost_usd=0.03,
                  prompt_tokens=None, completion_tokens=50),
        RatedTurn("b", "big", "code", {"code.debugging": 1.0}, 1.0, 1.0, rating_id=2, cost_usd=None,
                  prompt_tokens=999, completion_tokens=999),
    ]
    c = relearn(tiny, log, evolve=False).handbook.costs[("big", "code")]
    assert (c.n, c.prompt_tokens, c.completion_tokens, c.usd) == pytest.approx((1, 0, 50, 0.03))


def test_handbook_diff_lists_every_kind_of_change_largest_first(tiny):
    doc = to_dict(tiny)
    doc["skills"] = [s for s in doc["skills"] if s["id"] != "code.python"]
    next(s for s in doc["skills"] if s["id"] == "math.calculus")["description"] = "Limits, derivatives, integrals."
    doc["skills"].append({"id": "math.stats", "mode": "math", "name": "Statistics", "description": "Means and variances.",
                          "indicators": ["mean"], "examples": []})
    for a in doc["agents"]:
        a["prior"]["skills"] = {k: v for k, v in a["prior"].get("skills", {}).items() if k != "code.python"}
    new = from_dict(doc)
    apply_rating(new, "big", {"code.debugging": 1.0}, 1.0)
    apply_rating(new, "big", {"code.debugging": 1.0}, 0.0)
    apply_rating(new, "mid", {"math.calculus": 1.0}, 1.0)
    new.record_cost("big", "code", 100, 10, 0.5)
    d = handbook_diff(tiny, new)
    assert (d["skills_added"], d["skills_removed"], d["skills_changed"]) == (["math.stats"], ["code.python"], ["math.calculus"])
    assert d["agents_added"] == d["agents_removed"] == []
    assert (d["observations_before"], d["observations_after"]) == (0, 3)
    assert d["evidence_by_skill"] == [{"skill": "code.debugging", "before": 0, "after": 2},
                                      {"skill": "math.calculus", "before": 0, "after": 1}]
    # big's 0.8 fell by 0.1 (one up, one down); mid's 0.7 rose by 0.06: the larger move first.
    assert d["competence_moves"] == [
        {"agent": "big", "skill": "code.debugging", "before": 0.8, "after": 0.7,
         "observations_before": 0, "observations_after": 2},
        {"agent": "mid", "skill": "math.calculus", "before": 0.7, "after": 0.76,
         "observations_before": 0, "observations_after": 1},
    ]
    assert d["costs"] == [{"agent": "big", "mode": "code", "usd_before": None, "usd_after": 0.5, "n_before": 0, "n_after": 1}]
    short = handbook_diff(tiny, new, limit=1)
    assert len(short["evidence_by_skill"]) == len(short["competence_moves"]) == 1
    assert handbook_diff(new, new)["competence_moves"] == [] and same_learning(new, new)
    assert not same_learning(tiny, new)
