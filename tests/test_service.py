"""ChatService end to end: real SQLite, litellm's real code paths (mock and a local HTTP server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random

import pytest

from skillchat import handbooks
from skillchat.config import AgentConfig, Budget, Config
from skillchat.errors import SkillchatError
from skillchat.events import AgentFailed, TokenChunk, TurnFailed, TurnFinished, TurnStarted
from skillchat.providers.detect import Environment
from skillchat.providers.litellm_client import LitellmProvider, load_litellm
from skillchat.service import ChatService
from skillchat.store import TraceStore

KEY = "fake-server-key-0123456789"
MODELS = {"big": "alpha", "mid": "beta", "small": "gamma"}
NOTHING_FOUND = Environment(frozenset(), None, None)


@pytest.fixture(scope="module", autouse=True)
def litellm():
    return load_litellm()


def make(tiny_path, server=None, *, demo=False, budget=None, timeout_s=5.0, **kw):
    agents = ()
    if server is not None:
        agents = tuple(AgentConfig(id=a, model=f"openai/{m}", api_base=server.api_base, api_key_env="FAKE_SERVER_KEY")
                       for a, m in MODELS.items())
    cfg = Config(handbook=str(tiny_path), agents=agents, budget=Budget() if budget is None else budget, timeout_s=timeout_s)
    return ChatService.create(cfg, demo=demo, environment=NOTHING_FOUND, env={"FAKE_SERVER_KEY": KEY},
                              rng=random.Random(0), chunk_delay_s=kw.pop("chunk_delay_s", 0.0), **kw)


async def run(svc, text, conversation_id=None, pin=None):
    return [ev async for ev in svc.run_turn(conversation_id, text, pin=pin)]


def only(events, kind):
    return [e for e in events if isinstance(e, kind)]


async def test_a_demo_turn_streams_and_is_logged_with_its_decision(tiny_path):
    svc = make(tiny_path, demo=True)
    await svc.load_providers()
    events = await run(svc, "Why does my python script raise KeyError?")
    assert isinstance(events[0], TurnStarted) and isinstance(events[-1], TurnFinished)
    started, done = events[0], events[-1]
    chunks = only(events, TokenChunk)
    assert len(chunks) > 5 and "".join(c.text for c in chunks) == done.text
    assert done.text.startswith("*Demo answer from") and started.demo
    t = svc.store.turn(done.turn_id)
    assert t.status == "answered" and t.demo and t.decision == started.decision
    assert t.agent_id == started.decision.chosen and t.cost_usd == pytest.approx(done.cost_usd)
    assert [e.role for e in svc.transcript(started.conversation_id)] == ["user", "assistant"]


async def test_the_user_message_is_stored_before_any_provider_is_called(tiny_path):
    seen = []

    class Spy(LitellmProvider):
        async def stream(self, ep, messages, stats, **kw):
            seen.append([m.content for m in svc.store.history(1)])
            raise RuntimeError("provider blew up in an unexpected way")
            yield ""  # pragma: no cover

    svc = make(tiny_path, demo=True, provider=Spy())
    events = await run(svc, "keep me")
    assert seen == [["keep me"]]
    assert isinstance(events[-1], TurnFailed) and "internal error" in events[-1].error
    assert svc.store.turn(events[-1].turn_id).status == "failed"  # not left 'running'
    assert svc.transcript(1)[0].content == "keep me"


@pytest.mark.parametrize("behaviour, kind", [
    ("500", "server"), ("429", "rate_limit"), ("401", "auth"), ("break", "stream"), ("stall", "timeout"),
])
async def test_a_failing_agent_falls_back_to_the_next_best_over_real_http(tiny_path, openai_server, behaviour, kind):
    openai_server.behaviour["alpha"] = behaviour  # "big"'s model
    openai_server.stall_s = 2.0
    svc = make(tiny_path, openai_server, timeout_s=0.5)
    await svc.load_providers()
    events = await run(svc, "hello there", pin="big")
    started = events[0]
    nxt = started.decision.fallbacks()[0]
    (failed,) = only(events, AgentFailed)
    assert (failed.agent_id, failed.kind, failed.next_agent) == ("big", kind, nxt)
    done = events[-1]
    assert isinstance(done, TurnFinished) and done.agent_id == nxt
    assert done.text == f"Echo from {MODELS[nxt]}: hello there"
    assert [(a.agent_id, a.ok, a.kind) for a in done.fallback_chain] == [("big", False, kind), (nxt, True, None)]
    assert done.fell_back and done.note.startswith(f"answered by {svc.handbook.agents[nxt].name}")
    t = svc.store.turn(done.turn_id)
    assert t.agent_id == nxt and t.chosen_agent == "big" and [a.agent_id for a in t.attempts] == ["big", nxt]
    assert t.answer_text == done.text  # the broken first attempt's partial text is not the answer
    assert [r["body"]["model"] for r in openai_server.chat_requests()] == ["alpha", MODELS[nxt]]


async def test_when_every_agent_fails_the_turn_fails_and_the_message_stays(tiny_path, openai_server):
    for m in MODELS.values():
        openai_server.behaviour[m] = "500"
    svc = make(tiny_path, openai_server)
    events = await run(svc, "anyone?")
    assert len(only(events, AgentFailed)) == 3 and only(events, AgentFailed)[-1].next_agent is None
    fail = events[-1]
    assert isinstance(fail, TurnFailed) and fail.kind == "failed" and "every agent failed" in fail.error
    t = svc.store.turn(fail.turn_id)
    assert t.status == "failed" and len(t.attempts) == 3 and t.user_text == "anyone?"


async def test_a_turn_over_a_hard_budget_is_refused_before_any_call(tiny_path, openai_server):
    svc = make(tiny_path, openai_server, budget=Budget(daily_usd=1e-9))
    events = await run(svc, "hello", pin="big")
    (fail,) = events
    assert isinstance(fail, TurnFailed) and fail.kind == "refused" and "daily budget" in fail.error
    assert openai_server.chat_requests() == []
    t = svc.store.turn(fail.turn_id)
    assert t.status == "refused" and t.user_text == "hello" and t.decision is not None
    assert svc.spend("model").total.turns == 0  # a refused turn spends nothing


async def test_a_soft_budget_warns_but_answers(tiny_path, openai_server):
    svc = make(tiny_path, openai_server, budget=Budget(soft_daily_usd=0.0))
    done = (await run(svc, "hello", pin="big"))[-1]
    assert isinstance(done, TurnFinished) and done.cost_usd > 0
    assert "soft limit" in done.budget_warning
    assert svc.store.db.execute("SELECT budget_warning FROM turns").fetchone()[0] == done.budget_warning


async def test_spent_money_counts_against_the_next_turns_budget(tiny_path, openai_server):
    svc = make(tiny_path, openai_server)
    first = (await run(svc, "hello", pin="big"))[-1]
    svc.config = Config(**{**svc.config.__dict__, "budget": Budget(daily_usd=first.cost_usd * 1.5)})
    second = (await run(svc, "hello again", pin="big"))[-1]
    assert isinstance(second, TurnFailed) and second.kind == "refused"
    assert svc.budget_status().today_usd == pytest.approx(first.cost_usd)


async def test_pinned_turns_are_logged_as_pinned_with_propensity_one(tiny_path):
    svc = make(tiny_path, demo=True)
    svc.pin("small")
    events = await run(svc, "what is 17 * 23?")
    d = events[0].decision
    assert (d.chosen, d.policy, d.probability) == ("small", "pinned", 1.0)
    t = svc.store.turn(events[-1].turn_id)
    assert (t.policy, t.probability) == ("pinned", 1.0)
    with pytest.raises(SkillchatError, match="no agent 'nobody'"):
        svc.pin("nobody")


async def test_an_unusable_agent_cannot_be_pinned_or_routed_to(tiny_path):
    cfg = Config(handbook=str(tiny_path), agents=(AgentConfig(id="big", enabled=False),))
    svc = ChatService.create(cfg, demo=True, environment=NOTHING_FOUND, chunk_delay_s=0)
    with pytest.raises(SkillchatError, match="disabled"):
        svc.pin("big")
    for _ in range(5):
        events = await run(svc, "what is the derivative of x^2?")
        big = next(a for a in events[0].decision.ranking if a.agent_id == "big")
        assert not big.eligible and events[0].decision.chosen != "big"


async def test_no_usable_agent_at_all_fails_clearly(tiny_path):
    cfg = Config(handbook=str(tiny_path))
    svc = ChatService.create(cfg, demo=False, environment=NOTHING_FOUND, env={})
    (fail,) = await run(svc, "hello")
    assert fail.kind == "no_agent" and "skillchat doctor" in fail.error
    assert svc.transcript(fail.conversation_id)[0].content == "hello"


async def test_without_any_provider_the_app_starts_in_demo_mode_and_says_why(tiny_path):
    svc = ChatService.create(Config(handbook=str(tiny_path)), environment=NOTHING_FOUND, env={})
    assert svc.demo and "no provider" in svc.demo_reason


async def test_a_rating_is_applied_online_and_a_new_one_replaces_it(tiny_path):
    svc = make(tiny_path, demo=True)
    done = (await run(svc, "Why does my python script raise KeyError?"))[-1]
    ev = svc.handbook.evidence
    assert ev.agent(done.agent_id) == (0.0, 0.0)
    svc.rate(done.turn_id, "up")
    assert ev.agent(done.agent_id) == pytest.approx((1.0, 0.0))
    svc.rate(done.turn_id, "down")
    assert ev.agent(done.agent_id) == pytest.approx((0.0, 1.0))
    svc.rate(done.turn_id, None)
    assert ev.agent(done.agent_id) == pytest.approx((0.0, 0.0))
    assert svc.store.turn(done.turn_id).rating is None


async def test_at_start_up_ratings_after_the_watermark_are_applied_once(tiny_path, tmp_path):
    svc = make(tiny_path, demo=False, chunk_delay_s=0)
    # Log two real answered turns by hand (no provider needed for this) and rate them.
    store = svc.store
    turn_ids = []
    for text in ("Why does my python script raise KeyError?", "What is the derivative of x^2?"):
        cid = store.new_conversation()
        mid = store.add_message(cid, "user", text)
        d = svc.router.route(store.history(cid), rng=random.Random(3), pin="mid")
        tid = store.start_turn(cid, mid, d, demo=False)
        store.finish_turn(tid, "answered", attempts=[], agent_id="mid", text="ok")
        turn_ids.append(tid)
    first_rating = svc.rate(turn_ids[0], "up")
    svc.rate(turn_ids[1], "down")

    fresh = ChatService.create(svc.config, demo=False, store=store, environment=NOTHING_FOUND)
    assert fresh.handbook.evidence.agent("mid") == pytest.approx((1.0, 1.0))

    # A relearned version that already holds the first rating must not count it again.
    v2 = handbooks.load_file(tiny_path).structure_copy(version=2, evidence_through=first_rating)
    v2.record_outcome("mid", store.turn(turn_ids[0]).skills, 1.0)
    handbooks.save_version(v2)
    relearned = ChatService.create(Config(handbook="tiny"), demo=False, store=store, environment=NOTHING_FOUND)
    assert relearned.handbook.version == 2
    assert relearned.handbook.evidence.agent("mid") == pytest.approx((1.0, 1.0))


async def test_cancelling_mid_answer_keeps_the_partial_text_and_marks_the_turn(tiny_path):
    svc = make(tiny_path, demo=True, chunk_delay_s=0.01)
    await svc.load_providers()
    got: list[str] = []
    first = asyncio.Event()

    async def consume():
        async for ev in svc.run_turn(None, "Why does my python script raise KeyError?"):
            if isinstance(ev, TokenChunk):
                got.append(ev.text)
                if len(got) == 3:
                    first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (turn,) = svc.store.turns_of(1)
    assert turn.status == "cancelled" and turn.error == "cancelled by the user"
    assert turn.answer_text and turn.answer_text.startswith("".join(got[:3]))
    assert len(turn.answer_text) < 200  # stopped long before the scripted answer's end
    entries = svc.transcript(1)
    assert entries[-1].partial and svc.store.history(1)[-1].role == "user"


async def test_closing_the_event_stream_early_also_records_the_cancellation(tiny_path):
    svc = make(tiny_path, demo=True)
    async with contextlib.aclosing(svc.run_turn(None, "hello")) as events:
        async for ev in events:
            if isinstance(ev, TokenChunk):
                break
    (turn,) = svc.store.turns_of(1)
    assert turn.status == "cancelled" and turn.answer_text


async def test_answered_turns_update_the_handbooks_cost_table(tiny_path, openai_server):
    svc = make(tiny_path, openai_server)
    events = await run(svc, "hello", pin="mid")
    stat = svc.handbook.cost_stat("mid", events[0].decision.mode)
    assert stat.n == 1 and stat.prompt_tokens == 6 and stat.completion_tokens == 4
    assert stat.usd == pytest.approx(events[-1].cost_usd)


async def test_spend_through_the_service_adds_up_the_turns(tiny_path, openai_server):
    svc = make(tiny_path, openai_server)
    costs = [(await run(svc, q, pin=p))[-1].cost_usd for q, p in (("a", "big"), ("b", "mid"), ("c", "big"))]
    rep = svc.spend("model")
    assert rep.total.cost_usd == pytest.approx(sum(costs)) and rep.total.turns == 3
    assert {r.key for r in rep.rows} == {"openai/alpha", "openai/beta"}
    assert rep.budget["today_usd"] == pytest.approx(sum(costs))


async def test_switching_handbooks_is_logged_and_remembered_until_the_config_changes(tiny_path, tmp_path):
    hb = handbooks.load_file(tiny_path).structure_copy(version=1)
    handbooks.save_version(hb)
    handbooks.save_version(hb.structure_copy(version=2))
    svc = ChatService.create(Config(handbook="tiny"), demo=True, environment=NOTHING_FOUND)
    assert svc.handbook.version == 2
    svc.use_handbook("tiny@1")
    again = ChatService.create(Config(handbook="tiny"), demo=True, store=svc.store, environment=NOTHING_FOUND)
    assert again.handbook.ref == "tiny@1"
    changed = ChatService.create(Config(handbook="tiny@2"), demo=True, store=svc.store, environment=NOTHING_FOUND)
    assert changed.handbook.ref == "tiny@2"


async def test_export_as_markdown_and_json(tiny_path):
    svc = make(tiny_path, demo=True)
    done = (await run(svc, "hello there"))[-1]
    svc.rate(done.turn_id, "up")
    md = svc.export(1, "markdown")
    assert "## You" in md and "hello there" in md and svc.handbook.agents[done.agent_id].name in md
    assert "rated up" in md and "demo" in md
    doc = json.loads(svc.export(1, "json"))
    assert doc["turns"][0]["decision"]["chosen"] == done.agent_id and doc["turns"][0]["rating"] == 1.0
    with pytest.raises(SkillchatError):
        svc.export(1, "pdf")


async def test_conversations_continue_with_their_history(tiny_path, openai_server):
    svc = make(tiny_path, openai_server)
    first = await run(svc, "one", pin="mid")
    cid = first[0].conversation_id
    await run(svc, "two", cid, pin="mid")
    body = openai_server.chat_requests()[-1]["body"]
    assert [m["content"] for m in body["messages"]] == ["one", "Echo from beta: one", "two"]
    assert svc.conversations()[0].id == cid and svc.conversations()[0].turns == 2
    (fail,) = await run(svc, "x", 999)
    assert isinstance(fail, TurnFailed) and "no conversation 999" in fail.error


def test_a_store_reopened_elsewhere_sees_everything(tiny_path, tmp_path):
    path = tmp_path / "other.db"
    svc = ChatService.create(Config(handbook=str(tiny_path)), demo=True, store=TraceStore.open(path),
                             environment=NOTHING_FOUND)
    cid = svc.new_conversation()
    assert TraceStore.open(path).conversation(cid) is not None


def test_the_configured_timeout_reaches_the_provider(tiny_path):
    from skillchat.config import parse

    cfg = parse({"handbook": str(tiny_path), "timeout": 7}, "test.toml")
    assert cfg.timeout_s == 7.0
    svc = ChatService.create(cfg, demo=True, environment=NOTHING_FOUND)
    assert svc.provider.timeout_s == 7.0


async def test_switching_demo_off_drops_demo_ratings_from_the_routing_handbook(tiny_path):
    svc = make(tiny_path, demo=True)
    done = (await run(svc, "hello there"))[-1]
    svc.rate(done.turn_id, "up")
    assert svc.handbook.evidence.total() == pytest.approx(1.0)
    svc.set_demo(False)
    assert not svc.demo and svc.handbook.evidence.total() == 0.0  # scripted answers taught nothing real
    assert set(svc.pool.endpoints) == set()  # and nothing real is usable in this test's environment
    svc.set_demo(True)
    assert svc.handbook.evidence.total() == pytest.approx(1.0)  # back in demo: its ratings count again


async def test_explore_off_routes_every_turn_greedily(tiny_path):
    svc = ChatService.create(Config(handbook=str(tiny_path), explore=False), demo=True, environment=NOTHING_FOUND,
                             chunk_delay_s=0)
    decisions = [(await run(svc, "what is the derivative of x^2?"))[0].decision for _ in range(4)]
    assert {d.policy for d in decisions} == {"greedy"}
    assert {d.probability for d in decisions} == {1.0}
    assert len({d.chosen for d in decisions}) == 1
