"""F2 or /spend: what routing has cost, when and on what; and how close the budgets are."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, ProgressBar, Sparkline, Static, TabbedContent, TabPane

from skillchat.render import usd
from skillchat.text_safety import plain

if TYPE_CHECKING:
    from skillchat.service_api import ChatServiceAPI
    from skillchat.ui.app import SkillchatApp

CHART_DAYS = 30
PERIODS = (("today", "today"), ("month", "this month"), (None, "all time"))


@dataclass
class SpendData:
    """Everything the screen shows, read in one go off the event loop."""

    totals: dict[str, Any] = field(default_factory=dict)  # period label -> SpendRow total
    by: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # dim -> key -> period -> row
    daily: list[float] = field(default_factory=list)  # cost per day, oldest first, CHART_DAYS long
    first_day: date | None = None
    budget: Any = None
    demo_turns: int = 0
    demo_cost: float = 0.0
    demo: bool = False  # the figures are the demo turns' pretend spend, not money
    names: dict[str, str] = field(default_factory=dict)


def read_spend(svc: ChatServiceAPI, today: date | None = None) -> SpendData:
    today = today or date.today()
    data = SpendData(budget=svc.budget_status())
    data.names = svc.display_names()  # turns routed with other handbooks keep their names too
    for since, label in PERIODS:
        for dim in ("agent", "mode", "skill"):
            rep = svc.spend(by=dim, since=since)
            data.totals[label] = rep.total
            if label == "all time":
                data.demo = bool(getattr(rep, "demo", False))
                data.demo_turns, data.demo_cost = rep.demo_turns, rep.demo_cost_usd
            for row in rep.rows:
                data.by.setdefault(dim, {}).setdefault(row.key, {})[label] = row
    first = today - timedelta(days=CHART_DAYS - 1)
    rep = svc.spend(by="day", since=first.isoformat())
    per_day = {r.key: r.cost_usd for r in rep.rows}
    data.daily = [per_day.get((first + timedelta(days=i)).isoformat(), 0.0) for i in range(CHART_DAYS)]
    data.first_day = first
    return data


def budget_renderable(b: Any, *, config_path: str = "") -> Any:
    """Budgets as text bars; used by /budget in the transcript."""
    rows = b.rows() if b is not None else []
    if not rows:
        return Text.assemble(("No budgets set. ", "bold"), f"Add a [budget] table to {config_path or 'the config'} "
                             "(daily_usd, monthly_usd, soft_daily_usd, soft_monthly_usd).")
    t = Table(box=None, pad_edge=False, title="budgets", title_justify="left")
    for col in ("limit", "spent", "of", "used", ""):
        t.add_column(col)
    for r in rows:
        used = r["used"]
        width = 20
        filled = min(int(round(used * width)), width)
        style = "red" if used >= 1 else "yellow" if used >= 0.8 else "green"
        bar = Text("█" * filled, style=style) + Text("░" * (width - filled), style="dim")
        t.add_row(r["limit"] + ("" if r["hard"] else " (warn)"), usd(r["spent_usd"]), usd(r["limit_usd"]),
                  f"{used:.0%}", bar)
    return t


class SpendScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="back_from_spend"),
        Binding("r", "reload", "Reload", id="reload_spend"),
    ]

    def compose(self) -> ComposeResult:
        yield Static("Spend", classes="screen-title", id="spend-title")
        with Horizontal(id="spend-cards"):
            for _, label in PERIODS:
                yield Static(Text(label, style="dim"), classes="spend-card", id=f"card-{label.replace(' ', '-')}")
        with Horizontal(id="spend-middle"):
            with Vertical(id="spend-chart-box"):
                yield Static(Text(f"cost per day, last {CHART_DAYS} days", style="dim"), id="chart-title")
                yield Sparkline([0.0] * CHART_DAYS, id="spend-chart")
                yield Static("", id="chart-axis")
            yield Vertical(id="budgets")
        with TabbedContent(id="spend-tabs"):
            for dim, label in (("agent", "By model"), ("mode", "By mode"), ("skill", "By skill")):
                with TabPane(label, id=f"tab-{dim}"):
                    yield DataTable(id=f"spend-{dim}", cursor_type="row")
        yield Static("", id="spend-note")
        yield Footer()

    # Below these sizes the chart and the budgets side by side left the chart a column a word wide
    # (60x15): narrow stacks them, short leaves them out (/budget still shows the budgets).
    NARROW_COLS, SHORT_ROWS = 90, 26

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < self.NARROW_COLS, "-narrow")
        self.set_class(event.size.height < self.SHORT_ROWS, "-short")

    def on_mount(self) -> None:
        self.set_class(self.size.width < self.NARROW_COLS, "-narrow")
        self.set_class(self.size.height < self.SHORT_ROWS, "-short")
        for dim in ("agent", "mode", "skill"):
            table = self.query_one(f"#spend-{dim}", DataTable)
            table.add_column({"agent": "model", "mode": "mode", "skill": "skill"}[dim], key="key")
            for label in ("turns", "today", "this month", "all time", "est. all time", "avg/turn"):
                table.add_column(label, key=label)
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, description="reading spend")
    def _load(self) -> None:
        app: SkillchatApp = self.app  # type: ignore[assignment]
        if app.service is None:  # /spend waits for the service (ui/slash.py)
            return
        data = read_spend(app.service)
        self.app.call_from_thread(self._show, data)  # type: ignore[arg-type]  # mypy cannot solve Textual's result type for a coroutine

    async def _show(self, data: SpendData) -> None:
        if self not in self.app.screen_stack:  # closed while the thread was reading
            return
        for _, label in PERIODS:
            total = data.totals.get(label)
            t = Text()
            t.append(f"{label}\n", style="dim")
            t.append(usd(total.cost_usd if total else 0.0), style="bold")
            turns = total.turns if total else 0
            t.append(f"\n{turns:.0f} turn{'' if turns == 1 else 's'}", style="dim")
            self.query_one(f"#card-{label.replace(' ', '-')}", Static).update(t)

        self.query_one("#spend-chart", Sparkline).data = data.daily
        peak = max(data.daily) if data.daily else 0.0
        axis = Text(f"{CHART_DAYS} days ago", style="dim", no_wrap=True, overflow="ellipsis")
        axis.append(f"   peak {usd(peak)}/day   ", style="dim")
        axis.append("today", style="dim")
        self.query_one("#chart-axis", Static).update(axis)

        await self._show_budgets(data.budget)

        for dim in ("agent", "mode", "skill"):
            table = self.query_one(f"#spend-{dim}", DataTable)
            table.clear()
            rows = data.by.get(dim, {})
            for key, periods in sorted(rows.items(), key=lambda kv: -_cost(kv[1].get("all time"))):
                all_time = periods.get("all time")
                turns = all_time.turns if all_time else 0
                table.add_row(
                    plain(data.names.get(key, key or "(unknown)")),
                    f"{turns:.1f}" if dim == "skill" else f"{turns:.0f}",
                    usd(_cost(periods.get("today"))),
                    usd(_cost(periods.get("this month"))),
                    usd(_cost(all_time)),
                    usd(all_time.est_usd if all_time else 0.0),
                    usd(_cost(all_time) / turns) if turns else "-",
                    key=key,
                )
        title = Text("Spend", style="bold")
        if data.demo:
            title.append("   DEMO: what the scripted demo turns would have cost; no money was spent",
                         style="bold black on yellow")
        self.query_one("#spend-title", Static).update(title)
        note = Text()
        if data.demo_turns and not data.demo:
            note.append(f"Demo turns are kept apart: {data.demo_turns} demo turns would have cost "
                        f"{usd(data.demo_cost)}; they are not in the totals above. ", style="yellow")
        note.append("Skill rows share each turn's cost by the skill weights.", style="dim")
        self.query_one("#spend-note", Static).update(note)

    async def _show_budgets(self, b: Any) -> None:
        box = self.query_one("#budgets", Vertical)
        await box.remove_children()
        rows = b.rows() if b is not None else []
        if not rows:
            await box.mount(Static(Text("No budgets set.\nAdd [budget] daily_usd / monthly_usd to the config.", style="dim")))
            return
        widgets: list[Static | ProgressBar] = [Static(Text("budgets (real money)", style="dim"))]
        for r in rows:
            used = r["used"]
            label = Text(f"{r['limit']}{'' if r['hard'] else ' (warn)'}: {usd(r['spent_usd'])} of {usd(r['limit_usd'])}")
            bar = ProgressBar(total=max(r["limit_usd"], 1e-9), show_eta=False, classes="budget-bar")
            bar.progress = min(r["spent_usd"], r["limit_usd"])
            bar.set_class(used >= 0.8, "-warn")
            bar.set_class(used >= 1.0, "-over")
            widgets += [Static(label, classes="budget-label"), bar]
        await box.mount(*widgets)


def _cost(row: Any) -> float:
    return float(row.cost_usd) if row is not None else 0.0
