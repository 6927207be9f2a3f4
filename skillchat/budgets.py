"""Daily and monthly budgets: hard limits refuse a turn before any call, soft ones warn after it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from skillchat.config import Budget
from skillchat.money import usd


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    today_usd: float
    month_usd: float
    daily_usd: float | None = None
    monthly_usd: float | None = None
    soft_daily_usd: float | None = None
    soft_monthly_usd: float | None = None

    @classmethod
    def of(cls, budget: Budget, today_usd: float, month_usd: float) -> "BudgetStatus":
        return cls(today_usd, month_usd, budget.daily_usd, budget.monthly_usd, budget.soft_daily_usd,
                   budget.soft_monthly_usd)

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

    def refusal(self, estimate_usd: float) -> str | None:
        """Why a turn estimated at `estimate_usd` must not run, or None when it fits."""
        for label, spent, limit, hard in self._limits():
            if hard and spent + estimate_usd > limit:
                return (f"refused before calling any model: this turn (~{usd(estimate_usd)}) would take "
                        f"{label} spend to {usd(spent + estimate_usd)}, over your {label} budget of {usd(limit)} "
                        f"({usd(spent)} spent). Raise [budget] {label}_usd in the config, pick a cheaper model "
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
