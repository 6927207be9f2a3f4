"""ChatService: one turn = route -> stream from a provider -> write the trace -> learn. UI-free, async.

The contract the UI codes against is in docs/architecture.md. Invariants kept here:
* the user's message is committed before any provider is called, whatever happens next;
* the routing decision is logged before the first token, with every agent's probability;
* the in-memory handbook = its file + every rating newer than its `evidence_through` (applied at
  start-up) + ratings given in this session, each credited to the skills stored with its turn;
* a hard budget is never crossed: each call first reserves, in the database and atomically with
  the check, the most it can cost (max_tokens makes that finite), and settles to its real cost after;
* a running turn saves what it has streamed (text, estimated cost) every second or so, so a turn
  whose process is killed is closed on the next start with that (TraceStore.mark_interrupted);
* a rating changes the in-memory evidence by what the log says the handbook held for that turn,
  never by what this process last saw (another process may have rated it meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from skillchat import config as config_mod
from skillchat import handbooks, money
from skillchat.background import in_daemon_thread
from skillchat.budgets import BudgetStatus, CallPlan, plan_call
from skillchat.config import Config
from skillchat.core import compare as compare_core
from skillchat.core.compare import POLICY as COMPARE
from skillchat.core.decision import RoutingDecision
from skillchat.core.handbook import Handbook
from skillchat.core.learning import apply_rating_changes, rating_score
from skillchat.core.ports import Message, Price
from skillchat.core.router import NoEligibleAgent
from skillchat.errors import ProviderError, SkillchatError, StoreError
from skillchat.events import (
    AgentFailed,
    Attempt,
    CompareStarted,
    TokenChunk,
    TurnEvent,
    TurnFailed,
    TurnFinished,
    TurnStarted,
)
from skillchat.pricing import LitellmPriceBook
from skillchat.providers import demo as demo_script
from skillchat.providers import keys, local_model
from skillchat.providers.detect import Environment, detect
from skillchat.providers.litellm_client import (
    CallStats,
    LitellmProvider,
    actual_cost,
    cost_so_far,
    litellm_loaded,
    load_litellm,
    warm_up,
)
from skillchat.providers.pool import Pool, build_pool, with_config_agents
from skillchat.routing import build_router
from skillchat.store import TraceStore, clock
from skillchat.store.budget import Reservations
from skillchat.store.comparisons import Comparison, Comparisons
from skillchat.store.spend import SpendReport
from skillchat.store.traces import CatchUp, ConversationInfo, TranscriptEntry
from skillchat.tokens import TiktokenCounter

__all__ = [
    "AgentFailed", "Attempt", "ChatService", "TokenChunk", "TurnEvent", "TurnFailed", "TurnFinished", "TurnStarted",
]

# A streaming turn saves its text and estimated cost this often (whichever comes first), and says it
# is alive at least every HEARTBEAT_S while it waits for a token.
SAVE_EVERY_S = 1.0
SAVE_EVERY_CHARS = 2000
HEARTBEAT_S = 5.0

_KIND_WORDS = {
    "timeout": "timed out", "rate_limit": "hit a rate limit", "auth": "rejected the key",
    "server": "had a server error", "stream": "broke off mid-answer", "other": "failed",
    "budget": "would break the budget",
}


class ChatService:
    def __init__(
        self,
        *,
        config: Config,
        store: TraceStore,
        handbook: Handbook,
        environment: Environment | None,
        demo: bool,
        demo_reason: str = "",
        provider: LitellmProvider | None = None,
        rng: random.Random | None = None,
        chunk_delay_s: float | None = None,
        env: Mapping[str, str] | None = None,
        handbook_ref: str | None = None,
        local: local_model.LocalServer | None = None,
    ) -> None:
        self.config = config
        # The embedded local model's server: started when first needed, stopped by close(). It reads
        # the process's environment, as with_config_agents does (`env` is for provider keys).
        self.local = local if local is not None else (None if local_model.disabled() else local_model.LocalServer())
        self.handbook_ref = handbook_ref or handbook.ref  # what to reload it from (set_demo)
        self.store = store
        self._reservations = Reservations.of(store)
        self.comparisons = Comparisons(store)
        self.environment = environment
        self.demo_reason = demo_reason
        self._env = env
        # Variables the config names as holding keys: their values are secrets, whatever the names.
        self._key_names = tuple(sorted({a.api_key_env for a in config.agents if a.api_key_env}))
        self._counter = TiktokenCounter()
        self._prices = LitellmPriceBook()
        self.provider = provider or LitellmProvider(timeout_s=config.timeout_s, token_counter=self._counter, env=env)
        self.rng = rng or random.Random()
        self.chunk_delay_s = demo_script.CHUNK_DELAY_S if chunk_delay_s is None else chunk_delay_s
        self.lam = config.lam
        self.policy = "thompson" if config.explore else "greedy"
        self._pinned: str | None = None
        self._demo = demo
        self._ready = litellm_loaded()
        # What a cancelled turn is logged with; `skillchat ask` says which signal stopped it.
        self.cancel_reason = "cancelled by the user"
        # Outcomes whose write failed (the database stayed locked): retried before the next turn.
        self._unsaved: dict[int, tuple[str, dict[str, Any]]] = {}
        self._unsaved_error = ""
        self._unsettled: set[int] = set()  # turns holding budget money until their outcome is written
        self._through: int | None = None  # the last rating id the in-memory handbook holds
        self._adopt(handbook)

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        config: Config | None = None,
        demo: bool | None = None,
        *,
        store: TraceStore | None = None,
        environment: Environment | None = None,
        probe: bool = True,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> ChatService:
        """Open the store, load the active handbook, detect the pool.

        demo=None: the config's `demo`, or demo agents when no real agent is usable (say so via
        `demo_reason`); True/False force it. Probing a local Ollama or a proxy takes < 2 s.
        """
        cfg = config or config_mod.load()
        store = store or TraceStore.open()
        store.mark_interrupted()
        ref = handbooks.active_ref(cfg.handbook, store)
        hb = with_config_agents(handbooks.load(ref), cfg)
        environment = environment if environment is not None else detect(env, probe=probe)
        reason = ""
        if demo is None:
            demo = cfg.demo
            if not demo and not build_pool(hb, cfg, environment, env=env).usable:
                demo, reason = True, "no provider key, Ollama model or proxy was found; running demo agents"
        return cls(config=cfg, store=store, handbook=hb, environment=environment, demo=demo, demo_reason=reason,
                   env=env, handbook_ref=ref, **kwargs)

    def _adopt(self, hb: Handbook) -> None:
        """Make `hb` the routing handbook: bring its evidence up to date with the log first."""
        changes, last = self.store.ratings_since(hb.name, hb.evidence_through, include_demo=self._demo)
        through = _apply_catch_up(hb, hb.evidence_through, changes, last)
        if not self._demo:
            for agent, mode, pt, ct, usd in self.store.cost_observations(hb.name, hb.version):
                if agent in hb.agents and mode in hb.modes:
                    hb.record_cost(agent, mode, pt, ct, usd)
        self.handbook = hb
        self._through = through
        self._build_pool()
        self.router = build_router(hb, token_counter=self._counter, prices=self._prices)
        self._note_unpriced()

    def _build_pool(self) -> None:
        self.pool: Pool = build_pool(self.handbook, self.config, self.environment, demo=self._demo, env=self._env,
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

    def close(self) -> None:
        self.save_unsaved()  # if the database is still locked, the next start closes those turns
        self.store.close()
        if self.local is not None:
            self.local.stop()

    def sync_ratings(self) -> None:
        """Apply ratings given since this handbook last looked (by another process, or `skillchat rate`)."""
        hb = self.handbook
        changes, last = self.store.ratings_since(hb.name, self._through, include_demo=self._demo)
        self._through = _apply_catch_up(hb, self._through, changes, last)

    def save_unsaved(self) -> int:
        """Write the outcomes that could not be written when their turn ended; returns how many are left."""
        for turn_id, (status, kwargs) in list(self._unsaved.items()):
            try:
                self.store.finish_turn(turn_id, status, **kwargs)
            except StoreError:
                break
            del self._unsaved[turn_id]
            if turn_id in self._unsettled:
                self._settle(turn_id)
        return len(self._unsaved)

    # --- state --------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def demo(self) -> bool:
        return self._demo

    @property
    def pinned(self) -> str | None:
        return self._pinned

    def set_demo(self, on: bool) -> None:
        """Switch demo agents on or off; the handbook is reloaded so demo ratings never mix with real ones."""
        if on == self._demo:
            return
        self._demo = on
        self.demo_reason = ""
        self.use_handbook(self.handbook_ref, record=False)

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

    def use_handbook(self, ref: str, *, record: bool = True) -> Handbook:
        """Route with another handbook ("name" = its newest version, "name@N" = that version)."""
        hb = with_config_agents(handbooks.load(ref), self.config)
        self._adopt(hb)
        self.handbook_ref = ref
        if record:
            self.store.add_handbook_event("switch", hb.name, hb.version,
                                          {"ref": ref, "config_handbook": self.config.handbook})
        return hb

    def handbook_infos(self) -> list[handbooks.HandbookInfo]:
        """The newest version of every handbook there is to switch to."""
        return handbooks.list_handbooks()

    def handbook_versions(self) -> list[handbooks.HandbookInfo]:
        """Every version of the handbook routing now, oldest first (saved ones dated from the folder, not read)."""
        return handbooks.versions(self.handbook.name)

    def adopt_handbook(self, hb: Handbook, kind: str = "activate", detail: Mapping[str, Any] | None = None) -> None:
        """Route with a handbook object (a fresh relearn result); logs a handbook event of `kind`."""
        self._adopt(with_config_agents(hb, self.config))
        self.handbook_ref = hb.ref
        self.store.add_handbook_event(kind, hb.name, hb.version,
                                      {"ref": hb.ref, "config_handbook": self.config.handbook, **dict(detail or {})})

    # --- relearn (skillchat/relearning.py does the work) --------------------------------------
    def relearn(self, progress: Any = None, cancel: Any = None, **options: Any) -> Any:
        """Rebuild the active handbook from the rated log and save it as a new version.

        Blocking (run it in a thread); `progress(stage, done, total)` reports, `cancel.is_set()`
        stops it with nothing written (RelearnCancelled). The result (relearning.RelearnOutcome)
        has handbook, counts, changes, evaluation (off-policy, against the handbook routing now)
        and summary. The new version routes nothing until `activate(result)`.
        Options: half_life_days, evolve, min_split, seed, namer, policy, lam (see relearning.run).
        """
        from skillchat import relearning

        if self._demo:
            raise SkillchatError("relearn learns from real ratings only; switch demo agents off first")
        options.setdefault("lam", self.lam)
        options.setdefault("policy", self.policy)
        before = self.config.handbook
        outcome = relearning.run(self.config, self.store, current=self.handbook, prices=self._prices,
                                 progress=progress, cancel=cancel, **options)
        if outcome.path is not None:
            self._keep_routing_with(outcome.base, before, outcome.pinned)
        return outcome

    def _keep_routing_with(self, base: Handbook, config_before: str, pinned: str | None) -> None:
        """A new version was saved: make sure nothing starts routing with it before activation."""
        if pinned is not None:  # the config named the handbook without a version: now it names base's
            self.config = dataclasses.replace(self.config, handbook=pinned)
        ev = self.store.last_handbook_event(("switch", "activate"))
        if ev and ev["detail"].get("config_handbook") == config_before:
            ref = ev["detail"].get("ref") or ""
            if ref.partition("@")[0] == base.name and "@" not in ref:
                self.store.add_handbook_event("switch", base.name, base.version,
                                              {"ref": base.ref, "config_handbook": self.config.handbook})

    def activate(self, result: Any = None, ref: str | None = None) -> Handbook:
        """Route with a relearned version (a relearn result, or NAME@VERSION) from now on.

        Written to the config file (atomically, other settings kept), so the next start and the
        CLI agree; logged as an "activate" handbook event.
        """
        from skillchat import relearning

        if ref is None:
            if result is None:
                raise SkillchatError("nothing to activate: give a relearn result or NAME@VERSION")
            ref = getattr(result, "ref", None) or result.handbook.ref
        pinned = relearning.activate(self.config, ref)
        self.config = dataclasses.replace(self.config, handbook=pinned)
        hb = handbooks.load(pinned)
        self.adopt_handbook(hb, "activate", {"from": self.handbook.ref})
        return self.handbook

    # --- added for the app (issue #5): demo relearn, and one turn's record -----------------------
    # Demo mode has to show relearn working, but demo ratings must never reach a handbook file or
    # the config. So: the same pipeline over the demo log, as a dry run; and activation swaps only
    # the in-memory handbook, keeping its version number, so that leaving demo mode (set_demo
    # reloads name@version from its file) drops it cleanly.
    def relearn_demo(self, progress: Any = None, cancel: Any = None, **options: Any) -> Any:
        from skillchat import relearning

        if not self._demo:
            raise SkillchatError("relearn_demo is for demo mode; use relearn")
        options.setdefault("lam", self.lam)
        options.setdefault("policy", self.policy)
        return relearning.run(self.config, _DemoLog(self.store), current=self.handbook, prices=self._prices,
                              progress=progress, cancel=cancel, save=False, **options)

    def activate_demo(self, result: Any) -> Handbook:
        if not self._demo:
            raise SkillchatError("activate_demo is for demo mode; use activate")
        hb = result.handbook.copy()
        hb.version = self.handbook.version
        if hb.history:
            hb.history[-1] = {**hb.history[-1], "demo": True}
        self._adopt(with_config_agents(hb, self.config))
        return self.handbook

    def turn(self, turn_id: int) -> Any:
        """One turn as logged (decision, usage, attempts, rating): what the app shows for a past turn."""
        return self.store.turn(_turn_id(turn_id))

    # --- conversations ------------------------------------------------------------------------
    def new_conversation(self) -> int:
        return self.store.new_conversation(demo=self._demo)

    def conversations(self, limit: int = 200) -> list[ConversationInfo]:
        return self.store.conversations(limit)

    def transcript(self, conversation_id: int) -> list[TranscriptEntry]:
        return self.store.transcript(conversation_id)

    def transcript_page(self, conversation_id: int, turns: int,
                        before_turn: int | None = None) -> tuple[list[TranscriptEntry], bool]:
        return self.store.transcript_page(conversation_id, turns, before_turn)

    # --- one turn -----------------------------------------------------------------------------
    async def run_turn(self, conversation_id: int | None, text: str, pin: str | None = None) -> AsyncGenerator[TurnEvent, None]:
        routed = self._open_and_route(conversation_id, text, pin or self._pinned)
        if isinstance(routed, TurnFailed):
            yield routed
            return
        conversation_id, user_message_id, messages, decision = routed
        if not self._demo:
            refusal = self.budget_status().refusal(decision.estimated_cost)
            if refusal:
                turn_id = self.store.start_turn(conversation_id, user_message_id, decision, demo=False,
                                                status="refused", error=refusal)
                yield TurnFailed(turn_id, refusal, conversation_id, "refused")
                return
        turn_id = self.store.start_turn(conversation_id, user_message_id, decision, demo=self._demo)
        state = _TurnState(saved_at=time.monotonic())
        started = TurnStarted(turn_id, conversation_id, decision, self._demo)
        async with contextlib.aclosing(self._guarded(started, messages, text, state)) as events:
            async for ev in events:
                yield ev

    def _open_turn(self, conversation_id: int | None, text: str) -> tuple[int, int, list[Message]] | TurnFailed:
        """Save the user's message and read the context: (conversation, message id, messages)."""
        try:
            if conversation_id is None:
                conversation_id = self.store.new_conversation(demo=self._demo)
            elif not self.store.conversation_exists(conversation_id):
                return TurnFailed(None, f"no conversation {conversation_id}", conversation_id, "failed")
            # First thing, before anything can fail: the user's words are never lost. (The store
            # retries while another process holds the database; if it never lets go, say so.)
            user_message_id = self.store.add_message(conversation_id, "user", text)
        except StoreError as e:
            return TurnFailed(None, f"your message was not saved, and not sent: {e}", conversation_id, "unsaved")
        self.save_unsaved()
        self.sync_ratings()
        return conversation_id, user_message_id, self.store.history(conversation_id)

    def _open_and_route(self, conversation_id: int | None, text: str, pin: str | None
                        ) -> tuple[int, int, list[Message], RoutingDecision] | TurnFailed:
        """The user's message saved and the turn routed, or the failed turn to report (the message kept)."""
        opened = self._open_turn(conversation_id, text)
        if isinstance(opened, TurnFailed):
            return opened
        conversation_id, user_message_id, messages = opened
        try:
            decision = self.router.route(messages, lam=self.lam, policy=self.policy, rng=self.rng,
                                         pin=pin, exclude=self.pool.why_not(self.handbook.agents))
        except NoEligibleAgent as e:
            return self._no_agent(conversation_id, user_message_id, str(e))
        return conversation_id, user_message_id, messages, decision

    def _no_agent(self, conversation_id: int, user_message_id: int, why: str) -> TurnFailed:
        hint = "" if self._demo else "; `skillchat doctor` shows how each model is reached"
        error = f"{why}{hint}"
        turn_id = self.store.start_turn(conversation_id, user_message_id, None, demo=self._demo,
                                        status="failed", error=error)
        return TurnFailed(turn_id, error, conversation_id, "no_agent")

    async def _guarded(self, started: TurnStarted, messages: list[Message], text: str, state: _TurnState,
                       plan: CallPlan | None = None) -> AsyncGenerator[TurnEvent, None]:
        """A started turn's events (`started` first), its outcome always written: cancelled, failed by a
        bug, or answered; its budget hold released at the end, and its progress saved meanwhile."""
        turn_id, conversation_id, decision = started.turn_id, started.conversation_id, started.decision
        keep_alive = asyncio.ensure_future(self._keep_alive(turn_id, messages, state))
        try:
            yield started
            # aclosing: when the consumer is cancelled or closes us, the inner generators (and the
            # HTTP stream under them) are closed now, not whenever the garbage collector gets to them.
            chain = [decision.chosen] if decision.policy == COMPARE else None  # a comparison has no fallbacks
            async with contextlib.aclosing(self._answer(turn_id, conversation_id, decision, messages, text,
                                                        state, chain=chain, plan=plan)) as events:
                async for ev in events:
                    yield ev
        except (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt):
            if not state.done:
                self._record_cancelled(turn_id, messages, state)
            raise
        except Exception as e:  # a bug must not leave the turn 'running' forever
            if state.done:
                raise
            error = keys.redact(f"internal error: {type(e).__name__}: {e}", self._env, self._key_names) or "internal error"
            state.done = True
            if not self._finish(turn_id, "failed", attempts=state.attempts, error=error):
                error += f"; {self._unsaved_note()}"
            yield TurnFailed(turn_id, error, conversation_id, "failed")
        finally:
            keep_alive.cancel()
            if state.reserved:
                self._settle(turn_id)

    async def _answer(self, turn_id: int, conversation_id: int, decision: RoutingDecision,
                      messages: list[Message], text: str, state: _TurnState, *,
                      chain: list[str] | None = None, plan: CallPlan | None = None) -> AsyncGenerator[TurnEvent, None]:
        """Call the chain's agents in turn (the chosen one, then the fallbacks) until one answers.
        `plan`: money already held for the first call (a comparison reserves both of its calls)."""
        hb = self.handbook
        chain = chain or [decision.chosen] + decision.fallbacks()
        held = plan
        estimates = {a.agent_id: a.cost_usd for a in decision.ranking}
        attempts = state.attempts
        budget = None if self._demo else self.budget_status()
        for i, agent_id in enumerate(chain):
            ep = self.pool.endpoints[agent_id]
            nxt = chain[i + 1] if i + 1 < len(chain) else None
            plan, held = held, None
            if plan is None and budget is not None and budget.hard:
                reserved = self._reserve(turn_id, decision, agent_id, ep, estimates.get(agent_id, 0.0), attempts, state)
                if isinstance(reserved, str):
                    attempts.append(Attempt(agent_id, ep.model, False, "budget", reserved))
                    yield AgentFailed(turn_id, agent_id, reserved, "budget", nxt)
                    continue
                plan = reserved
            max_tokens = plan.max_tokens if plan is not None else None
            delay = 0.0
            if self._demo:
                delay = self.chunk_delay_s
                if ep.mock_response is None:
                    ep = dataclasses.replace(ep, mock_response=demo_script.answer(hb, decision, agent_id, text))
            stats = state.stats = CallStats()
            state.endpoint, state.attempt_started, state.prompt_tokens = ep, time.monotonic(), None
            try:
                if ep.via == "local":
                    ep = await self._local_endpoint(ep)
                call = self.provider.stream(ep, messages, stats, chunk_delay_s=delay, max_tokens=max_tokens)
                async with contextlib.aclosing(call) as pieces:
                    async for piece in pieces:
                        yield TokenChunk(turn_id, piece)
                        self._save_progress(turn_id, messages, state)
            except ProviderError as e:
                died = self.local.death() if ep.via == "local" and self.local is not None else None
                if died:
                    e = ProviderError(died, e.kind, agent_id)
                attempts.append(Attempt(agent_id, ep.model, False, e.kind, str(e), stats.latency_s,
                                        self._partial_cost(ep, messages, stats)))
                state.endpoint = None
                yield AgentFailed(turn_id, agent_id, str(e), e.kind, nxt)
                continue
            cost = stats.cost_usd + sum(a.cost_usd for a in attempts)
            attempts.append(Attempt(agent_id, ep.model, True, latency_s=stats.latency_s, cost_usd=stats.cost_usd))
            warning = None
            if budget is not None:
                warning = dataclasses.replace(budget, today_usd=budget.today_usd + cost,
                                              month_usd=budget.month_usd + cost).warning()
            if plan is not None and plan.capped and stats.completion_tokens >= (plan.max_tokens or 0):
                cut = (f"the answer was cut at {plan.max_tokens} tokens to stay within your "
                       f"{plan.limit_label} budget")
                warning = f"{cut}; {warning}" if warning else cut
            total_latency = sum(a.latency_s or 0.0 for a in attempts)
            saved = self._finish(
                turn_id, "answered", attempts=attempts, agent_id=agent_id, model=ep.model, text=stats.text,
                prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens, cost_usd=cost,
                cost_known=stats.cost_known, latency_s=total_latency, ttft_s=stats.ttft_s, budget_warning=warning,
            )
            state.done = True
            if not saved:
                yield TurnFailed(turn_id, f"the answer arrived but could not be saved: {self._unsaved_note()}",
                                 conversation_id, "unsaved")
                return
            if not self._demo:  # scripted answers say nothing about what a real model costs
                hb.record_cost(agent_id, decision.mode, stats.prompt_tokens, stats.completion_tokens, stats.cost_usd)
            yield TurnFinished(
                turn_id, agent_id, stats.text, stats.prompt_tokens, stats.completion_tokens, cost, total_latency,
                stats.ttft_s, tuple(attempts), warning, _note(hb, attempts), stats.cost_known,
            )
            return
        if attempts and all(a.kind == "budget" for a in attempts):
            # No model was called: the budget (as other processes left it) has no room for any agent.
            error = attempts[0].error or "refused: over budget"
            if len(attempts) > 1:
                error += f" (and no other agent fits either: {', '.join(a.agent_id for a in attempts[1:])})"
            state.done = True
            if not self._finish(turn_id, "refused", attempts=attempts, error=error):
                error += f"; {self._unsaved_note()}"
            yield TurnFailed(turn_id, error, conversation_id, "refused")
            return
        error = "every agent failed: " + "; ".join(f"{a.agent_id} {_KIND_WORDS.get(a.kind or '', 'failed')}"
                                                  for a in attempts)
        state.done = True
        if not self._finish(turn_id, "failed", attempts=attempts, error=error,
                            cost_usd=sum(a.cost_usd for a in attempts),
                            latency_s=sum(a.latency_s or 0.0 for a in attempts)):
            error += f"; {self._unsaved_note()}"
        yield TurnFailed(turn_id, error, conversation_id, "failed")

    # --- side-by-side comparison ---------------------------------------------------------------
    async def run_compare(self, conversation_id: int | None, text: str) -> AsyncGenerator[TurnEvent, None]:
        """Ask two agents at once (core/compare.py picks them): the best expected one and a challenger.

        Each answer is its own turn, logged with policy "compare" and the chance the comparison had
        of calling its agent. With a hard budget both calls are reserved in one transaction before
        either is made: if both do not fit, neither is made. No fallbacks: a failed side just fails.
        Yields CompareStarted, then both turns' events as they come. `choose` records the pick.
        """
        routed = self._open_and_route(conversation_id, text, None)  # a comparison is never pinned
        if isinstance(routed, TurnFailed):
            yield routed
            return
        conversation_id, user_message_id, messages, decision = routed
        pair = compare_core.pick_pair(decision, self.rng)
        if pair is None:
            only = decision.winner.name
            why = f"nothing to compare: {only} is the only agent that can take this turn"
            yield self._no_agent(conversation_id, user_message_id, why)
            return
        sides = [compare_core.side_decision(decision, pair, a) for a in pair.agents]
        refusal = None if self._demo else self.budget_status().refusal(sum(d.estimated_cost for d in sides))
        if refusal:
            refusal = refusal.replace("this turn", "comparing both answers", 1)
            c = self.comparisons.start(conversation_id, user_message_id, *sides, demo=False, status="refused",
                                       error=refusal)
            yield TurnFailed(c.left_turn, refusal, conversation_id, "refused")
            return
        c = self.comparisons.start(conversation_id, user_message_id, *sides, demo=self._demo)
        states = [_TurnState(saved_at=time.monotonic()) for _ in sides]
        plans: list[CallPlan | None] = [None, None]
        budget = None if self._demo else self.budget_status()
        if budget is not None and budget.hard:
            held = self._reserve_both(c, sides, states)
            if isinstance(held, str):
                for tid, side in zip(c.turns, sides, strict=True):
                    attempt = Attempt(side.chosen, self.pool.endpoints[side.chosen].model, False, "budget", held)
                    self._finish(tid, "refused", attempts=[attempt], error=held)
                yield TurnFailed(c.left_turn, held, conversation_id, "refused")
                return
            plans = list(held)
        started = [TurnStarted(tid, conversation_id, d, self._demo) for tid, d in zip(c.turns, sides, strict=True)]
        queue: asyncio.Queue[TurnEvent | None] = asyncio.Queue()

        async def pump(events: AsyncGenerator[TurnEvent, None]) -> None:
            try:
                async with contextlib.aclosing(events) as evs:
                    async for ev in evs:
                        queue.put_nowait(ev)
            finally:
                queue.put_nowait(None)

        # Each side's own TurnStarted is folded into CompareStarted: the consumer sees that one.
        tasks = [asyncio.ensure_future(pump(self._guarded(st, messages, text, state, plan)))
                 for st, state, plan in zip(started, states, plans, strict=True)]
        try:
            yield CompareStarted(started[0], started[1], pair.beats[pair.challenger])
            ended = 0
            while ended < len(tasks):
                ev = await queue.get()
                if ev is None:
                    ended += 1
                elif not isinstance(ev, TurnStarted):
                    yield ev
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for tid, state in zip(c.turns, states, strict=True):  # a side cancelled before it ever ran
                if not state.done:
                    self._record_cancelled(tid, messages, state)
                if state.reserved:
                    self._settle(tid)

    def _reserve_both(self, c: Comparison, sides: list[RoutingDecision],
                      states: list[_TurnState]) -> tuple[CallPlan, CallPlan] | str:
        """Hold the most both calls can cost, in one transaction, or say why they must not be made.

        Each side may take half of what the hard limits leave; what the first does not need goes
        to the second."""
        today = clock.today()
        eps = [self.pool.endpoints[d.chosen] for d in sides]

        def plan(d: RoutingDecision, ep: Any, room: float, label: str) -> CallPlan | str:
            agent = self.handbook.agents.get(d.chosen)
            return plan_call(room, prompt_tokens=d.prompt_tokens, price=self._budget_price(ep),
                             estimate_usd=d.estimated_cost, output_limit=self._prices.max_output_tokens(ep.cost_model),
                             context_window=agent.context_window if agent else None, limit_label=label)

        def decide(today_usd: float, month_usd: float, held_usd: float) -> tuple[tuple[float, ...] | None, Any]:
            status = BudgetStatus.of(self.config.budget, today_usd, month_usd, held_usd)
            room, label = status.headroom() or (0.0, "")
            first = plan(sides[0], eps[0], room / 2, label)
            second = plan(sides[1], eps[1], room - first.reserve_usd, label) if isinstance(first, CallPlan) else None
            if not isinstance(first, CallPlan) or not isinstance(second, CallPlan):
                why = first if isinstance(first, str) else second
                held = f"; {money.usd(held_usd)} is held by turns still running" if held_usd > 0 else ""
                return None, (f"refused before calling either model: both answers must fit in your {label} budget "
                              f"({money.usd(room)} left), and they do not: {why}{held}")
            return (first.reserve_usd, second.reserve_usd), (first, second)

        try:
            result = self._reservations.reserve_together(c.turns, decide, first_day=today.isoformat(),
                                                          month_day=today.replace(day=1).isoformat())
        except StoreError as e:
            return f"refused before calling either model: {e}"
        if not isinstance(result, str):
            for state in states:
                state.reserved = True
        return result

    def comparison(self, turn_id: int | str) -> Comparison | None:
        """The comparison a turn answered in, or None."""
        return self.comparisons.of_turn(_turn_id(turn_id))

    def choose(self, turn_id: int | str, outcome: str) -> Comparison:
        """The user's pick for a comparison (either turn's id): left, right, both_good or both_bad.

        Rates both answers (the better one up and the other down, or both alike), and the
        conversation goes on from the right answer only when it was preferred."""
        tid = _turn_id(turn_id)
        found = self.comparisons.of_turn(tid)
        if found is None:
            raise SkillchatError(f"turn {tid} was not part of a comparison")
        ratings = compare_core.outcome_ratings(outcome)
        for side in found.turns:
            t = self.store.turn(side)
            if t is None or t.status != "answered":
                raise SkillchatError(f"turn {side} has no answer to compare (it {t.status if t else 'is missing'})")
        chosen = self.comparisons.decide(tid, outcome)
        for side, value in zip(found.turns, ratings, strict=True):
            self.rate(side, value, source="compare")
        return chosen

    # --- writing a turn's progress and outcome -------------------------------------------------
    def _finish(self, turn_id: int, status: str, **kwargs: Any) -> bool:
        """Write a turn's outcome (the store retries while the database is busy). If it still
        cannot, keep it to write before the next turn and at close; False says so."""
        try:
            self.store.finish_turn(turn_id, status, **kwargs)
        except StoreError as e:
            self._unsaved[turn_id] = (status, kwargs)
            self._unsaved_error = str(e)
            return False
        return True

    def _unsaved_note(self) -> str:
        return (f"{self._unsaved_error or 'the database is busy'}. It is written again before the next "
                "turn; if skillchat stops first, the turn is closed as interrupted on the next start")

    def _save_progress(self, turn_id: int, messages: list[Message], state: _TurnState, *, beat: bool = False) -> None:
        """Save the text streamed so far every SAVE_EVERY_S or SAVE_EVERY_CHARS, whichever first
        (a cheap write, skipped when another process holds the lock); on `beat`, at least say
        the turn is alive every HEARTBEAT_S."""
        if state.done:
            return
        now = time.monotonic()
        ep = state.endpoint
        size = len(state.stats.text) if ep is not None else 0
        changed = (size, len(state.attempts)) != state.saved_size
        since = now - state.saved_at
        if changed and (since >= SAVE_EVERY_S or size - state.saved_size[0] >= SAVE_EVERY_CHARS):
            if self.store.save_progress(turn_id, self._progress(messages, state)):
                state.saved_size = (size, len(state.attempts))
                state.saved_at = now
        elif beat and since >= HEARTBEAT_S:
            if self.store.save_progress(turn_id):
                state.saved_at = now

    async def _keep_alive(self, turn_id: int, messages: list[Message], state: _TurnState) -> None:
        """Saves text that stopped arriving (a stalled stream) and keeps the heartbeat going."""
        while not state.done:
            await asyncio.sleep(SAVE_EVERY_S)
            self._save_progress(turn_id, messages, state, beat=True)

    def _progress(self, messages: list[Message], state: _TurnState) -> dict[str, Any]:
        """What a killed turn is closed with: the text of the call in flight, its estimated cost
        and the attempts so far (that call last, as cancelled)."""
        ep, stats = state.endpoint, state.stats
        attempts = list(state.attempts)
        doc: dict[str, Any] = {"text": ""}
        if ep is not None:
            pt, ct, cost = self._estimate(ep, messages, state)
            attempts.append(Attempt(ep.agent_id, ep.model, False, "cancelled", "interrupted: the process stopped",
                                    time.monotonic() - state.attempt_started, cost))
            doc.update(text=stats.text, agent_id=ep.agent_id, model=ep.model, prompt_tokens=pt,
                       completion_tokens=ct, ttft_s=stats.ttft_s)
        doc["cost_usd"] = sum(a.cost_usd for a in attempts)
        doc["latency_s"] = sum(a.latency_s or 0.0 for a in attempts)
        doc["attempts"] = [a.to_dict() for a in attempts]
        return doc

    def _estimate(self, ep: Any, messages: list[Message], state: _TurnState) -> tuple[int | None, int | None, float]:
        """Tokens and cost of the call in flight so far (as _partial_cost, without touching its stats)."""
        text = state.stats.text
        if not text:
            return None, None, 0.0
        if state.prompt_tokens is None:
            state.prompt_tokens = self._counter.count(messages)
        ct = max(0, self._counter.count([Message("assistant", text)]) - 6)
        return state.prompt_tokens, ct, cost_so_far(ep, state.prompt_tokens, ct)

    # --- hard budgets: reserve before a call, settle after ------------------------------------
    def _reserve(self, turn_id: int, decision: RoutingDecision, agent_id: str, ep: Any, estimate: float,
                 attempts: list[Attempt], state: _TurnState) -> CallPlan | str:
        """Hold the most this call can cost, or say why it must not be made (a refusal sentence).

        Taken in one write transaction with the check against what is spent and what other calls
        (of any process) hold, so that two turns can never both take the last dollars. The turn's
        earlier attempts count too: they are not in the spend totals until the turn is written.
        """
        agent = self.handbook.agents.get(agent_id)
        price = self._budget_price(ep)
        output_limit = self._prices.max_output_tokens(ep.cost_model)
        spent_in_turn = sum(a.cost_usd for a in attempts)
        today = clock.today()

        def decide(today_usd: float, month_usd: float, held_usd: float) -> tuple[float | None, CallPlan | str]:
            status = BudgetStatus.of(self.config.budget, today_usd + spent_in_turn, month_usd + spent_in_turn,
                                     held_usd)
            room = status.headroom()
            if room is None:
                return None, CallPlan(0.0, None)
            plan = plan_call(room[0], prompt_tokens=decision.prompt_tokens, price=price, estimate_usd=estimate,
                             output_limit=output_limit, context_window=agent.context_window if agent else None,
                             limit_label=room[1])
            if isinstance(plan, str):
                held = f"; {money.usd(held_usd)} is held by turns still running" if held_usd > 0 else ""
                return None, f"refused before calling {agent_id}: {plan}{held}"
            return spent_in_turn + plan.reserve_usd, plan

        try:
            plan = self._reservations.reserve(turn_id, decide, first_day=today.isoformat(),
                                              month_day=today.replace(day=1).isoformat())
        except StoreError as e:
            return f"refused before calling {agent_id}: {e}"
        if not isinstance(plan, str):
            state.reserved = True
        return plan

    def _settle(self, turn_id: int) -> None:
        """Stop holding budget money for a turn once its outcome, with its real cost, is written.
        An outcome still waiting to be written keeps its hold until it is (save_unsaved); if the
        process ends first, the hold counts until the next start closes the turn as interrupted."""
        if turn_id in self._unsaved:
            self._unsettled.add(turn_id)
            return
        self._unsettled.discard(turn_id)
        with contextlib.suppress(StoreError):  # the row stops counting anyway: see store/budget.py
            self._reservations.release(turn_id)

    def _budget_price(self, ep: Any) -> Price | None:
        """The price a call is reserved at: the higher of the configured price and litellm's list,
        as the call's real cost comes from one or the other."""
        found = [p for p in (ep.price, self._prices.price(ep.cost_model)) if p is not None]
        if not found:
            return None
        return Price(max(p.input for p in found), max(p.output for p in found))

    def _partial_cost(self, ep: Any, messages: list[Message], stats: CallStats) -> float:
        """What a call that broke off mid-answer probably cost: prompt plus the text that did arrive."""
        if not stats.text:
            return 0.0
        pt = self._counter.count(messages)
        ct = max(0, self._counter.count([Message("assistant", stats.text)]) - 6)
        stats.prompt_tokens, stats.completion_tokens = pt, ct
        return cost_so_far(ep, pt, ct)  # this path cannot wait for litellm's import

    def _record_cancelled(self, turn_id: int, messages: list[Message], state: _TurnState) -> None:
        """Keep what arrived of the answer, and what it probably cost, on a turn the user stopped."""
        ep, stats = state.endpoint, state.stats
        attempts = list(state.attempts)
        reason = self.cancel_reason
        if ep is not None:
            attempts.append(Attempt(ep.agent_id, ep.model, False, "cancelled", reason,
                                    stats.latency_s, self._partial_cost(ep, messages, stats)))
        state.done = True
        # If this cannot be written (the database stays locked), the turn is closed on the next
        # start with the progress saved while it streamed: the cancellation itself must go on.
        self._finish(
            turn_id, "cancelled", attempts=attempts, agent_id=ep and ep.agent_id, model=ep and ep.model,
            text=(stats.text or None) if ep else None, prompt_tokens=stats.prompt_tokens or None,
            completion_tokens=stats.completion_tokens or None, cost_usd=sum(a.cost_usd for a in attempts),
            cost_known=False, latency_s=stats.latency_s or None, ttft_s=stats.ttft_s, error=reason,
        )

    # --- ratings ------------------------------------------------------------------------------
    def rate(self, turn_id: int | str, value: str | float | None, source: str = "user") -> int:
        """Store a rating at once (None clears it) and apply it to the active handbook; returns its id."""
        tid = _turn_id(turn_id)
        new = None if value is None else rating_score(value)
        hb = self.handbook
        # In one transaction: the rating, and every rating on this handbook's turns since the last
        # one it holds (this one included, with what the handbook held for the turn before it).
        _, rating_id, changes = self.store.rate_and_catch_up(tid, new, source, hb.name, self._through,
                                                              include_demo=self._demo)
        # The new rating's id is the largest there is (ids only grow, and this ran under the lock).
        self._through = _apply_catch_up(hb, self._through, changes, rating_id)
        return rating_id

    # --- money --------------------------------------------------------------------------------
    def budget_status(self) -> BudgetStatus:
        """Real spend against the limits; `reserved_usd` is what calls in flight (any process) hold."""
        today = clock.today()
        budget = self.config.budget
        held = self._reservations.held() if budget.daily_usd is not None or budget.monthly_usd is not None else 0.0
        return BudgetStatus.of(
            budget,
            self.store.spent_between(today.isoformat()),
            self.store.spent_between(today.replace(day=1).isoformat()),
            held,
        )

    def spend(self, by: str = "day", since: Any = None) -> SpendReport:
        """Real spend; in demo mode, the demo turns' pretend spend (report.demo says which)."""
        report = self.store.spend_report(by, since, demo=self._demo)
        return dataclasses.replace(report, budget=self.budget_status().to_dict())

    def display_names(self) -> dict[str, str]:
        """id -> name of agents, modes and skills of every handbook (spend covers turns routed with
        any of them), the handbook in use winning."""
        try:
            names = handbooks.display_names()
        except SkillchatError:
            names = {}
        hb = self.handbook
        names.update({a: hb.agents[a].name for a in hb.agents})
        names.update({s: hb.skills[s].name for s in hb.skills})
        names.update({m: hb.modes[m].name for m in hb.modes})
        return names

    # --- export -------------------------------------------------------------------------------
    def export(self, conversation_id: int, fmt: str = "markdown") -> str:
        from skillchat.exports import export_conversation

        out = export_conversation(self.store, conversation_id, fmt, self.handbook)
        for value in keys.secret_values(self._env, self._key_names):  # belt and braces: nothing below should hold one
            out = out.replace(value, "[redacted]")
        return out


