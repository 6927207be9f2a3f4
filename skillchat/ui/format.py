"""Short texts the app shows about routing, costs and time; kept apart so tests can check them without a UI."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from skillchat.core.decision import RoutingDecision
from skillchat.core.handbook import Handbook
from skillchat.render import usd
from skillchat.text_safety import clean


def skill_name(hb: Handbook | None, skill_id: str) -> str:
    return clean(hb.skills[skill_id].name) if hb is not None and skill_id in hb.skills else skill_id


def mode_name(hb: Handbook | None, mode: str) -> str:
    return clean(hb.modes[mode].name) if hb is not None and mode in hb.modes else mode


def decision_summary(d: RoutingDecision, hb: Handbook | None, *, demo: bool = False) -> Text:
    """One line above the answer: who answers, what it should cost, which skills the turn needs."""
    w = d.winner
    t = Text(no_wrap=False)
    if demo:
        t.append(" DEMO ", style="bold reverse")
        t.append(" ")
    t.append("→ ", style="dim")
    t.append(clean(w.name), style="bold")
    t.append(f"  ~{usd(w.cost_usd)}{'' if w.cost_known else '?'}", style="")
    t.append("   ", style="")
    t.append(mode_name(hb, d.mode), style="italic")
    t.append(": ", style="dim")
    skills = sorted(d.skills, key=lambda s: -s.weight)[:3]
    t.append(" · ".join(f"{skill_name(hb, s.id)} {s.weight:.0%}" for s in skills))
    if d.policy == "pinned":
        t.append("   pinned", style="bold")
    elif d.explored:
        t.append(f"   exploring (p={d.probability:.2f})", style="dim")
    return t


def why_title(d: RoutingDecision) -> str:
    eligible = sum(1 for a in d.ranking if a.eligible)
    return f"why {clean(d.winner.name)}? ranking of {eligible} agent{'s' if eligible != 1 else ''}"


def ranking_renderable(d: RoutingDecision, hb: Handbook) -> Any:
    from skillchat.render import decision_table

    return decision_table(d, hb)


def seconds(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.1f} s"


def finished_stats(ev: Any, names: dict[str, str]) -> Text:
    """After the answer: tokens, cost and time as measured, and a note when a fallback happened."""
    t = Text()
    t.append(f"{ev.prompt_tokens:,} in · {ev.completion_tokens:,} out · ", style="dim")
    t.append(usd(ev.cost_usd or 0.0) + ("" if getattr(ev, "cost_known", True) else "?"))
    t.append(f" · {seconds(ev.latency_s)}", style="dim")
    if getattr(ev, "ttft_s", None) is not None:
        t.append(f" (first token {seconds(ev.ttft_s)})", style="dim")
    chain = list(getattr(ev, "fallback_chain", None) or ())
    note = getattr(ev, "note", "")
    if len(chain) > 1 or note:
        t.append("   fallback: ", style="bold yellow")
        # The service's own sentence says why; the chain is the fallback when it gave none.
        t.append(clean(note or " → ".join(_attempt(a, names) for a in chain)), style="yellow")
    warning = getattr(ev, "budget_warning", None)
    if warning:
        t.append(f"   {clean(warning)}", style="bold yellow")
    return t


def _attempt(a: Any, names: dict[str, str]) -> str:
    agent = getattr(a, "agent_id", a)
    name = names.get(agent, agent)
    if getattr(a, "ok", True):
        return name
    return f"{name} ✖{' ' + a.kind if getattr(a, 'kind', None) else ''}"
