"""Hard budgets hold: one long answer, fallbacks, cancellation and two processes on one database.

The loopback server (tests/openai_server.py) streams "long" answers of `long_tokens` tokens, cut at
the request's max_tokens as a real server does, so a test can see both what was asked for and what
it cost. Prices come from tests/data/tiny.json: big $10/$30 and mid $1/$3 per million tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from openai_server import FakeOpenAIServer, openai_server  # noqa: F401  (fixture)
from skillchat.budgets import MIN_ANSWER_TOKENS, BudgetStatus, CallPlan, plan_call
from skillchat.config import AgentConfig, Budget, Config
from skillchat.core.ports import Price
from skillchat.events import AgentFailed, TokenChunk, TurnFailed, TurnFinished
from skillchat.providers.detect import Environment
from skillchat.providers.litellm_client import load_litellm
from skillchat.service import ChatService
from skillchat.store import TraceStore, clock
from skillchat.store.budget import MAX_AGE, Reservations

KEY = "fake-server-key-0123456789"
NOTHING_FOUND = Environment(frozenset(), None, None)
BIG_OUT = 30e-6  # big's output price per token
BIG_IN = 10e-6


@pytest.fixture(scope="module", autouse=True)
def litellm():
    return load_litellm()


def make(tiny_path, server, budget, *, agents=("big", "mid", "small")):
    models = {"big": "alpha", "mid": "beta", "small": "gamma"}
    cfg_agents = tuple(
        AgentConfig(id=a, model=f"openai/{models[a]}", api_base=server.api_base, api_key_env="FAKE_SERVER_KEY",
                    enabled=a in agents)
        for a in models)
    cfg = Config(handbook=str(tiny_path), agents=cfg_agents, budget=budget, timeout_s=10.0)
    return ChatService.create(cfg, demo=False, environment=NOTHING_FOUND, env={"FAKE_SERVER_KEY": KEY},
                              rng=random.Random(0), chunk_delay_s=0.0)


async def run(svc, text, pin="big"):
    return [ev async for ev in svc.run_turn(None, text, pin=pin)]


def spent(svc) -> float:
    return svc.store.db.execute("SELECT coalesce(sum(cost_usd), 0) FROM turns WHERE demo = 0").fetchone()[0]


# --- the arithmetic --------------------------------------------------------------------------

PRICE = Price(BIG_IN, BIG_OUT)


def test_max_tokens_is_what_the_money_left_pays_for():
    plan = plan_call(0.01, prompt_tokens=100, price=PRICE, estimate_usd=0.005, output_limit=128_000)
    prompt_usd = (100 * 1.25 + 32) * BIG_IN
    assert plan.capped and plan.max_tokens == int((0.01 - prompt_usd) / BIG_OUT)
    assert plan.reserve_usd <= 0.01 and plan.reserve_usd == pytest.approx(prompt_usd + plan.max_tokens * BIG_OUT)


def test_never_more_than_the_models_own_limit():
    plan = plan_call(1000.0, prompt_tokens=100, price=PRICE, estimate_usd=0.005, output_limit=4096)
    assert (plan.max_tokens, plan.capped) == (4096, False)
    assert plan.reserve_usd == pytest.approx((100 * 1.25 + 32) * BIG_IN + 4096 * BIG_OUT)


def test_an_unknown_model_limit_is_what_the_context_window_leaves_after_the_prompt():
    plan = plan_call(1000.0, prompt_tokens=100, price=PRICE, estimate_usd=0.005, output_limit=None,
                     context_window=8192)
    assert (plan.max_tokens, plan.capped) == (8192 - 125 - 32, False)
    assert plan.reserve_usd == pytest.approx((100 * 1.25 + 32) * BIG_IN + plan.max_tokens * BIG_OUT)


@pytest.mark.parametrize("headroom, estimate, why", [
    (0.001, 0.002, "does not fit"),
    (0.0005, 0.0004, "fewer than"),  # the estimate fits, but the prompt leaves room for < MIN_ANSWER_TOKENS
    (0.0001, 0.00001, "prompt alone"),
])
def test_a_call_that_cannot_fit_is_refused_with_a_reason(headroom, estimate, why):
    out = plan_call(headroom, prompt_tokens=10, price=Price(5e-6, 40e-6) if why == "fewer than" else PRICE,
                    estimate_usd=estimate, output_limit=None, context_window=None)
    if why == "fewer than":
        assert isinstance(out, str) and f"fewer than {MIN_ANSWER_TOKENS}" in out
    elif why == "prompt alone":
        out = plan_call(headroom, prompt_tokens=100_000, price=PRICE, estimate_usd=estimate, output_limit=None)
        assert isinstance(out, str) and why in out
    else:
        assert isinstance(out, str) and why in out


def test_free_and_unpriced_models_are_not_capped():
    assert plan_call(0.0, prompt_tokens=10, price=Price(0, 0), estimate_usd=0.0, output_limit=None) == CallPlan(0.0, None)
    assert plan_call(1.0, prompt_tokens=10, price=None, estimate_usd=0.25, output_limit=None) == CallPlan(0.25, None)


def test_reserved_money_counts_in_the_refusal_and_the_headroom():
    st = BudgetStatus.of(Budget(daily_usd=1.0, monthly_usd=10.0), 0.4, 9.5, reserved_usd=0.3)
    assert st.headroom() == (pytest.approx(0.2), "monthly")
    assert st.refusal(0.25) is not None and "held by turns still running" in st.refusal(0.25)
    assert st.refusal(0.15) is None
    assert BudgetStatus.of(Budget(soft_daily_usd=1.0), 5.0, 5.0).headroom() is None


# --- one process ---------------------------------------------------------------------------------

async def test_one_long_answer_cannot_overshoot_the_budget(tiny_path, openai_server):
    openai_server.behaviour["alpha"] = "long"
    openai_server.long_tokens = 20_000  # $0.60 at big's price, 60 times the budget
    svc = make(tiny_path, openai_server, Budget(daily_usd=0.01))
    done = (await run(svc, "tell me everything"))[-1]
    assert isinstance(done, TurnFinished) and done.agent_id == "big"
    (req,) = openai_server.chat_requests()
    assert 0 < req["body"]["max_tokens"] <= 0.01 / BIG_OUT
    assert done.completion_tokens == req["body"]["max_tokens"]
    assert done.cost_usd <= 0.01 and spent(svc) <= 0.01
    assert "cut at" in done.budget_warning and "daily budget" in done.budget_warning
    assert Reservations.of(svc.store).turns() == {}  # settled


async def test_without_a_hard_budget_no_max_tokens_is_sent(tiny_path, openai_server):
    svc = make(tiny_path, openai_server, Budget(soft_daily_usd=0.01))
    assert isinstance((await run(svc, "hello"))[-1], TurnFinished)
    assert "max_tokens" not in openai_server.chat_requests()[0]["body"]
    assert svc.store.db.execute("SELECT count(*) FROM budget_reservations").fetchone()[0] == 0


async def test_a_monthly_limit_caps_too(tiny_path, openai_server):
    openai_server.behaviour["alpha"] = "long"
    openai_server.long_tokens = 20_000
    svc = make(tiny_path, openai_server, Budget(daily_usd=5.0, monthly_usd=0.02))
    done = (await run(svc, "tell me everything"))[-1]
    assert done.cost_usd <= 0.02 and "monthly budget" in done.budget_warning


async def test_the_budget_stops_turns_one_after_another(tiny_path, openai_server):
    for m in ("alpha", "beta"):
        openai_server.behaviour[m] = "long"
    openai_server.long_tokens = 300
    svc = make(tiny_path, openai_server, Budget(daily_usd=0.03), agents=("big", "mid"))
    outcomes = []
    for i in range(40):
        last = (await run(svc, f"question {i}"))[-1]
        outcomes.append(last)
        if isinstance(last, TurnFailed):
            break
    assert isinstance(outcomes[-1], TurnFailed) and outcomes[-1].kind == "refused"
    assert spent(svc) <= 0.03
    assert svc.store.turn(outcomes[-1].turn_id).status == "refused"


async def test_a_failed_attempts_cost_counts_against_the_fallback(tiny_path, openai_server):
    openai_server.behaviour["alpha"] = "break"  # big breaks off mid-answer (costs a little)
    openai_server.behaviour["beta"] = "long"
    openai_server.long_tokens = 50_000
    svc = make(tiny_path, openai_server, Budget(daily_usd=0.004), agents=("big", "mid"))
    events = await run(svc, "hello there, please answer")
    done = events[-1]
    assert [type(e).__name__ for e in events if isinstance(e, (AgentFailed, TurnFinished))] == ["AgentFailed", "TurnFinished"]
    first_cost = done.fallback_chain[0].cost_usd
    assert first_cost > 0
    beta = openai_server.chat_requests()[1]["body"]
    assert beta["max_tokens"] <= (0.004 - first_cost) / 3e-6
    assert spent(svc) <= 0.004


async def test_a_cancelled_call_is_settled_and_its_money_released(tiny_path, openai_server):
    openai_server.behaviour["alpha"] = "long"
    openai_server.long_tokens = 2000
    openai_server.word_delay_s = 0.05
    svc = make(tiny_path, openai_server, Budget(daily_usd=1.0))
    gen = svc.run_turn(None, "long please", pin="big")
    seen = 0
    async for ev in gen:
        if isinstance(ev, TokenChunk):
            seen += 1
            if seen == 2:
                assert sum(Reservations.of(svc.store).turns().values()) > 0  # held while it streams
                break
    await gen.aclose()
    t = svc.store.turn(1)
    assert t.status == "cancelled" and t.cost_usd > 0
    assert Reservations.of(svc.store).turns() == {}


async def test_when_nothing_fits_the_turn_is_refused_not_failed(tiny_path, openai_server):
    svc = make(tiny_path, openai_server, Budget(daily_usd=1.0), agents=("big", "mid"))
    # Another process holds all but a cent: the estimate fits the pre-check's view of a moment ago,
    # but the reservation sees the truth.
    other = Reservations.of(svc.store)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _fake_hold(svc, turn_id=999, amount=0.999995, pid=sleeper.pid)
        assert svc.budget_status().reserved_usd == pytest.approx(0.999995)
        (fail,) = await run(svc, "hello")
        assert fail.kind == "refused" and "held by turns still running" in fail.error
        assert openai_server.chat_requests() == []
        # The holder dies without settling: its hold stops counting, and the next turn runs.
        sleeper.kill()
        sleeper.wait()
        done = (await run(svc, "hello again"))[-1]
        assert isinstance(done, TurnFinished)
        assert other.turns() == {}  # the stale row was dropped on the way
    finally:
        sleeper.kill()


def _fake_hold(svc, *, turn_id, amount, pid, updated=None, host=None, start="1"):
    import socket

    now = clock.now_iso(updated)
    with svc.store._lock:
        svc.store.db.execute(
            "INSERT INTO budget_reservations (turn_id, amount_usd, pid, host, proc_start, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [turn_id, amount, pid, host or socket.gethostname(), None if host else _start_of(pid, start), now, now])
        svc.store.db.conn.commit()


def _start_of(pid, default):
    from skillchat.store.budget import _proc_start

    return _proc_start(pid) or default


async def test_a_dead_processs_hold_counts_until_its_interrupted_turn_is_closed(tiny_path, openai_server):
    """Its call may have cost money that is written only when the interrupted turn is closed."""
    svc = make(tiny_path, openai_server, Budget(daily_usd=1.0))
    res = Reservations.of(svc.store)
    cid = svc.store.new_conversation()
    mid = svc.store.add_message(cid, "user", "killed mid-answer")
    young = svc.store.start_turn(cid, mid, None, demo=False)
    old = svc.store.start_turn(cid, mid, None, demo=False, started=datetime.now(timezone.utc) - timedelta(minutes=11))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _fake_hold(svc, turn_id=young, amount=0.3, pid=dead.pid)
    _fake_hold(svc, turn_id=old, amount=0.4, pid=dead.pid)
    assert res.held() == pytest.approx(0.3)  # the old one is past ORPHAN_GRACE
    svc.store.finish_turn(young, "cancelled", attempts=(), cost_usd=0.05, error="interrupted")
    assert res.held() == 0.0  # closed with its cost: the cost counts in spend, the hold no more


async def test_stale_holds_expire_by_pid_reuse_and_by_age(tiny_path, openai_server):
    svc = make(tiny_path, openai_server, Budget(daily_usd=1.0))
    res = Reservations.of(svc.store)
    # Our own pid, but not held by this process: left over from a dead process whose pid we got.
    _fake_hold(svc, turn_id=901, amount=0.5, pid=os.getpid(), start="0")
    # Another machine: cannot be checked, so it counts until MAX_AGE has passed.
    _fake_hold(svc, turn_id=902, amount=0.2, pid=1, host="elsewhere")
    _fake_hold(svc, turn_id=903, amount=0.7, pid=1, host="elsewhere",
               updated=datetime.now(timezone.utc) - MAX_AGE - timedelta(minutes=1))
    assert res.held() == pytest.approx(0.2)
    assert isinstance((await run(svc, "hello"))[-1], TurnFinished)
    assert set(res.turns()) == {902}


# --- two processes, one database --------------------------------------------------------------------

WORKER = r"""
import asyncio, json, os, random, sys, time
from skillchat import config
from skillchat.events import TurnFailed, TurnFinished
from skillchat.providers.detect import Environment
from skillchat.service import ChatService

