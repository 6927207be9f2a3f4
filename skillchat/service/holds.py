"""Hard budgets: before every call, hold the most it can cost, in the database and atomically with
the check (store/budget.py), or refuse it with a sentence saying why. The hold is released once the
turn's outcome is written (outcomes.py, _settle)."""

from __future__ import annotations

from typing import Any

from skillchat import money
from skillchat.budgets import BudgetStatus, CallPlan, plan_call
from skillchat.core.decision import RoutingDecision
from skillchat.core.ports import Price
from skillchat.errors import StoreError
from skillchat.events import Attempt
from skillchat.service.outcomes import TurnState
from skillchat.service.session import Session
from skillchat.store import clock
from skillchat.store.comparisons import Comparison


class BudgetHolds(Session):
    def _reserve(self, turn_id: int, decision: RoutingDecision, agent_id: str, ep: Any, estimate: float,
                 attempts: list[Attempt], state: TurnState) -> CallPlan | str:
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

    def _budget_price(self, ep: Any) -> Price | None:
        """The price a call is reserved at: the higher of the configured price and litellm's list,
        as the call's real cost comes from one or the other."""
        found = [p for p in (ep.price, self._prices.price(ep.cost_model)) if p is not None]
        if not found:
            return None
        return Price(max(p.input for p in found), max(p.output for p in found))

    def _reserve_both(self, c: Comparison, sides: list[RoutingDecision],
                      states: list[TurnState]) -> tuple[CallPlan, CallPlan] | str:
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
