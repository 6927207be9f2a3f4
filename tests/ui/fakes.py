"""A scripted stand-in for ChatService, for UI tests that must control timing exactly (the
streaming-lag benchmark, cancellation) and never touch litellm. Routing is the real core Router.

Everything that must prove the real wiring (ratings in SQLite, spend, relearn) uses the real
ChatService in demo mode instead; see app_driver.py.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator
from typing import Any

from skillchat import handbooks
from skillchat.budgets import BudgetStatus
from skillchat.config import Budget
from skillchat.core import Message, Router
from skillchat.events import Attempt, TokenChunk, TurnFinished, TurnStarted
from skillchat.store.spend import SpendReport, SpendRow


class _AllAgents:
    def __init__(self, handbook: Any) -> None:
        self.usable = list(handbook.agents)


class ScriptedService:
    """Satisfies skillchat.service_api.ChatServiceAPI (tests/test_service_api.py checks it). What the
    timing tests never use (the log, relearn, export) says so when called."""

    def __init__(self, *, answer: str = "Hello **there**.", chunk: int = 3, delay: float = 0.0,
                 chunks: list[str] | None = None, load_delay: float | None = 0.0, seed: int = 7) -> None:
        self.handbook = handbooks.load("general")
        self.router = Router(self.handbook)
        self.lam, self.pinned, self.demo = 0.2, None, True
        self.pool = _AllAgents(self.handbook)
        self.demo_reason, self.cancel_reason, self.policy = "", "cancelled by the user", "thompson"
        self.answer, self.chunk, self.delay, self.chunks = answer, chunk, delay, chunks
        self.load_delay = load_delay
        self.release = asyncio.Event()  # set it to let load_providers finish (when load_delay is None)
        self.ready = False
        self.rng = random.Random(seed)
        self.ratings: dict[int, str | float | None] = {}
        self.next_turn = 1
        self.conversations_: dict[int, list[tuple[str, str]]] = {}
        self.chunk_times: list[float] = []

    async def load_providers(self) -> None:
        if self.load_delay is None:
            await self.release.wait()
        else:
            await asyncio.sleep(self.load_delay)
        self.ready = True

    async def run_turn(self, conversation_id: int | None, text: str, pin: str | None = None,
                       **_: Any) -> AsyncGenerator[Any, None]:
        if conversation_id is None:
            conversation_id = len(self.conversations_) + 1
            self.conversations_[conversation_id] = []
        turn_id = self.next_turn
        self.next_turn += 1
        decision = self.router.route([Message("user", text)], lam=self.lam, rng=self.rng, pin=pin or self.pinned)
        yield TurnStarted(turn_id, conversation_id, decision, True)
        start = time.perf_counter()
        parts = self.chunks or [self.answer[i:i + self.chunk] for i in range(0, len(self.answer), self.chunk)]
        due = start
        for part in parts:
            if self.delay:
                # Paced against the clock, not by sleeping a fixed amount, so the rate holds under load.
                due += self.delay
                pause = due - time.perf_counter()
                await asyncio.sleep(max(pause, 0))
            self.chunk_times.append(time.perf_counter())
            yield TokenChunk(turn_id, part)
        full = "".join(parts)
        self.conversations_[conversation_id] += [("user", text), ("assistant", full)]
        yield TurnFinished(turn_id, decision.chosen, full, decision.prompt_tokens, len(parts), 0.001,
                           time.perf_counter() - start, 0.01,
                           (Attempt(decision.chosen, decision.winner.model, True),), None)

    def rate(self, turn_id: int | str, value: str | float | None, source: str = "user") -> int:
        self.ratings[int(turn_id)] = value
        return 0

    def budget_status(self) -> BudgetStatus:
        return BudgetStatus.of(Budget(), 0.0, 0.0)

    def spend(self, by: str = "day", since: Any = None) -> SpendReport:
        """What the header asks for in demo mode: the scripted turns' pretend cost ($0.001 each)."""
        turns = self.next_turn - 1
        total = SpendRow("", turns, 0.001 * turns, 0.001 * turns)
        return SpendReport(by, None, [], total, demo_turns=turns, demo_cost_usd=total.cost_usd, demo=True)

    def display_names(self) -> dict[str, str]:
        hb = self.handbook
        return {**{a: hb.agents[a].name for a in hb.agents}, **{s: hb.skills[s].name for s in hb.skills}}

    def set_lambda(self, lam: float) -> None:
        self.lam = lam

    def pin(self, agent_id: str | None) -> None:
        self.pinned = agent_id

    def handbook_infos(self) -> list[handbooks.HandbookInfo]:
        return handbooks.list_handbooks()

    def handbook_versions(self) -> list[handbooks.HandbookInfo]:
        return handbooks.versions(self.handbook.name)

    def use_handbook(self, ref: str) -> Any:
        self.handbook = handbooks.load(ref)
        self.router = Router(self.handbook)
        return self.handbook

    def set_demo(self, on: bool) -> None:
        self.demo = on

    def conversations(self, limit: int = 200) -> list[Any]:
        return []

    def transcript(self, conversation_id: int) -> list[Any]:
        return []

    def transcript_page(self, conversation_id: int, turns: int,
                        before_turn: int | None = None) -> tuple[list[Any], bool]:
        return [], False

    def turn(self, turn_id: int) -> None:
        return None

    def comparison(self, turn_id: int | str) -> None:
        return None

    def close(self) -> None:
        pass

    def _not_scripted(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ScriptedService is for timing tests; use the real ChatService in demo mode")

    relearn = relearn_demo = activate = activate_demo = export = run_compare = choose = _not_scripted
