"""F3: the active handbook: competence heat map, modes and skills, agents, versions and history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from skillchat.core.competence import posterior
from skillchat.core.handbook import Handbook
from skillchat.errors import SkillchatError
from skillchat.render import usd
from skillchat.text_safety import clean, plain

if TYPE_CHECKING:
    from skillchat.ui.app import SkillchatApp

# Low competence red, middling amber, high green: the usual reading of a heat map.
_LOW, _MID, _HIGH = Color.parse("#b3261e"), Color.parse("#c79100"), Color.parse("#1e7b34")
HEAT_LO, HEAT_HI = 0.35, 0.9  # competences outside this range get the end colours


def heat_color(x: float) -> Color:
    t = min(max((x - HEAT_LO) / (HEAT_HI - HEAT_LO), 0.0), 1.0)
    return _LOW.blend(_MID, t * 2) if t < 0.5 else _MID.blend(_HIGH, (t - 0.5) * 2)


def heat_cell(mean: float, n: float) -> Text:
    """A competence value on its colour; a dot marks cells your ratings have moved."""
    bg = heat_color(mean)
    return Text(f"{mean:.2f}{'•' if n >= 0.5 else ' '}", style=f"{bg.get_contrast_text(1.0).hex6} on {bg.hex6}",
                justify="center")


def competence_rows(hb: Handbook) -> list[tuple[str, str, list[tuple[float, float]]]]:
    """(mode, skill id, [(posterior mean, evidence count) per agent]) in handbook order."""
    out = []
    for mode in hb.modes:
        for sid in hb.skills_in_mode(mode):
            cells = []
            for aid in hb.agents:
                s, f = hb.evidence.skill(aid, sid)
                cells.append((posterior(hb, aid, sid).mean, s + f))
            out.append((mode, sid, cells))
    return out


class HandbookScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="back"),
        Binding("r", "app.command('/relearn')", "Relearn", id="handbook_relearn", tooltip="Rebuild from your ratings"),
    ]

    def compose(self) -> ComposeResult:
        app: SkillchatApp = self.app  # type: ignore[assignment]
        hb: Handbook = app.require_service().handbook
        yield Static(self._title(hb, app), id="handbook-title", classes="screen-title")
        with TabbedContent(id="handbook-tabs"):
            with TabPane("Competence", id="tab-competence"):
                yield Static(self._legend(), classes="legend")
                yield DataTable(id="competence", cursor_type="cell", zebra_stripes=False, header_height=2)
            with TabPane("Skills", id="tab-skills"):
                yield DataTable(id="skills", cursor_type="row")
            with TabPane("Agents", id="tab-agents"):
                yield DataTable(id="agents", cursor_type="row")
            with TabPane("History", id="tab-history"):
                yield DataTable(id="history", cursor_type="row")
        yield Footer()

    def _title(self, hb: Handbook, app: Any) -> Text:
        t = Text()
        t.append(f" {hb.ref} ", style="bold reverse")
        t.append(f"  {clean(hb.description)}", style="")
        t.append(f"\n {len(hb.modes)} modes · {len(hb.skills)} skills · {len(hb.agents)} agents · "
                 f"{hb.evidence.total():.0f} ratings of evidence", style="dim")
        if hb.parent_version is not None:
            t.append(f" · derived from v{hb.parent_version}", style="dim")
        return t

    def _legend(self) -> Text:
        t = Text(" competence = posterior mean of a good answer   ", style="dim")
        for x in (0.4, 0.55, 0.7, 0.85):
            t.append_text(heat_cell(x, 0))
            t.append(" ")
        t.append("  • your ratings moved it", style="dim")
        return t

    def on_mount(self) -> None:
        app: SkillchatApp = self.app  # type: ignore[assignment]
        hb: Handbook = app.require_service().handbook
        self._fill_competence(hb)
        self._fill_skills(hb)
        self._fill_agents(hb)
        self._fill_history(hb, app)
        self.query_one("#competence", DataTable).focus()

    def _fill_competence(self, hb: Handbook) -> None:
        table = self.query_one("#competence", DataTable)
        table.add_column("skill", key="skill", width=SKILL_WIDTH)
        for aid, agent in hb.agents.items():
            table.add_column(Text(two_lines(clean(agent.name)), justify="center"), key=aid, width=CELL_WIDTH)
        last_mode = None
        for mode, sid, cells in competence_rows(hb):
            if mode != last_mode:
                table.add_row(plain(hb.modes[mode].name, "bold"), *([""] * len(cells)), key=f"mode:{mode}")
                last_mode = mode
            table.add_row(Text("  " + _clip(clean(hb.skills[sid].name), SKILL_WIDTH - 2)),
                          *(heat_cell(m, n) for m, n in cells), key=sid)

    def _fill_skills(self, hb: Handbook) -> None:
        table = self.query_one("#skills", DataTable)
        table.add_columns("mode", "skill", "id", "description")
        for s in hb.skills.values():
            desc = s.description + (f" (from {s.parent})" if s.parent else "")
            table.add_row(plain(hb.modes[s.mode].name), plain(s.name), Text(s.id, style="dim"), plain(desc), key=s.id)

    def _fill_agents(self, hb: Handbook) -> None:
        table = self.query_one("#agents", DataTable)
        table.add_columns("agent", "model", "prior", "price in/out per Mtok", "context", "observed cost/turn")
        for a in hb.agents.values():
            price = f"${a.price.input * 1e6:g} / ${a.price.output * 1e6:g}" if a.price else "price list"
            stat = hb.agent_cost(a.id)
            table.add_row(plain(a.name), plain(a.model), f"{a.prior.mean:.2f}", price, f"{a.context_window:,}",
                          usd(stat.usd) + f" (n={stat.n:.0f})" if stat else "-", key=a.id)

    def _fill_history(self, hb: Handbook, app: Any) -> None:
        table = self.query_one("#history", DataTable)
        table.add_columns("version", "when", "what")
        try:
            versions = app.service.handbook_versions()
        except SkillchatError:  # a broken file must not take the app down; using it reports why
            versions = []
        notes = {h.get("version"): h for h in hb.history if isinstance(h, dict) and isinstance(h.get("version"), int)}
        for info in reversed(versions):
            h = notes.get(info.version, {})
            what = "shipped with skillchat" if info.shipped else _history_text(h)
            mark = " (active)" if info.version == hb.version else ""
            table.add_row(f"v{info.version}{mark}", info.created[:10], plain(what))
        if not versions:
            table.add_row(f"v{hb.version}", plain(hb.created), "loaded from a file")


SKILL_WIDTH, CELL_WIDTH = 28, 7


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def two_lines(name: str, width: int = CELL_WIDTH) -> str:
    """An agent name folded onto two header lines of `width` cells ("Claude" / "Sonnet…")."""
    words, lines, line = name.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    if len(lines) > 2:
        lines = [lines[0], " ".join(lines[1:])]
    return "\n".join(_clip(x, width) for x in lines)


def _history_text(h: dict[str, Any]) -> str:
    if not h:
        return "your version"
    # Free-form metadata from a file: odd shapes are shown as "?" or skipped, never fatal.
    counts = h.get("counts")
    counts = counts if isinstance(counts, dict) else {}
    changes = [c for c in h.get("changes") or [] if isinstance(c, dict)] if isinstance(h.get("changes"), list) else []
    used = counts.get("used")
    used = used if isinstance(used, int) and not isinstance(used, bool) else "?"
    parts = [f"relearned from {used} rated turns"]
    if changes:
        def names(c: dict[str, Any]) -> str:
            v = c.get("created") or c.get("skills") or []
            return "/".join(str(x) for x in v) if isinstance(v, list) else ""
        parts.append(", ".join(f"{c.get('kind')} {names(c)}" for c in changes))
    return "; ".join(parts)
