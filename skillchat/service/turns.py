"""The turn runner: one turn = save the user's message -> route -> call the chosen agent, then each
fallback while one fails or its budget hold is refused -> stream the answer -> write the outcome.
A cancelled or crashed turn is still written (outcomes.py); run_compare (compare.py) runs two of
these side by side."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncGenerator

from skillchat.budgets import CallPlan
from skillchat.core.compare import POLICY as COMPARE
from skillchat.core.decision import RoutingDecision
from skillchat.core.handbook import Handbook
from skillchat.core.ports import Message
from skillchat.core.router import NoEligibleAgent
from skillchat.errors import ProviderError, StoreError
from skillchat.events import AgentFailed, Attempt, TokenChunk, TurnEvent, TurnFailed, TurnFinished, TurnStarted
from skillchat.providers import demo as demo_script
from skillchat.providers import keys
from skillchat.providers.litellm_client import CallStats, LitellmProvider
from skillchat.service.holds import BudgetHolds
from skillchat.service.lifecycle import HandbookLifecycle
from skillchat.service.outcomes import TurnOutcomes, TurnState
from skillchat.service.records import Records

_KIND_WORDS = {
    "timeout": "timed out", "rate_limit": "hit a rate limit", "auth": "rejected the key",
    "server": "had a server error", "stream": "broke off mid-answer", "other": "failed",
    "budget": "would break the budget",
}


class TurnRunner(TurnOutcomes, BudgetHolds, HandbookLifecycle, Records):
    provider: LitellmProvider
    chunk_delay_s: float  # between a demo agent's chunks

    async def run_turn(self, conversation_id: int | None, text: str, pin: str | None = None) -> AsyncGenerator[TurnEvent, None]:
        routed = await self._open_and_route(conversation_id, text, pin or self._pinned)
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
        state = TurnState(saved_at=time.monotonic())
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

    async def _open_and_route(self, conversation_id: int | None, text: str, pin: str | None
                              ) -> tuple[int, int, list[Message], RoutingDecision] | TurnFailed:
        """The user's message saved and the turn routed, or the failed turn to report (the message kept)."""
        opened = self._open_turn(conversation_id, text)
        if isinstance(opened, TurnFailed):
            return opened
        conversation_id, user_message_id, messages = opened
        # Counted in a thread: the first message after opening a long conversation counts all of it
        # (0.7 s for 500 turns; later turns find the counts cached by text), and the app stays
        # responsive meanwhile.
        tokens = await asyncio.to_thread(self._counter.count, messages)
        try:
            decision = self.router.route(messages, lam=self.lam, policy=self.policy, rng=self.rng,
                                         pin=pin, exclude=self.pool.why_not(self.handbook.agents), prompt_tokens=tokens)
        except NoEligibleAgent as e:
            return self._no_agent(conversation_id, user_message_id, str(e))
        return conversation_id, user_message_id, messages, decision

    def _no_agent(self, conversation_id: int, user_message_id: int, why: str) -> TurnFailed:
        hint = "" if self._demo else "; `skillchat doctor` shows how each model is reached"
        error = f"{why}{hint}"
        turn_id = self.store.start_turn(conversation_id, user_message_id, None, demo=self._demo,
                                        status="failed", error=error)
        return TurnFailed(turn_id, error, conversation_id, "no_agent")

    async def _guarded(self, started: TurnStarted, messages: list[Message], text: str, state: TurnState,
                       plan: CallPlan | None = None) -> AsyncGenerator[TurnEvent, None]:
        """A started turn's events (`started` first), its outcome always written: cancelled, failed by a
        bug, or answered; its budget hold released at the end, and its progress saved meanwhile."""
        turn_id, conversation_id, decision = started.turn_id, started.conversation_id, started.decision
        keep_alive = asyncio.ensure_future(self._keep_alive(turn_id, state))
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
                self._record_cancelled(turn_id, state)
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
                      messages: list[Message], text: str, state: TurnState, *,
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
            state.endpoint, state.attempt_started, state.prompt_tokens = ep, time.monotonic(), decision.prompt_tokens
            try:
                if ep.via == "local":
                    ep = await self._local_endpoint(ep)
                call = self.provider.stream(ep, messages, stats, chunk_delay_s=delay, max_tokens=max_tokens)
                async with contextlib.aclosing(call) as pieces:
                    async for piece in pieces:
                        yield TokenChunk(turn_id, piece)
                        self._save_progress(turn_id, state)
            except ProviderError as e:
                died = self.local.death() if ep.via == "local" and self.local is not None else None
                if died:
                    e = ProviderError(died, e.kind, agent_id)
                attempts.append(Attempt(agent_id, ep.model, False, e.kind, str(e), stats.latency_s,
                                        self._partial_cost(ep, state.prompt_tokens, stats)))
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


def _note(hb: Handbook, attempts: list[Attempt]) -> str:
    if len(attempts) < 2:
        return ""
    name = lambda a: hb.agents[a].name if a in hb.agents else a  # noqa: E731
    failed = ", ".join(f"{name(a.agent_id)} {_KIND_WORDS.get(a.kind or '', 'failed')}" for a in attempts[:-1])
    return f"answered by {name(attempts[-1].agent_id)}: {failed}"
