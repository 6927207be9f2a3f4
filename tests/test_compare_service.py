"""Side-by-side comparison through the service, against the loopback OpenAI server (real HTTP, real litellm).

Prices come from tests/data/tiny.json: big $10/$30 and mid $1/$3 per million tokens; small is free.
"""

from __future__ import annotations

import asyncio

import pytest
from test_budget import make, spent

from skillchat.config import Budget
from skillchat.core.compare import POLICY
from skillchat.errors import SkillchatError
from skillchat.events import CompareStarted, TokenChunk, TurnFailed, TurnFinished
from skillchat.providers.litellm_client import load_litellm
from skillchat.store.budget import Reservations

ANSWERS = {"alpha": "Big says A.", "beta": "Mid says B.", "gamma": "Small says C."}


@pytest.fixture(scope="module", autouse=True)
def litellm():
    return load_litellm()


@pytest.fixture
def server(openai_server):  # noqa: F811
    for model, text in ANSWERS.items():
        openai_server.chunks[model] = text.split(" ")
    return openai_server


async def compare(svc, text="Why does this raise TypeError?", conversation=None):
    return [ev async for ev in svc.run_compare(conversation, text)]


def sent_messages(server):
    return [r["body"]["messages"] for r in server.chat_requests()]


async def test_both_answers_are_turns_with_the_chance_each_agent_had(tiny_path, server):
    svc = make(tiny_path, server, Budget())
    events = await compare(svc)
    start = events[0]
    assert isinstance(start, CompareStarted)
    finished = {ev.turn_id: ev for ev in events if isinstance(ev, TurnFinished)}
    assert set(finished) == set(start.turn_ids)
    left, right = (svc.turn(t) for t in start.turn_ids)
    assert left.agent_id == start.left.decision.best.agent_id != right.agent_id
    assert {left.policy, right.policy} == {POLICY}
    assert left.probability == 1.0
    assert 0 < right.probability < 1
    assert right.probability == start.right.decision.ranking[
        [a.agent_id for a in start.right.decision.ranking].index(right.agent_id)].probability
    # Streamed side by side: each turn's chunks are its own agent's answer.
    for tid, t in ((left.id, left), (right.id, right)):
        text = "".join(ev.text for ev in events if isinstance(ev, TokenChunk) and ev.turn_id == tid)
        assert text == t.answer_text and finished[tid].text == text
    assert len(server.chat_requests()) == 2
    # Spend counts both answers.
    assert left.cost_usd > 0 or right.cost_usd > 0
    report = svc.spend("model")
    assert sum(r.cost_usd for r in report.rows) == pytest.approx(left.cost_usd + right.cost_usd)
    assert spent(svc) == pytest.approx(left.cost_usd + right.cost_usd)


@pytest.mark.parametrize("outcome, ratings, goes_on_from", [
    ("left", (1.0, 0.0), 0), ("right", (0.0, 1.0), 1), ("both_good", (1.0, 1.0), 0), ("both_bad", (0.0, 0.0), 0),
])
async def test_the_pick_rates_both_and_the_conversation_goes_on_from_the_chosen_answer(
        tiny_path, server, outcome, ratings, goes_on_from):
    svc = make(tiny_path, server, Budget())
    start = (await compare(svc))[0]
    turns = [svc.turn(t) for t in start.turn_ids]
    svc.choose(start.turn_ids[1], outcome)  # either side's id names the comparison
    assert tuple(svc.turn(t).rating for t in start.turn_ids) == ratings
    assert svc.comparison(start.turn_ids[0]).outcome == outcome
    # Relearn and the off-policy check read both, with their propensities and one pair id.
    rated = {int(t.turn_id): t for t in svc.store.rated_turns()}
    assert set(rated) == set(start.turn_ids)
    assert [rated[t.id].propensity for t in turns] == [t.probability for t in turns]
    assert {rated[t.id].policy for t in turns} == {POLICY}
    assert len({rated[t.id].pair for t in turns}) == 1 and rated[turns[0].id].pair
    # The handbook learned from both ratings at once.
    ev = svc.handbook.evidence
    assert all(ev.agent(t.agent_id) for t in turns)
    # The next turn's context holds the chosen answer only.
    server.requests.clear()
    [ev async for ev in svc.run_turn(start.left.conversation_id, "and then?")]
    context = [m["content"] for m in sent_messages(server)[0]]
    kept, dropped = turns[goes_on_from].answer_text, turns[1 - goes_on_from].answer_text
    assert kept in context and dropped not in context


