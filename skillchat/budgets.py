"""Daily and monthly budgets: hard limits are never crossed, soft ones warn after a turn.

A hard limit holds under fallbacks, cancellation and several processes on one database because
every model call first *reserves* the most it can cost (skillchat/store/budget.py keeps the
reservations in the database, taken inside one write transaction), and that most is made finite
by sending `max_tokens`: as many answer tokens as the money left can pay for at the agent's output
price, never more than the model's own limit. `plan_call` works that out; it is pure arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from skillchat.config import Budget
from skillchat.money import usd

if TYPE_CHECKING:  # the routing core is not imported at run time: `skillchat spend` stays quick
    from skillchat.core.ports import Price

# Our token count of a prompt (tiktoken's o200k, or a heuristic) can be below the provider's own:
# the reservation assumes the prompt is this much longer, plus a few tokens of chat framing.
PROMPT_MARGIN = 1.25
PROMPT_SLACK_TOKENS = 32
# A call whose budget leaves room for fewer answer tokens than this is refused, not cut to a stub.
MIN_ANSWER_TOKENS = 16


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    today_usd: float
    month_usd: float
    daily_usd: float | None = None
    monthly_usd: float | None = None
    soft_daily_usd: float | None = None
    soft_monthly_usd: float | None = None
    # Money held by model calls in flight (in this process and others): not spent yet, but it may be.
    reserved_usd: float = 0.0

    @classmethod
    def of(cls, budget: Budget, today_usd: float, month_usd: float, reserved_usd: float = 0.0) -> BudgetStatus:
        return cls(today_usd, month_usd, budget.daily_usd, budget.monthly_usd, budget.soft_daily_usd,
                   budget.soft_monthly_usd, reserved_usd)

    def _limits(self) -> list[tuple[str, float, float, bool]]:
        out = []
        for label, spent, limit, hard in (
            ("daily", self.today_usd, self.daily_usd, True),
            ("monthly", self.month_usd, self.monthly_usd, True),
            ("soft daily", self.today_usd, self.soft_daily_usd, False),
            ("soft monthly", self.month_usd, self.soft_monthly_usd, False),
        ):
            if limit is not None:
                out.append((label, spent, limit, hard))
        return out

    @property
    def hard(self) -> bool:
        """True when a hard limit is set (only then are calls reserved and capped)."""
        return self.daily_usd is not None or self.monthly_usd is not None

    def headroom(self) -> tuple[float, str] | None:
        """The money every hard limit still allows, calls in flight counted, and the tightest limit's
        label; None when no hard limit is set."""
        left = [(limit - spent - self.reserved_usd, label) for label, spent, limit, hard in self._limits() if hard]
        if not left:
            return None
        room, label = min(left)
        return max(0.0, room), label

    def refusal(self, estimate_usd: float) -> str | None:
        """Why a turn estimated at `estimate_usd` must not run, or None when it fits."""
        for label, spent, limit, hard in self._limits():
            committed = spent + self.reserved_usd
            if hard and committed + estimate_usd > limit:
                held = f", {usd(self.reserved_usd)} held by turns still running" if self.reserved_usd > 0 else ""
                return (f"refused before calling any model: this turn (~{usd(estimate_usd)}) would take "
                        f"{label} spend to {usd(committed + estimate_usd)}, over your {label} budget of {usd(limit)} "
                        f"({usd(spent)} spent{held}). Raise [budget] {label}_usd in the config, pick a cheaper model "
                        f"or raise lambda.")
        return None

    def warning(self) -> str | None:
        """A soft limit passed: go on, but say so."""
        for label, spent, limit, hard in self._limits():
            if not hard and spent > limit:
                return f"{label.removeprefix('soft ')} spend {usd(spent)} is over your soft limit of {usd(limit)}"
        return None

    def rows(self) -> list[dict[str, Any]]:
        """Each limit with how much of it is used, for `spend` and the UI."""
        return [{"limit": label, "hard": hard, "spent_usd": spent, "limit_usd": limit,
                 "used": (spent / limit) if limit > 0 else (1.0 if spent > 0 else 0.0)}
                for label, spent, limit, hard in self._limits()]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"limits": self.rows()}


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What one model call may cost at most, and the `max_tokens` that makes it so."""

    reserve_usd: float  # the most the call can cost: what is held until it is settled
    max_tokens: int | None  # sent to the model; None: nothing to send (free, or a price we do not know)
    capped: bool = False  # max_tokens is below the model's own limit because of the budget
    limit_label: str = ""  # the hard limit that capped it


def plan_call(
    headroom: float,
    *,
    prompt_tokens: int,
    price: Price | None,
    estimate_usd: float,
    output_limit: int | None,
    context_window: int | None = None,
    limit_label: str = "daily",
) -> CallPlan | str:
    """The reservation and `max_tokens` for one call with `headroom` dollars left under the hard
    limits, or a sentence saying why the call must not be made.

    `output_limit` is the model's own limit on answer tokens when known; without it, what the
    context window leaves after the prompt. max_tokens is always sent for a priced model, so the
    reservation bounds the call even when a server would answer at greater length than we think.
    """
    if estimate_usd > headroom:
        return (f"this call (~{usd(estimate_usd)}) does not fit in the {usd(headroom)} left under your "
                f"{limit_label} budget")
    if price is None:
        # A model without a known price records $0 (its cost is unknown), so the money at risk in
        # our accounting is the estimate, which is made of observed costs.
        return CallPlan(max(0.0, estimate_usd), None)
    prompt_usd = (prompt_tokens * PROMPT_MARGIN + PROMPT_SLACK_TOKENS) * price.input
    room = headroom - prompt_usd
    if room < 0:
        return (f"the prompt alone (~{usd(prompt_usd)}) does not fit in the {usd(headroom)} left under your "
                f"{limit_label} budget")
    if price.output <= 0:
        return CallPlan(prompt_usd, None)
    bound = output_limit
    if bound is None and context_window is not None:
        bound = max(MIN_ANSWER_TOKENS, context_window - math.ceil(prompt_tokens * PROMPT_MARGIN) - PROMPT_SLACK_TOKENS)
    affordable = math.floor(room / price.output)
    if bound is not None and affordable >= bound:
        return CallPlan(prompt_usd + bound * price.output, bound)  # the budget is not the tighter bound
    if affordable < MIN_ANSWER_TOKENS:
        return (f"the {usd(headroom)} left under your {limit_label} budget pays for fewer than "
                f"{MIN_ANSWER_TOKENS} answer tokens")
    return CallPlan(prompt_usd + affordable * price.output, affordable, True, limit_label)
