"""Conversations, turns and ratings in a real SQLite file."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from skillchat.attempts import Attempt
from skillchat.core import Message, Router
from skillchat.errors import StoreError
from skillchat.store import TraceStore


@pytest.fixture
def store(tmp_path):
    s = TraceStore.open(tmp_path / "traces.db")
    yield s
    s.close()


def decide(hb, text="Why does my python script raise KeyError?", **kw):
    return Router(hb).route([Message("user", text)], rng=random.Random(1), **kw)


def answered_turn(store, hb, text="Why does my python script raise KeyError?", answer="Because.", **kw):
    cid = kw.pop("conversation_id", None) or store.new_conversation()
    mid = store.add_message(cid, "user", text)
    d = decide(hb, text, **kw)
    tid = store.start_turn(cid, mid, d, demo=False)
    store.finish_turn(tid, "answered", attempts=[Attempt(d.chosen, "m", True, cost_usd=0.01)], agent_id=d.chosen,
                      model=d.winner.model, text=answer, prompt_tokens=10, completion_tokens=20, cost_usd=0.01,
                      cost_known=True, latency_s=0.5, ttft_s=0.1)
    return tid, d


def test_a_turn_keeps_its_decision_and_outcome(store, tiny):
    tid, d = answered_turn(store, tiny)
    t = store.turn(tid)
    assert t.status == "answered" and t.agent_id == d.chosen
    assert t.decision == d  # the whole decision round-trips, every agent's probability included
    assert t.skills == d.skill_weights() and t.probability == d.probability
    assert t.user_text.startswith("Why") and t.answer_text == "Because."
    assert t.attempts[0].ok and t.est_cost_usd == pytest.approx(d.estimated_cost)


def test_the_conversation_title_comes_from_the_first_user_message(store, tiny):
    cid = store.new_conversation()
    store.add_message(cid, "user", "  first   question\nwith lines ")
    store.add_message(cid, "user", "second")
    assert store.conversation(cid).title == "first question with lines"


def test_history_leaves_out_an_answer_cut_short_but_the_transcript_keeps_it(store, tiny):
    cid = store.new_conversation()
    mid = store.add_message(cid, "user", "hello")
    tid = store.start_turn(cid, mid, decide(tiny, "hello"), demo=False)
    store.finish_turn(tid, "cancelled", attempts=[], agent_id="mid", text="Hel")
    assert [m.content for m in store.history(cid)] == ["hello"]
    entries = store.transcript(cid)
    assert [(e.role, e.partial, e.status) for e in entries] == [("user", False, "cancelled"), ("assistant", True, "cancelled")]


def test_adding_to_a_missing_conversation_fails(store):
    with pytest.raises(StoreError, match="no conversation 99"):
        store.add_message(99, "user", "x")


def test_a_new_rating_replaces_the_old_one_and_ids_only_grow(store, tiny):
    tid, _ = answered_turn(store, tiny)
    assert store.rate(tid, 1.0) == (None, 1)
    assert store.rate(tid, 0.0) == (1.0, 2)
    assert store.rate(tid, None) == (0.0, 3)  # cleared
    assert store.turn(tid).rating is None
    rows = store.db.execute("SELECT id, value, replaced_by FROM ratings ORDER BY id").fetchall()
    assert rows == [(1, 1.0, 2), (2, 0.0, 3), (3, None, None)]


def test_only_turns_with_an_answer_can_be_rated(store, tiny):
    cid = store.new_conversation()
    mid = store.add_message(cid, "user", "x")
    refused = store.start_turn(cid, mid, decide(tiny, "x"), demo=False, status="refused", error="budget")
    with pytest.raises(StoreError, match="refused"):
        store.rate(refused, 1.0)
    with pytest.raises(StoreError, match="no turn 12345"):
        store.rate(12345, 1.0)


def test_catch_up_says_what_the_handbook_already_holds_for_each_turn(store, tiny):
    t1, _ = answered_turn(store, tiny)
    t2, _ = answered_turn(store, tiny)
    t3, _ = answered_turn(store, tiny)
    store.rate(t1, 1.0)  # id 1: folded into a version whose evidence_through is 2
    store.rate(t2, 0.0)  # id 2: folded, then changed below
    store.rate(t2, 1.0)  # id 3
    store.rate(t3, 0.0)  # id 4
    got = {c.turn_id: (c.old, c.new) for c in store.catch_up("tiny", through=2)}
    assert got == {t2: (0.0, 1.0), t3: (None, 0.0)}
    assert {c.turn_id: (c.old, c.new) for c in store.catch_up("tiny", through=None)} == {
        t1: (None, 1.0), t2: (None, 1.0), t3: (None, 0.0)}
    assert store.catch_up("other-handbook", through=None) == []


def test_rated_turns_carry_what_relearn_and_off_policy_evaluation_need(store, tiny):
    t1, d1 = answered_turn(store, tiny, "Why does my python script raise KeyError?")
    t2, _ = answered_turn(store, tiny, "hello there")
    answered_turn(store, tiny, "never rated")
    store.rate(t1, 1.0)
    store.rate(t2, 0.0)
    store.rate(t2, None)  # cleared: no longer a rated turn
    (rt,) = store.rated_turns("tiny")
    assert rt.turn_id == str(t1) and rt.agent_id == d1.chosen and rt.score == 1.0
    assert rt.propensity == pytest.approx(d1.probability) and rt.policy == d1.policy
    assert rt.probabilities == {a.agent_id: a.probability for a in d1.ranking}
    assert rt.skills == d1.skill_weights() and rt.mode == d1.mode
    assert rt.text.startswith("Why does") and rt.cost_usd == 0.01 and (rt.prompt_tokens, rt.completion_tokens) == (10, 20)
    assert rt.rating_id == 1 and 0 <= rt.age_days < 1
    assert store.rated_turns("other") == []
    assert store.rated_turns(after_rating=1) == []
    future = datetime.now(UTC) + timedelta(days=1)
    assert store.rated_turns(since=future) == []


def test_a_turn_answered_by_a_fallback_agent_is_marked_so(store, tiny):
    cid = store.new_conversation()
    mid = store.add_message(cid, "user", "hello")
    d = decide(tiny, "hello", pin="big")
    tid = store.start_turn(cid, mid, d, demo=False)
    store.finish_turn(tid, "answered", attempts=[Attempt("big", "gpt-5", False, "server"), Attempt("mid", "x", True)],
                      agent_id="mid", text="hi")
    store.rate(tid, 1.0)
    (rt,) = store.rated_turns()
    assert (rt.agent_id, rt.policy, rt.propensity) == ("mid", "fallback", 1.0)
    assert [a.agent_id for a in store.turn(tid).attempts] == ["big", "mid"]


def test_demo_turns_stay_out_of_learning_unless_asked_for(store, tiny):
    cid = store.new_conversation(demo=True)
    mid = store.add_message(cid, "user", "hello")
    tid = store.start_turn(cid, mid, decide(tiny, "hello"), demo=True)
    store.finish_turn(tid, "answered", attempts=[], agent_id="mid", text="scripted")
    store.rate(tid, 1.0)
    assert store.rated_turns() == [] and store.catch_up("tiny", None) == []
    assert len(store.rated_turns(include_demo=True)) == 1
    assert len(store.catch_up("tiny", None, include_demo=True)) == 1


def test_turns_left_running_by_a_dead_process_are_closed_but_fresh_ones_are_not(store, tiny):
    cid = store.new_conversation()
    mid = store.add_message(cid, "user", "x")
    old = store.start_turn(cid, mid, decide(tiny, "x"), demo=False, started=datetime.now(UTC) - timedelta(hours=1))
    fresh = store.start_turn(cid, mid, decide(tiny, "x"), demo=False)
    assert store.mark_interrupted() == 1
    assert store.turn(old).status == "cancelled" and store.turn(fresh).status == "running"


def test_handbook_events_are_logged_in_order(store):
    store.add_handbook_event("switch", "tiny", 1, {"ref": "tiny@1"})
    store.add_handbook_event("relearn", "tiny", 2)
    store.add_handbook_event("activate", "tiny", 2, {"ref": "tiny@2"})
    assert store.last_handbook_event(["switch"])["detail"] == {"ref": "tiny@1"}
    assert store.last_handbook_event(["switch", "activate"])["version"] == 2
    assert store.last_handbook_event(["nothing"]) is None


def test_decision_json_is_plain_json_for_outside_tools(store, tiny):
    tid, d = answered_turn(store, tiny)
    raw = store.db.execute("SELECT decision_json, skills_json FROM turns WHERE id = ?", [tid]).fetchone()
    assert json.loads(raw[0])["chosen"] == d.chosen
    assert json.loads(raw[1]) == d.skill_weights()


def test_turn_costs_list_every_real_answered_turn_of_a_handbook(store, tiny):
    answered_turn(store, tiny)
    answered_turn(store, tiny)
    costs = store.turn_costs("tiny")
    assert len(costs) == 2 and costs[0].cost_usd == 0.01 and costs[0].prompt_tokens == 10
    assert store.turn_costs("other") == []


def test_the_wal_is_checkpointed_in_the_background_not_inside_a_turn(store, tiny, monkeypatch):
    from skillchat.store import traces

    calls = []
    monkeypatch.setattr(traces, "_checkpoint", lambda path: calls.append(path))
    assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    for _ in range(traces.CHECKPOINT_EVERY_TURNS - 1):
        answered_turn(store, tiny)
    assert calls == []
    answered_turn(store, tiny)
    store._checkpointer.join(5)
    assert calls == [store.path]


def test_a_conversation_read_a_page_at_a_time_from_the_end(store, tiny):
    cid = store.new_conversation()
    ids = [answered_turn(store, tiny, f"question {i}", f"answer {i}", conversation_id=cid)[0] for i in range(7)]
    # A turn refused by the budget: a user message and no answer.
    mid = store.add_message(cid, "user", "question 7")
    refused = store.start_turn(cid, mid, None, demo=False, status="refused", error="over budget")
    pages, before = [], None
    while True:
        entries, more = store.transcript_page(cid, 3, before)
        pages.append([e.content for e in entries])
        if not more:
            break
        before = next(e.turn_id for e in entries)
    assert pages == [["question 5", "answer 5", "question 6", "answer 6", "question 7"],
                     ["question 2", "answer 2", "question 3", "answer 3", "question 4", "answer 4"],
                     ["question 0", "answer 0", "question 1", "answer 1"]]
    entries, more = store.transcript_page(cid, 3, ids[0])
    assert entries == [] and not more
    assert store.transcript_page(cid, 3, refused)[0][-1].content == "answer 6"