async def test_before_the_pick_the_conversation_goes_on_from_the_left_answer(tiny_path, server):
    svc = make(tiny_path, server, Budget())
    start = (await compare(svc))[0]
    left, right = (svc.turn(t) for t in start.turn_ids)
    history = [m.content for m in svc.store.history(start.left.conversation_id)]
    assert left.answer_text in history and right.answer_text not in history


async def test_a_choice_needs_two_answers(tiny_path, server):
    svc = make(tiny_path, server, Budget())
    start = (await compare(svc))[0]
    with pytest.raises(SkillchatError, match="not part of a comparison"):
        svc.choose(999, "left")
    with pytest.raises(ValueError, match="one of"):
        svc.choose(start.turn_ids[0], "sideways")
    server.behaviour["beta"] = "500"
    server.behaviour["alpha"] = "500"
    start = (await compare(svc))[0]
    with pytest.raises(SkillchatError, match="no answer to compare"):
        svc.choose(start.turn_ids[0], "left")


@pytest.mark.parametrize("daily", [
    0.019,  # Big's expected cost (~$0.018) fits, Big's and Mid's together (~$0.020) do not
    0.03,  # both expected costs fit, but Big's does not fit in the half of the budget each answer may hold
])
async def test_a_hard_budget_that_cannot_pay_for_both_calls_neither(tiny_path, server, daily):
    svc = make(tiny_path, server, Budget(daily_usd=daily), agents=("big", "mid"))
    events = await compare(svc)
    assert len(events) == 1 and isinstance(events[0], TurnFailed) and events[0].kind == "refused"
    assert events[0].error.startswith("refused before calling") and "both answers" in events[0].error
    assert server.chat_requests() == []
    statuses = svc.store.db.execute("SELECT status FROM turns WHERE policy = ?", [POLICY]).fetchall()
    assert statuses == [("refused",), ("refused",)]
    assert Reservations.of(svc.store).turns() == {}
    alone = [ev async for ev in svc.run_turn(None, "Why does this raise TypeError?", pin="big")]
    assert isinstance(alone[-1], TurnFinished)  # while one answer from Big alone was affordable


async def test_a_hard_budget_holds_both_calls_before_either_is_made(tiny_path, server, monkeypatch):
    svc = make(tiny_path, server, Budget(daily_usd=1.0), agents=("big", "mid"))
    held_at_first_call = []
    stream = svc.provider.stream

    def watching(ep, *args, **kwargs):
        held_at_first_call.append(dict(Reservations.of(svc.store).turns()))
        return stream(ep, *args, **kwargs)

    monkeypatch.setattr(svc.provider, "stream", watching)
    start = (await compare(svc))[0]
    # When the first call was made, both turns already held money: the left one at most half the
    # budget, the right one the rest of it at most.
    held = held_at_first_call[0]
    assert set(held) == set(start.turn_ids)
    left, right = start.turn_ids
    assert 0 < held[left] <= 0.5 and 0 < held[right] and held[left] + held[right] <= 1.0
    assert all(isinstance(r["body"].get("max_tokens"), int) for r in server.chat_requests())
    assert Reservations.of(svc.store).turns() == {}  # released once both were settled


async def test_one_agent_only_has_nothing_to_compare(tiny_path, server):
    svc = make(tiny_path, server, Budget(), agents=("mid",))
    events = await compare(svc)
    assert isinstance(events[-1], TurnFailed) and "nothing to compare" in events[-1].error
    assert server.chat_requests() == []


async def test_stopping_a_comparison_closes_both_turns(tiny_path, server):
    server.behaviour.update(alpha="slow", beta="slow", gamma="slow")
    server.word_delay_s = 0.2
    svc = make(tiny_path, server, Budget(daily_usd=1.0))
    gen = svc.run_compare(None, "Why does this raise TypeError? " * 3)
    start = await gen.__anext__()
    async for ev in gen:
        if isinstance(ev, TokenChunk):
            break
    await gen.aclose()
    await asyncio.sleep(0)
    assert [svc.turn(t).status for t in start.turn_ids] == ["cancelled", "cancelled"]
    assert Reservations.of(svc.store).turns() == {}
