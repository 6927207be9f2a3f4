"""How a turn is written: its outcome (kept to write again while the database stays locked), its
progress while it streams, and what a cancelled or broken call left (its text and probable cost)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Any

from skillchat.errors import StoreError
from skillchat.events import Attempt
from skillchat.providers.litellm_client import CallStats, cost_so_far
from skillchat.service.session import Session
from skillchat.tokens import answer_tokens

# A streaming turn saves its text and estimated cost this often (whichever comes first), and says it
# is alive at least every HEARTBEAT_S while it waits for a token.
SAVE_EVERY_S = 1.0
SAVE_EVERY_CHARS = 2000
HEARTBEAT_S = 5.0


@dataclasses.dataclass
class TurnState:
    """What run_turn's cancellation handler needs to know about the call in flight."""

    attempts: list[Attempt] = dataclasses.field(default_factory=list)
    stats: CallStats = dataclasses.field(default_factory=CallStats)
    endpoint: Any = None  # the endpoint streaming right now
    done: bool = False  # the outcome is written
    attempt_started: float = 0.0  # time.monotonic() when the call in flight began
    prompt_tokens: int = 0  # of the call in flight: routing's count of the same messages
    saved_at: float = 0.0  # time.monotonic() of the last progress save or heartbeat
    saved_size: tuple[int, int] = (0, 0)  # (text length, attempts) at the last progress save
    # Completion tokens of the call in flight up to a line end: (its stats, characters, tokens).
    counted: tuple[CallStats | None, int, int] = (None, 0, 0)
    reserved: bool = False  # budget money is held for this turn (released once the outcome is written)


class TurnOutcomes(Session):
    # What a cancelled turn is logged with; `skillchat ask` says which signal stopped it.
    cancel_reason: str
    # Outcomes whose write failed (the database stayed locked): retried before the next turn.
    _unsaved: dict[int, tuple[str, dict[str, Any]]]
    _unsaved_error: str
    _unsettled: set[int]  # turns holding budget money until their outcome is written

    # --- a turn's outcome: written now, or kept to write again ----------------------------------
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

    # --- progress while it streams: what a killed turn is closed with ----------------------------
    def _save_progress(self, turn_id: int, state: TurnState, *, beat: bool = False) -> None:
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
            if self.store.save_progress(turn_id, self._progress(state)):
                state.saved_size = (size, len(state.attempts))
                state.saved_at = now
        elif beat and since >= HEARTBEAT_S:
            if self.store.save_progress(turn_id):
                state.saved_at = now

    async def _keep_alive(self, turn_id: int, state: TurnState) -> None:
        """Saves text that stopped arriving (a stalled stream) and keeps the heartbeat going."""
        while not state.done:
            await asyncio.sleep(SAVE_EVERY_S)
            self._save_progress(turn_id, state, beat=True)

    def _progress(self, state: TurnState) -> dict[str, Any]:
        """What a killed turn is closed with: the text of the call in flight, its estimated cost
        and the attempts so far (that call last, as cancelled)."""
        ep, stats = state.endpoint, state.stats
        attempts = list(state.attempts)
        doc: dict[str, Any] = {"text": ""}
        if ep is not None:
            pt, ct, cost = self._estimate(ep, state)
            attempts.append(Attempt(ep.agent_id, ep.model, False, "cancelled", "interrupted: the process stopped",
                                    time.monotonic() - state.attempt_started, cost))
            doc.update(text=stats.text, agent_id=ep.agent_id, model=ep.model, prompt_tokens=pt,
                       completion_tokens=ct, ttft_s=stats.ttft_s)
        doc["cost_usd"] = sum(a.cost_usd for a in attempts)
        doc["latency_s"] = sum(a.latency_s or 0.0 for a in attempts)
        doc["attempts"] = [a.to_dict() for a in attempts]
        return doc

    def _estimate(self, ep: Any, state: TurnState) -> tuple[int | None, int | None, float]:
        """Tokens and cost of the call in flight so far (as _partial_cost, without touching its stats)."""
        text = state.stats.text
        if not text:
            return None, None, 0.0
        ct = self._completion_tokens(state)
        return state.prompt_tokens, ct, cost_so_far(ep, state.prompt_tokens, ct)

    def _completion_tokens(self, state: TurnState) -> int:
        """Tokens streamed so far by the call in flight, counted on from the last line end counted
        at the previous save: counting the whole answer again at every save took 60 ms and more
        of a long answer, on the loop that draws the screen and takes keys. Cutting at line ends
        can split a token or two that would have merged: a progress save is an estimate."""
        stats, text = state.stats, state.stats.text
        owner, done, tokens = state.counted
        if owner is not stats:  # a new call (a fallback) starts its text over
            done, tokens = 0, 0
        cut = text.rfind("\n", done) + 1
        if cut > done:
            tokens += answer_tokens(self._counter, text[done:cut])
            done = cut
        state.counted = (stats, done, tokens)
        return tokens + (answer_tokens(self._counter, text[done:]) if done < len(text) else 0)

    # --- a call that broke off or was cancelled: the text that arrived, what it probably cost -----
    def _partial_cost(self, ep: Any, pt: int, stats: CallStats) -> float:
        """What a call that broke off mid-answer probably cost: its prompt (`pt` tokens) plus the text
        that did arrive."""
        if not stats.text:
            return 0.0
        ct = answer_tokens(self._counter, stats.text)
        stats.prompt_tokens, stats.completion_tokens = pt, ct
        return cost_so_far(ep, pt, ct)  # this path cannot wait for litellm's import

    def _record_cancelled(self, turn_id: int, state: TurnState) -> None:
        """Keep what arrived of the answer, and what it probably cost, on a turn the user stopped."""
        ep, stats = state.endpoint, state.stats
        attempts = list(state.attempts)
        reason = self.cancel_reason
        if ep is not None:
            attempts.append(Attempt(ep.agent_id, ep.model, False, "cancelled", reason,
                                    stats.latency_s, self._partial_cost(ep, state.prompt_tokens, stats)))
        state.done = True
        # If this cannot be written (the database stays locked), the turn is closed on the next
        # start with the progress saved while it streamed: the cancellation itself must go on.
        self._finish(
            turn_id, "cancelled", attempts=attempts, agent_id=ep and ep.agent_id, model=ep and ep.model,
            text=(stats.text or None) if ep else None, prompt_tokens=stats.prompt_tokens or None,
            completion_tokens=stats.completion_tokens or None, cost_usd=sum(a.cost_usd for a in attempts),
            cost_known=False, latency_s=stats.latency_s or None, ttft_s=stats.ttft_s, error=reason,
        )