@dataclasses.dataclass
class _TurnState:
    """What run_turn's cancellation handler needs to know about the call in flight."""

    attempts: list[Attempt] = dataclasses.field(default_factory=list)
    stats: CallStats = dataclasses.field(default_factory=CallStats)
    endpoint: Any = None  # the endpoint streaming right now
    done: bool = False  # the outcome is written
    attempt_started: float = 0.0  # time.monotonic() when the call in flight began
    prompt_tokens: int | None = None  # of the call in flight, counted once for progress saves
    saved_at: float = 0.0  # time.monotonic() of the last progress save or heartbeat
    saved_size: tuple[int, int] = (0, 0)  # (text length, attempts) at the last progress save
    reserved: bool = False  # budget money is held for this turn (released once the outcome is written)


class _DemoLog:
    """The trace store as a demo relearn reads it: demo turns count, and nothing can be written."""

    def __init__(self, store: TraceStore) -> None:
        self._store = store

    def rated_turns(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.rated_turns(*args, **{**kwargs, "include_demo": True})

    def catch_up(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.catch_up(*args, **{**kwargs, "include_demo": True})

    def add_handbook_event(self, *args: Any, **kwargs: Any) -> Any:
        raise SkillchatError("a demo relearn writes nothing")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

def _apply_catch_up(hb: Handbook, through: int | None, changes: list[CatchUp], last: int) -> int | None:
    """Bring `hb` from holding the ratings up to `through` to holding every rating up to `last`
    (`changes` is store.catch_up's list: each turn's value as of `through`, and now, read in the
    same snapshot as `last`). Returns the new watermark."""
    apply_rating_changes(hb, changes)
    marks = [m for m in (through, last, *(c.rating_id for c in changes)) if m is not None and m > 0]
    return max(marks) if marks else through


def _turn_id(turn_id: int | str) -> int:
    try:
        return int(turn_id)
    except (TypeError, ValueError):
        raise SkillchatError(f"a turn id is a number, not {turn_id!r}") from None


def _note(hb: Handbook, attempts: list[Attempt]) -> str:
    if len(attempts) < 2:
        return ""
    name = lambda a: hb.agents[a].name if a in hb.agents else a  # noqa: E731
    failed = ", ".join(f"{name(a.agent_id)} {_KIND_WORDS.get(a.kind or '', 'failed')}" for a in attempts[:-1])
    return f"answered by {name(attempts[-1].agent_id)}: {failed}"
