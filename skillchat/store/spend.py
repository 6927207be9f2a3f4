"""Spend reports and budget totals, read from the daily rollups (never a scan of all turns).

Days are local calendar days, so `--since` has day granularity. Demo turns are kept apart: their
"cost" is what the scripted agents would have cost, not money spent.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from skillchat.errors import SkillchatError
from skillchat.store import clock

BY = ("day", "model", "mode", "skill", "agent")


class Database(Protocol):
    """A sqlite3.Connection or a sqlite_utils Database: all this module needs is execute()."""

    def execute(self, sql: str, parameters: Any = ...) -> Any: ...

_COLUMN = {"day": "day", "model": "model", "mode": "mode", "agent": "agent_id"}


@dataclass(frozen=True, slots=True)
class SpendRow:
    key: str
    turns: float  # fractional for skills: a turn is shared among its skills by weight
    est_usd: float
    cost_usd: float
    prompt_tokens: int | None = None  # not split by skill
    completion_tokens: int | None = None
    answered: int | None = None


@dataclass(frozen=True, slots=True)
class SpendReport:
    by: str
    since: str | None  # first local day included
    rows: list[SpendRow]
    total: SpendRow
    demo_turns: int = 0  # all demo turns in the period, whichever kind is reported
    demo_cost_usd: float = 0.0
    budget: dict[str, Any] = field(default_factory=dict)
    demo: bool = False  # True: rows and total are demo turns (pretend money)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_since(value: str | date | datetime | None, today: date | None = None) -> date | None:
    """YYYY-MM-DD, YYYY-MM, today, yesterday, month, year, or N followed by d/w/m (days, weeks, months)."""
    if value is None or isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value
    today = today or clock.today()
    s = value.strip().lower()
    if s == "today":
        return today
    if s == "yesterday":
        return today - timedelta(days=1)
    if s in ("month", "this-month"):
        return today.replace(day=1)
    if s in ("year", "this-year"):
        return today.replace(month=1, day=1)
    m = re.fullmatch(r"(\d+)\s*([dwm])", s)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        if unit == "m":
            month_index = today.year * 12 + today.month - 1 - n
            return date(month_index // 12, month_index % 12 + 1, 1)
        return today - timedelta(days=max(n - 1, 0) if unit == "d" else 7 * n - 1)
    try:
        if re.fullmatch(r"\d{4}-\d{2}", s):
            return date.fromisoformat(s + "-01")
        return date.fromisoformat(s)
    except ValueError:
        raise SkillchatError(
            f"--since {value!r}: use YYYY-MM-DD, YYYY-MM, today, yesterday, month, year, or 7d / 4w / 3m"
        ) from None


def report(db: Database, by: str = "model", since: str | date | datetime | None = None, *,
           demo: bool = False) -> SpendReport:
    """Totals and one breakdown; `demo=True` reports the demo turns instead of real spend."""
    if by not in BY:
        raise SkillchatError(f"spend by {by!r}: choose one of {', '.join(BY)}")
    first = parse_since(since)
    day_from = first.isoformat() if first else ""
    rows: list[SpendRow] = []
    if by == "skill":
        cur = db.execute(
            """SELECT skill, sum(turns), sum(est_usd), sum(cost_usd) FROM spend_daily_skill
               WHERE demo = ? AND day >= ? GROUP BY skill ORDER BY sum(cost_usd) DESC, skill""",
            [int(demo), day_from],
        )
        rows = [SpendRow(r[0], float(r[1]), float(r[2]), float(r[3])) for r in cur.fetchall()]
    else:
        col = _COLUMN[by]
        order = "1" if by == "day" else "sum(cost_usd) DESC, 1"
        cur = db.execute(
            f"""SELECT {col}, sum(turns), sum(est_usd), sum(cost_usd), sum(prompt_tokens), sum(completion_tokens),
                       sum(answered)
                FROM spend_daily WHERE demo = ? AND day >= ? GROUP BY 1 ORDER BY {order}""",
            [int(demo), day_from],
        )
        rows = [SpendRow(r[0], float(r[1]), float(r[2]), float(r[3]), int(r[4]), int(r[5]), int(r[6]))
                for r in cur.fetchall()]
    t = db.execute(
        """SELECT demo, coalesce(sum(turns), 0), coalesce(sum(est_usd), 0), coalesce(sum(cost_usd), 0),
                  coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), coalesce(sum(answered), 0)
           FROM spend_daily WHERE day >= ? GROUP BY demo""",
        [day_from],
    ).fetchall()
    shown = next((r for r in t if r[0] == int(demo)), (0, 0, 0.0, 0.0, 0, 0, 0))
    other = next((r for r in t if r[0] == 1), (1, 0, 0.0, 0.0, 0, 0, 0))
    total = SpendRow("total", float(shown[1]), float(shown[2]), float(shown[3]), int(shown[4]), int(shown[5]),
                     int(shown[6]))
    return SpendReport(by, day_from or None, rows, total, int(other[1]), float(other[3]), demo=demo)


def spent_between(db: Database, first_day: str, last_day: str | None = None) -> float:
    """Real money spent on local days first_day..last_day (inclusive; open-ended when None)."""
    if last_day is None:
        r = db.execute("SELECT coalesce(sum(cost_usd), 0) FROM spend_daily WHERE demo = 0 AND day >= ?", [first_day])
    else:
        r = db.execute(
            "SELECT coalesce(sum(cost_usd), 0) FROM spend_daily WHERE demo = 0 AND day BETWEEN ? AND ?",
            [first_day, last_day],
        )
    return float(r.fetchone()[0])
