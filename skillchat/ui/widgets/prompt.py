"""The prompt: a multi-line editor with a history and slash-command completion.

A TextArea rather than an Input, because Input keeps only the first line of a paste and chat
users paste code. Enter sends; ctrl+j (or alt+enter, or shift+enter where the terminal reports
it) starts a new line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from rich.text import Text
from textual import events, on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import OptionList, TextArea
from textual.widgets.option_list import Option

from skillchat.ui.commands import Completion

HISTORY_LIMIT = 500


class PromptHistory:
    """Sent prompts, oldest first, kept in a small JSON-lines file between sessions."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.items: list[str] = []
        if path is not None and path.exists():
            try:
                for line in path.read_text(encoding="utf-8").splitlines()[-HISTORY_LIMIT:]:
                    self.items.append(json.loads(line))
            except (OSError, ValueError):
                self.items = []  # a damaged history file is not worth failing the app for

    def add(self, text: str) -> None:
        if not text.strip() or (self.items and self.items[-1] == text):
            return
        self.items.append(text)
        if self.path is not None:
            try:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(text) + "\n")
            except OSError:
                pass


class CompletionMenu(OptionList):
    """Candidates for the slash command being typed; shown above the prompt, never focused."""

    can_focus = False

    def show(self, items: list[Completion]) -> None:
        self.clear_options()
        # Text, not markup: usages such as [list | use NAME] must show as typed.
        self.add_options([Option(Text.assemble(c.label, ("  " + c.help, "dim")), id=c.value) for c in items])
        self.highlighted = 0 if items else None
        self.display = bool(items)

    def hide(self) -> None:
        self.display = False
        self.clear_options()

    @property
    def value(self) -> str | None:
        if not self.display or self.highlighted is None:
            return None
        return self.get_option_at_index(self.highlighted).id


class PromptArea(TextArea):
    BINDINGS = [
        Binding("up", "history_or_up", "Previous prompt", show=False, id="prompt_history_prev"),
        Binding("down", "history_or_down", "Next prompt", show=False, id="prompt_history_next"),
        Binding("ctrl+j,alt+enter,shift+enter", "newline", "New line", show=False, id="prompt_newline"),
        # Same id as the screen's binding, so a [keymap] entry moves both. Redo loses ctrl+y; undo
        # (ctrl+z) is what people reach for in a one-message editor.
        Binding("ctrl+y", "screen.copy_last", "Copy", id="copy", tooltip="Copy the last answer to the clipboard"),
    ]

    class Submitted(Message):
        def __init__(self, prompt: PromptArea, text: str) -> None:
            super().__init__()
            self.prompt, self.text = prompt, text

    def __init__(self, *, history: PromptHistory | None = None, menu: CompletionMenu | None = None,
                 complete: Callable[[str], list[Completion]] | None = None, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", compact=True,
                         highlight_cursor_line=False, **kwargs)
        self.prompt_history = history or PromptHistory()
        self.menu = menu
        self.complete = complete
        self._pos: int | None = None  # index into history while browsing it; None = editing a draft
        self._draft = ""

    # --- sending -----------------------------------------------------------------------------
    async def _on_key(self, event: events.Key) -> None:
        menu_open = self.menu is not None and self.menu.display
        if event.key in ("enter", "tab") and menu_open and self.menu.value is not None:
            event.prevent_default()
            event.stop()
            self.accept_completion()
            return
        if event.key == "escape" and menu_open:
            event.prevent_default()
            event.stop()
            self.menu.hide()
            return
        if event.key == "enter":
            event.prevent_default()
            event.stop()
            text = self.text
            if text.strip():
                self.post_message(self.Submitted(self, text))

    def action_newline(self) -> None:
        self.insert("\n")

    def sent(self, text: str) -> None:
        """Clear the editor after a message was accepted, and remember it."""
        self.prompt_history.add(text)
        self._pos = None
        self._draft = ""
        self.load_text("")

    # --- history -----------------------------------------------------------------------------
    def action_history_or_up(self) -> None:
        if self.menu is not None and self.menu.display:
            self.menu.action_cursor_up()
        elif self.cursor_location[0] == 0 and self.prompt_history.items:
            if self._pos is None:
                self._draft, self._pos = self.text, len(self.prompt_history.items)
            if self._pos > 0:
                self._pos -= 1
                self._show(self.prompt_history.items[self._pos], at_end=False)
        else:
            self.action_cursor_up()

    def action_history_or_down(self) -> None:
        if self.menu is not None and self.menu.display:
            self.menu.action_cursor_down()
        elif self._pos is not None and self.cursor_location[0] == self.document.line_count - 1:
            self._pos += 1
            if self._pos >= len(self.prompt_history.items):
                self._pos = None
                self._show(self._draft, at_end=True)
            else:
                self._show(self.prompt_history.items[self._pos], at_end=True)
        else:
            self.action_cursor_down()

    def _show(self, text: str, *, at_end: bool) -> None:
        self.load_text(text)
        if at_end:
            self.move_cursor(self.document.end)
        else:
            self.move_cursor((0, len(self.document.get_line(0))))

    # --- completion --------------------------------------------------------------------------
    @on(TextArea.Changed)
    def _update_menu(self) -> None:
        if self.menu is None or self.complete is None:
            return
        items = self.complete(self.text)
        if items:
            self.menu.show(items)
        else:
            self.menu.hide()

    def accept_completion(self, value: str | None = None) -> None:
        value = value if value is not None else (self.menu.value if self.menu else None)
        if value is None:
            return
        self.load_text(value)
        self.move_cursor(self.document.end)
        # Re-offer completions for the next word (`/handbook use ` -> handbook names).
        self._update_menu()
