"""Plain-text and Rich renderings of a routing decision, shared by the CLI commands."""

from __future__ import annotations

from typing import Any

from skillchat.core.decision import RoutingDecision
from skillchat.core.handbook import Handbook
from skillchat.money import usd  # noqa: F401  (re-exported: the CLI and UI format money from here)
from skillchat.text_safety import clean, one_line, plain


def skills_text(d: RoutingDecision, hb: Handbook | None = None, limit: int = 4) -> str:
    parts = []
    for s in sorted(d.skills, key=lambda s: -s.weight)[:limit]:
        name = hb.skills[s.id].name if hb is not None and s.id in hb.skills else s.id
        parts.append(f"{name} {s.weight:.0%}")
    return ", ".join(parts)


def decision_line(d: RoutingDecision, hb: Handbook | None = None) -> str:
    """One line: mode, skills, chosen agent, estimated cost, why."""
    w = d.winner
    return one_line(f"[{d.mode}] {skills_text(d, hb)} -> {w.name} ~{usd(w.cost_usd)} "
                    f"({d.policy}, p={d.probability:.2f}): {d.reason}")


def _batch_widths(hb: Handbook) -> tuple[int, int]:
    # Fixed from the handbook, not from the rows: rows are printed as they are routed.
    mode = max((len(m.name) for m in hb.modes.values()), default=4)
    agent = max((len(a.name) for a in hb.agents.values()), default=5)
    return max(mode, 4), max(agent, 5)


def batch_header(hb: Handbook) -> str:
    """Column heads of `route --batch` without --json: one row per input line follows."""
    mode, agent = _batch_widths(hb)
    return f"{'line':>5}  {'mode':<{mode}}  {'agent':<{agent}}  {'p':>4}  {'est. cost':>9}  top skills"


def batch_row(line: int, d: RoutingDecision, hb: Handbook) -> str:
    mode, agent = _batch_widths(hb)
    w = d.winner
    mode_name = hb.modes[d.mode].name if d.mode in hb.modes else d.mode
    cost = usd(w.cost_usd) + ("" if w.cost_known else "?")
    return one_line(f"{line:>5}  {mode_name:<{mode}}  {w.name:<{agent}}  {d.probability:>4.2f}  {cost:>9}  "
                    f"{skills_text(d, hb, limit=3)}")


def decision_table(d: RoutingDecision, hb: Handbook) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    head = Text()
    head.append("mode ", style="dim")
    head.append(clean(hb.modes[d.mode].name if d.mode in hb.modes else d.mode), style="bold")
    head.append(f"   handbook {d.handbook}@{d.handbook_version}   lambda {d.lam:g}   prompt ~{d.prompt_tokens:,} tokens",
                style="dim")

    skills = Table(title="active skills", title_justify="left", box=None, pad_edge=False)
    skills.add_column("skill")
    skills.add_column("weight", justify="right")
    skills.add_column("evidence", overflow="fold")
    for s in sorted(d.skills, key=lambda s: -s.weight):
        name = hb.skills[s.id].name if s.id in hb.skills else s.id
        skills.add_row(Text.assemble(plain(name), " ", plain(f"({s.id})", "dim")), f"{s.weight:.0%}",
                       plain(", ".join(s.evidence) or "-"))

    agents = Table(title="agents", title_justify="left", box=None, pad_edge=False)
    for col, just in (("", "left"), ("agent", "left"), ("competence", "right"), ("est. cost", "right"),
                      ("score", "right"), ("p(chosen)", "right")):
        agents.add_column(col, justify=just)  # type: ignore[arg-type]
    for a in d.ranking:
        mark = "->" if a.agent_id == d.chosen else ""
        if not a.eligible:
            agents.add_row("", plain(a.name, "dim"), "", "", "", plain(a.excluded or "", "dim"))
            continue
        cost = usd(a.cost_usd) + ("" if a.cost_known else "?")
        agents.add_row(
            mark,
            plain(a.name, "bold" if mark else ""),
            f"{a.competence:.2f} ±{a.uncertainty:.2f}",
            cost,
            f"{a.score:.3f}",
            f"{a.probability:.2f}",
        )
    why = Text.assemble(("chosen: ", "dim"), (clean(d.winner.name), "bold green"), (" because ", "dim"), clean(d.reason))
    return Group(head, Text(""), skills, Text(""), agents, Text(""), why)
