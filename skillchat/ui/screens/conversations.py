"""F4 or /history: past conversations from the trace store; Enter resumes one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static
from textual.widgets.data_table import RowKey

from skillchat.text_safety import one_line, plain

if TYPE_CHECKING:
    from skillchat.ui.app import SkillchatApp


def when(iso: str) -> str:
    """'2026-11-22 14:03' in local time; the stored value is UTC ISO 8601."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso[:16]


class ConversationsScreen(ModalScreen[int | None]):
    BINDINGS = [
        Binding("escape,q", "close", "Close", id="close_conversations"),
        Binding("enter", "open", "Resume", id="resume_conversation", tooltip="Continue this conversation"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="conversations-box", classes="dialog"):
            yield Static("Conversations", classes="dialog-title")
            yield DataTable(id="conversations", cursor_type="row")
            yield Static(Text("loading…", style="dim"), id="conversations-empty")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("title", key="title")
        table.add_column("turns", key="turns")
        table.add_column("last message", key="updated")
        table.add_column("", key="demo")
        self._load()

    @work(thread=True, exit_on_error=False, description="reading conversations")
    def _load(self) -> None:
        app: SkillchatApp = self.app  # type: ignore[assignment]
        rows = app.require_service().conversations()
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[Any]) -> None:
        if self not in self.app.screen_stack:  # closed while the thread was reading
            return
        table = self.query_one(DataTable)
        for c in rows:
            # A title is the start of a message: plain text, never markup or escapes.
            title = plain(one_line(c.title)) if c.title else Text("(untitled)", style="dim")
            table.add_row(title, str(c.turns), when(c.updated_at), Text("demo", style="yellow") if c.demo else "",
                          key=str(c.id))
        empty = self.query_one("#conversations-empty", Static)
        empty.update(Text("No conversations yet.", style="dim") if not rows
                     else Text(f"{len(rows)} conversations · enter resumes · esc closes", style="dim"))
        table.focus()

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return
        self.dismiss(_conversation_id(table.coordinate_to_cell_key(table.cursor_coordinate).row_key))

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(_conversation_id(event.row_key))

    def action_close(self) -> None:
        self.dismiss(None)


def _conversation_id(key: RowKey) -> int:
    assert key.value is not None, "every row is added under its conversation's id"
    return int(key.value)
