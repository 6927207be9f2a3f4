"""`skillchat spend [--by day|model|mode|skill|agent] [--since ...] [--json]`: where the money went.

Reads the daily rollups the trace store keeps, so it answers at once however long the log is.
Plain text with Unicode bars; no rich, no litellm: this is a quick shell command.
"""

from __future__ import annotations

import argparse
import json
import sys

BY = ("day", "model", "mode", "skill", "agent")
_EIGHTHS = " ▏▎▍▌▋▊▉"


def _limit(text: str) -> int:
    from skillchat.config import whole_arg

    return whole_arg(0, 10**9)(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", choices=BY, default="model", help="breakdown (default: model)")
    p.add_argument("--since", metavar="WHEN", help="YYYY-MM-DD, YYYY-MM, today, yesterday, month, year, 7d, 4w, 3m")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--demo", action="store_true", help="report the demo turns (pretend money) instead")
    p.add_argument("--limit", type=_limit, default=30, metavar="N", help="show at most N rows (0: all; default 30)")


def bar(fraction: float, width: int = 24) -> str:
    """A left-aligned bar of `width` cells, in eighths of a cell."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[rest] if rest else "")).ljust(width)


def run(args: argparse.Namespace) -> int:
    # Deliberately light imports (no sqlite-utils, no routing core): this answers in milliseconds.
    from skillchat import config
    from skillchat.budgets import BudgetStatus
    from skillchat.store import clock, locking
    from skillchat.store import spend as spend_mod
    from skillchat.store.reading import open_for_reading

    cfg = config.load()
    db = open_for_reading()

    def read():  # type: ignore[no-untyped-def]
        today = clock.today()
        return (spend_mod.report(db, args.by, args.since, demo=args.demo),
                BudgetStatus.of(cfg.budget, spend_mod.spent_between(db, today.isoformat()),
                                spend_mod.spent_between(db, today.replace(day=1).isoformat())))

    try:
        report, budget = locking.retry_read(read)  # "database is locked": retried, then one line
    finally:
        db.close()
    if args.json:
        doc = report.to_dict() | {"budget": budget.to_dict()}
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from skillchat.text_safety import clean  # model and skill names came from handbooks and servers

    names: dict[str, str] = {}
    if report.by != "day":
        from skillchat import handbooks
        from skillchat.errors import SkillchatError

        try:
            names = handbooks.display_names()
        except SkillchatError:  # names are a nicety; the figures are what was asked for
            pass
    sys.stdout.write(clean(render(report, budget, args.limit, names)))
    return 0


def render(report, budget, limit: int = 30, names: dict[str, str] | None = None) -> str:  # type: ignore[no-untyped-def]
    from skillchat.money import usd

    t = report.total
    period = f"since {report.since}" if report.since else "all time"
    kind = "demo turns, pretend money" if report.demo else "real money"
    out = [f"Spend, {period} ({kind})"]
    if t.turns == 0:
        out.append("  no turns yet" + (f" ({report.demo_turns} demo turns: skillchat spend --demo)"
                                      if report.demo_turns and not report.demo else ""))
    else:
        out.append(f"  {t.turns:,.0f} turn{'' if t.turns == 1 else 's'} ({t.answered:,} answered)   actual {usd(t.cost_usd)}   "
                   f"estimated {usd(t.est_usd)}{_versus(t.cost_usd, t.est_usd)}")
        out.append(f"  tokens {t.prompt_tokens:,} in, {t.completion_tokens:,} out")
        if report.demo_turns and not report.demo:
            out.append(f"  (plus {report.demo_turns:,} demo turns, not counted)")
    if not report.demo:
        limits = budget.rows()
        if limits:
            out.append("")
            for row in limits:
                used = row["used"]
                flag = "  OVER" if used > 1 else ("  close" if used >= 0.8 else "")
                out.append(f"  {row['limit'] + ' budget':<21} {usd(row['spent_usd']):>9} of {usd(row['limit_usd']):<8} "
                           f"{bar(used, 20)} {used:>4.0%}{flag}")
        else:
            out.append(f"  today {usd(budget.today_usd)}, this month {usd(budget.month_usd)} (no budgets set)")
    rows = report.rows
    if rows:
        shown = rows[-limit:] if (limit and report.by == "day") else (rows[:limit] if limit else rows)
        top = max((r.cost_usd for r in rows), default=0.0)
        names = names or {}
        width = max(len(_key(r.key, names)) for r in shown)
        shared = "  (a turn's cost is shared among its skills by weight)" if report.by == "skill" else ""
        out += ["", f"By {report.by}{shared}"]
        out.append(f"  {'':<{width}} {'turns':>8} {'actual':>10} {'estimated':>10}")
        for r in shown:
            out.append(f"  {_key(r.key, names):<{width}} {r.turns:>8,.{0 if report.by != 'skill' else 1}f} "
                       f"{usd(r.cost_usd):>10} {usd(r.est_usd):>10}  {bar(r.cost_usd / top if top > 0 else 0.0)}")
        if len(shown) < len(rows):
            out.append(f"  ({len(rows) - len(shown)} more rows; --limit 0 shows all)")
    return "\n".join(out) + "\n"


def _key(k: str, names: dict[str, str]) -> str:
    return names.get(k, k) if k else "(no answer)"


def _versus(actual: float, est: float) -> str:
    if est <= 0:
        return ""
    diff = (actual - est) / est
    return f" (actual {abs(diff):.0%} {'over' if diff > 0 else 'under'})" if abs(diff) >= 0.005 else " (on target)"