go, turns = sys.argv[1], int(sys.argv[2])
svc = ChatService.create(config.load(), demo=False, environment=Environment(frozenset(), None, None),
                         rng=random.Random(os.getpid()), chunk_delay_s=0.0)
asyncio.run(svc.load_providers())
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.005)

async def main():
    out = []
    for i in range(turns):
        try:
            last = [ev async for ev in svc.run_turn(None, f"spend {i}", pin="big")][-1]
        except Exception as e:  # "database is locked" is issue 10's item 1, not this test's business
            out.append({"kind": "error", "cost": 0.0, "why": "", "error": repr(e)})
            continue
        out.append({"kind": type(last).__name__, "cost": getattr(last, "cost_usd", 0.0),
                    "why": getattr(last, "kind", ""), "error": getattr(last, "error", "")})
        if isinstance(last, TurnFailed) and last.kind == "refused":
            break
    return out

print(json.dumps(asyncio.run(main())), flush=True)
svc.close()
"""


@pytest.mark.slow
def test_two_processes_spending_the_last_of_a_budget_stay_within_it(tiny_path, tmp_path):
    limit = 0.05
    with FakeOpenAIServer() as server:
        server.behaviour.update(alpha="long", beta="long")
        # An answer longer than the budget ($0.045 from big) and slow enough for the calls to overlap.
        # Each call may cost at most what its context window allows (1000 tokens, $0.03), so a
        # second process finds room for a shorter answer while the first one streams.
        server.long_tokens = 1500
        server.word_delay_s = 0.02
        cfg = tmp_path / "config.toml"
        agents = "".join(
            f'\n[[agents]]\nid = "{a}"\nmodel = "openai/{m}"\napi_base = "{server.api_base}"\n'
            f'api_key_env = "FAKE_SERVER_KEY"\ncontext_window = 1000\nenabled = {"true" if a != "small" else "false"}\n'
            for a, m in (("big", "alpha"), ("mid", "beta"), ("small", "gamma")))
        cfg.write_text(f'handbook = "{tiny_path}"\n[budget]\ndaily_usd = {limit}\n{agents}', encoding="utf-8")
        env = {**os.environ, "SKILLCHAT_CONFIG": str(cfg), "SKILLCHAT_DB": str(tmp_path / "shared.db"),
               "FAKE_SERVER_KEY": KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        TraceStore.open(tmp_path / "shared.db").close()  # created and migrated before the race begins
        go = tmp_path / "go"
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(go), "40"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        try:
            for p in procs:
                assert p.stdout.readline().strip() == "ready", p.stderr.read()
            go.touch()
            results = []
            for p in procs:
                out, err = p.communicate(timeout=120)
                assert p.returncode == 0, err
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for p in procs:
                with contextlib.suppress(Exception):
                    p.kill()
    import sqlite3

    db = sqlite3.connect(tmp_path / "shared.db")
    total = db.execute("SELECT coalesce(sum(cost_usd), 0) FROM turns").fetchone()[0]
    held = db.execute("SELECT count(*) FROM budget_reservations").fetchone()[0]
    reported = sum(r["cost"] for rs in results for r in rs)
    assert total <= limit, (total, results)
    if not any(r["kind"] == "error" for rs in results for r in rs):
        assert reported == pytest.approx(total)
    assert total > 0.8 * limit  # the budget was really spent down to its last few cents
    assert all(rs[-1]["why"] == "refused" for rs in results)  # each process ended on a refusal
    assert all(any(r["kind"] == "TurnFinished" for r in rs) for rs in results)  # and both got to spend
    assert held == 0
