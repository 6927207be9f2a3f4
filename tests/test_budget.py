"""Hard budgets hold in one process: one long answer, fallbacks, cancellation, turn after turn.

The loopback server (tests/openai_server.py) streams "long" answers of `long_tokens` tokens, cut at
the request's max_tokens as a real server does, so a test can see both what was asked for and what
it cost. Prices come from tests/data/tiny.json: big $10/$30 and mid $1/$3 per million tokens.
Several processes on one database: tests/reliability/test_budget_processes.py.
"""

from __future__ import annotations

import random

import pytest

from skillchat.budgets import MIN_ANSWER_TOKENS, BudgetStatus, CallPlan, plan_call
from skillchat.config import AgentConfig, Budget, Config
from skillchat.core.ports import Price
from skillchat.events import AgentFailed, TokenChunk, TurnFailed, TurnFinished
from skillchat.providers.detect import Environment
from skillchat.providers.litellm_client import load_litellm
from skillchat.service import ChatService
from skillchat.store.budget import Reservations

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
    openai_server.piece_delay_s = 0.05
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
