"""The prompt: a multi-line editor with a history and slash-command completion.

A TextArea rather than an Input, because Input keeps only the first line of a paste and chat
users paste code. Enter sends; ctrl+j (or alt+enter, or shift+enter where the terminal reports
it) starts a new line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from rich.text import Text
from textual import events, on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import OptionList, TextArea
from textual.widgets.option_list import Option

from skillchat.ui.commands import Completion

HISTORY_LIMIT = 500
NEWLINE_KEYS = "ctrl+j,alt+enter,shift+enter"


class _ExtraKey(Enum):
    ALT_ENTER = "alt+enter"


def read_esc_cr_as_alt_enter() -> None:
    """Alt+Enter reaches the app as ESC CR in every terminal without the kitty keyboard protocol
    (tmux, screen, most ssh sessions, xterm), and Textual reads that as a plain enter: the message
    was sent instead of getting a new line. Teach its key table the sequence; if Textual moves
    that table, ctrl+j still works and the terminal test says so."""
    try:
        from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
    except ImportError:
        return
    if isinstance(ANSI_SEQUENCES_KEYS, dict):
        ANSI_SEQUENCES_KEYS.setdefault("\x1b\r", (_ExtraKey.ALT_ENTER,))


read_esc_cr_as_alt_enter()


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
        if not self.display and not self.option_count:  # every key of plain text gets here
            return
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
        Binding(NEWLINE_KEYS, "newline", "New line", show=False, id="prompt_newline"),
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
        self._menu_text: str | None = None  # the text the completion menu was computed for
        self._picked = False  # up/down moved through the menu since the last edit

    # --- sending -----------------------------------------------------------------------------
    async def _on_key(self, event: events.Key) -> None:
        # Keys can arrive faster than the completion menu follows the text (a paste without bracketed
        # paste, `tmux send-keys`, a laggy link): the menu may still offer what fitted a few keys ago.
        # So Enter runs exactly what was typed, unless the user picked a completion with up/down
        # since the last edit; Tab completes what is in the prompt now, never a stale menu entry.
        open_menu = self.menu if self.menu is not None and self.menu.display else None
        if event.key == "tab":
            event.prevent_default()
            event.stop()
            self.accept_completion()
            return
        if event.key == "enter" and open_menu is not None and self._picked and self._menu_text == self.text:
            event.prevent_default()
            event.stop()
            self.accept_completion(open_menu.value)
            return
        if event.key == "escape" and open_menu is not None:
            event.prevent_default()
            event.stop()
            open_menu.hide()
            return
        if event.key not in ("up", "down"):
            self._picked = False
        newline_keys = getattr(self.app, "_keymap", {}).get("prompt_newline", NEWLINE_KEYS)  # after [keymap]
        if event.key in {k.strip() for k in newline_keys.split(",")}:
            # Here, not as a binding: a binding runs once the key has bubbled up to the app, after
            # the keys behind it in the same read were typed (alt+enter then text put the new line
            # after the text).
            event.prevent_default()
            event.stop()
            self.action_newline()
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
            self._picked = True
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
            self._picked = True
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
        self._menu_text = self.text
        items = self.complete(self.text)
        if items:
            self.menu.show(items)
        else:
            self.menu.hide()

    def accept_completion(self, value: str | None = None) -> None:
        """Complete the prompt: with `value`, else the highlighted entry if the menu fits the text
        as it is now, else the first completion of that text. Nothing to complete: a bell, and the
        prompt keeps the focus (Tab used to move it to an answer, where typing was lost)."""
        if value is None:
            items = self.complete(self.text) if self.complete is not None else []
            fresh = self.menu is not None and self.menu.display and self._menu_text == self.text
            picked = self.menu.value if fresh and self.menu is not None else None
            value = picked or (items[0].value if items else None)
        if value is None:
            self.app.bell()
            return
        self._picked = False
        self.load_text(value)
        self.move_cursor(self.document.end)
        # Re-offer completions for the next word (`/handbook use ` -> handbook names).
        self._update_menu()
