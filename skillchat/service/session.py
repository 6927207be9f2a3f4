"""Session: what every part of the chat service shares (the state below), the agents it can call
and the settings a user changes. ChatService (chat.py) sets the state up; the handbook lifecycle
(lifecycle.py) replaces the handbook, pool and router together."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import Mapping
from typing import Any

from skillchat import config as config_mod
from skillchat.background import in_daemon_thread
from skillchat.config import Config
from skillchat.core.handbook import Handbook
from skillchat.core.router import Router
from skillchat.errors import ProviderError, SkillchatError
from skillchat.pricing import LitellmPriceBook
from skillchat.providers import local_model
from skillchat.providers.detect import Environment
from skillchat.providers.litellm_client import actual_cost, litellm_loaded, load_litellm, warm_up
from skillchat.providers.pool import Pool, build_pool
from skillchat.store import TraceStore
from skillchat.store.budget import Reservations
from skillchat.tokens import TiktokenCounter


class Session:
    config: Config
    store: TraceStore
    environment: Environment | None
    _env: Mapping[str, str] | None  # where provider keys are read (None: the process's environment)
    _key_names: tuple[str, ...]
    local: local_model.LocalServer | None
    _counter: TiktokenCounter
    _prices: LitellmPriceBook
    _reservations: Reservations  # hard-budget holds (store/budget.py)
    rng: random.Random
    lam: float
    policy: str  # "thompson" explores, "gentle" on at most 1 turn in 4, "greedy" not at all
    _pinned: str | None
    _demo: bool
    demo_reason: str
    _ready: bool  # load_providers has run, or litellm was imported already
    # The handbook routing now, and what follows from it (lifecycle.py replaces them together).
    handbook: Handbook
    handbook_ref: str  # what to reload it from (set_demo)
    _through: int | None  # the last rating id the in-memory handbook holds
    pool: Pool
    router: Router

    def _build_pool(self) -> None:
        self.pool = build_pool(self.handbook, self.config, self.environment, demo=self._demo, env=self._env,
                               local=self.local)
        if self._pinned is not None and self._pinned not in self.pool.endpoints:
            self._pinned = None

    async def load_providers(self) -> None:
        """Import litellm (about four seconds) in a thread, so the event loop keeps running; start the
        local model meanwhile, if it is in the pool (a failure leaves it out, saying why)."""
        jobs = [self.start_local()] if self.local_wanted else []
        if not self._ready:
            jobs.append(in_daemon_thread(self._load_and_warm, "loading litellm"))
        await asyncio.gather(*jobs)
        self._ready = True

    @property
    def local_wanted(self) -> bool:
        """The local model is in the pool and its server is not up yet."""
        ep = self.pool.endpoints.get(local_model.AGENT_ID)
        return ep is not None and ep.via == "local" and self.local is not None and not self.local.running()

    async def start_local(self) -> None:
        """Start the local model's server; if it cannot start, the pool says why and routes around it."""
        assert self.local is not None
        with contextlib.suppress(local_model.LocalModelError):
            await in_daemon_thread(self.local.start, "starting the local model")
        self._build_pool()

    async def _local_endpoint(self, ep: Any) -> Any:
        """The local agent's endpoint at its server's address, starting the server if it is not up."""
        assert self.local is not None
        try:
            url = await in_daemon_thread(self.local.start, "starting the local model")
        except local_model.LocalModelError as e:
            self._build_pool()  # until the fix, routing leaves it out and says why
            raise ProviderError(str(e), "server", ep.agent_id) from None
        return dataclasses.replace(ep, api_base=url)

    def _load_and_warm(self) -> None:
        warm_up(load_litellm())
        self._note_unpriced()
        self._counter.warm_up()  # the tokenizer loads here, not mid-turn

    def _note_unpriced(self) -> None:
        """Once litellm is loaded, have it say which of the pool's models it has no price for: they are
        noted on disk (providers/unpriced.py), and `ask` then costs calls to them without importing it."""
        if litellm_loaded():
            for ep in self.pool.endpoints.values():
                actual_cost(load_litellm(), ep, 0, 0)

    # --- state and settings -------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def demo(self) -> bool:
        return self._demo

    @property
    def pinned(self) -> str | None:
        return self._pinned

    def set_lambda(self, lam: float) -> None:
        """Raises ConfigError (a SkillchatError) for anything but a finite number in [0, 10]."""
        self.lam = config_mod.check_lambda(lam)

    def pin(self, agent_id: str | None) -> None:
        """Answer every turn with one agent (logged as policy "pinned", propensity 1), or None to route."""
        if agent_id is not None:
            if agent_id not in self.handbook.agents:
                raise SkillchatError(f"no agent {agent_id!r} in handbook {self.handbook.ref} "
                                     f"(have: {', '.join(self.handbook.agents)})")
            if agent_id not in self.pool.endpoints:
                why = next((s.how for s in self.pool.statuses if s.agent_id == agent_id), "not usable")
                raise SkillchatError(f"{agent_id} cannot be used here: {why}")
        self._pinned = agent_id


def parse_turn_id(turn_id: int | str) -> int:
    try:
        return int(turn_id)
    except (TypeError, ValueError):
        raise SkillchatError(f"a turn id is a number, not {turn_id!r}") from None
