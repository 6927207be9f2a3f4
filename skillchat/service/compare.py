"""Side by side: one message answered by two agents at once, each answer its own turn, and the
user's pick between them turned into ratings."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator

from skillchat.budgets import CallPlan
from skillchat.core import compare as compare_core
from skillchat.errors import SkillchatError
from skillchat.events import Attempt, CompareStarted, TurnEvent, TurnFailed, TurnStarted
from skillchat.service.outcomes import TurnState
from skillchat.service.session import parse_turn_id
from skillchat.service.turns import TurnRunner
from skillchat.store.comparisons import Comparison, Comparisons


class Comparing(TurnRunner):
    comparisons: Comparisons

    async def run_compare(self, conversation_id: int | None, text: str) -> AsyncGenerator[TurnEvent, None]:
        """Ask two agents at once (core/compare.py picks them): the best expected one and a challenger.

        Each answer is its own turn, logged with policy "compare" and the chance the comparison had
        of calling its agent. With a hard budget both calls are reserved in one transaction before
        either is made: if both do not fit, neither is made. No fallbacks: a failed side just fails.
        Yields CompareStarted, then both turns' events as they come. `choose` records the pick.
        """
        routed = await self._open_and_route(conversation_id, text, None)  # a comparison is never pinned
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
        states = [TurnState(saved_at=time.monotonic()) for _ in sides]
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
                    self._record_cancelled(tid, state)
                if state.reserved:
                    self._settle(tid)

    def comparison(self, turn_id: int | str) -> Comparison | None:
        """The comparison a turn answered in, or None."""
        return self.comparisons.of_turn(parse_turn_id(turn_id))

    def choose(self, turn_id: int | str, outcome: str) -> Comparison:
        """The user's pick for a comparison (either turn's id): left, right, both_good or both_bad.

        Rates both answers (the better one up and the other down, or both alike), and the
        conversation goes on from the right answer only when it was preferred."""
        tid = parse_turn_id(turn_id)
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
