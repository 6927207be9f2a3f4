"""The scrolling conversation, kept pinned to the newest line while an answer streams in.

Only a window of the conversation is mounted: a long one opens at its last PAGE_TURNS
exchanges, earlier ones are read from the log a page at a time when the view reaches the top
(or alt+up goes past the first answer shown), and when new turns push the window beyond
MAX_TURNS the oldest are unloaded. Every mounted widget is laid out again whenever the
streaming answer grows, so the window, not the conversation, sets that cost: a new turn leaves
the window as a conversation opens, at its last PAGE_TURNS answers, whatever was scrolled
through before (a screen layout with 12 answers mounted took 24 ms, with 4 16 ms, and keys
typed meanwhile wait for it).
"""

from __future__ import annotations

from typing import Any

from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Markdown, Static

from skillchat.core.handbook import Handbook
from skillchat.ui.widgets.answer import GrowsWithAnswer
from skillchat.ui.widgets.compare import ComparePanel
from skillchat.ui.widgets.turn import AssistantTurn, Notice, UserMessage

PAGE_TURNS = 4  # exchanges mounted when a conversation opens, and per "load earlier"
MAX_TURNS = PAGE_TURNS  # answers mounted at most once a new turn is added


class Welcome(Markdown):
    """Shown on an empty conversation: what the app does and, on a first run, how to get going."""


class EarlierTurns(Static):
    """The top of a window that does not start at the conversation's first turn."""

    DEFAULT_CSS = """
    EarlierTurns {
        height: 1;
        margin: 1 0 0 0;
        color: $text-muted;
        text-style: italic;
    }
    EarlierTurns:hover {
        color: $foreground;
        background: $boost;
    }
    """

    def __init__(self) -> None:
        super().__init__("↑ earlier turns: scroll up, or click here, to load them", classes="earlier", markup=False)

    def on_click(self) -> None:
        self.post_message(Transcript.EarlierWanted())


class Transcript(GrowsWithAnswer, VerticalScroll):
    # The scrollbar is always there, so answers are laid out at one width (with it appearing
    # on overflow, each one would be drawn at two).
    DEFAULT_CSS = """
    Transcript {
        overflow-y: scroll;
    }
    """
    # The prompt should own focus; the transcript is scrolled with the mouse or page keys.
    can_focus = False

    class EarlierWanted(Message):
        """The view reached the top of the window and earlier turns exist: the screen loads them."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.more_before = False

    def on_mount(self) -> None:
        self.anchor()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.more_before and new_value < 1 <= old_value:
            self.post_message(self.EarlierWanted())

    async def add_user(self, text: str, *, again: bool = False) -> UserMessage:
        await self._drop_welcome()
        w = UserMessage(text, again=again)
        await self.mount(w)
        return w

    async def add_assistant(self, hb: Handbook | None) -> AssistantTurn:
        await self._drop_welcome()
        turn = AssistantTurn(hb=hb)
        await self.mount(turn)
        await self._unload_oldest()
        self.anchor()
        return turn

    async def add_comparison(self, hb: Handbook | None) -> ComparePanel:
        await self._drop_welcome()
        panel = ComparePanel(hb=hb)
        await self.mount(panel)
        await self._unload_oldest()
        self.anchor()
        return panel

    async def add_notice(self, content: Any, *, kind: str = "info") -> Notice:
        n = Notice(content, kind=kind)
        await self.mount(n)
        self.anchor()
        return n

    async def show_welcome(self, markdown: str) -> None:
        existing = self.query(Welcome)
        if existing and len(self.children) == 1:
            # Updated in place as start-up progresses: no flicker of a remove and re-mount.
            await existing.first().update(markdown)
            return
        self.more_before = False
        await self.remove_children()
        await self.mount(Welcome(markdown, id="welcome"))

    async def show_window(self, widgets: list[Widget], *, more_before: bool) -> None:
        """Replace everything with the last turns of a conversation, mounted in one go (mounting
        one widget at a time lays out everything above it again each time)."""
        self.more_before = more_before
        with self.app.batch_update():
            await self.remove_children()
            await self.mount_all(([EarlierTurns()] if more_before else []) + widgets)
        self.anchor()

    async def prepend(self, widgets: list[Widget], *, more_before: bool) -> None:
        """Mount earlier turns above the window, keeping what is on screen where it is."""
        first = next((c for c in self.children if not isinstance(c, EarlierTurns)), None)
        offset = first.virtual_region.y - self.scroll_y if first is not None else 0
        self.more_before = more_before
        with self.app.batch_update():
            for marker in self.query(EarlierTurns):
                await marker.remove()
            if widgets:
                await self.mount_all(widgets, before=first) if first is not None else await self.mount_all(widgets)
            if more_before:
                await self.mount(EarlierTurns(), before=0)
        if first is not None:
            def keep_in_place() -> None:
                self.scroll_to(y=first.virtual_region.y - offset, animate=False, immediate=True)
                if self.more_before and self.scroll_y < 1:  # the page was shorter than the view
                    self.post_message(self.EarlierWanted())

            self.call_after_refresh(keep_in_place)

    async def _unload_oldest(self) -> None:
        """Keep at most MAX_TURNS answers mounted: the oldest go, whole exchanges at a time, and
        come back from the log if the view scrolls up to them again."""
        if len(self.turns()) <= MAX_TURNS:
            return
        children = list(self.children)
        answers, cut = 0, len(children)
        while answers < MAX_TURNS:
            cut -= 1
            child = children[cut]
            answers += 1 if isinstance(child, AssistantTurn) else len(child.query(AssistantTurn))
        # The exchange starts at the user's message just above the answer.
        while cut > 0 and not isinstance(children[cut], UserMessage):
            cut -= 1
        if cut == 0 or self.first_turn_id(children[cut:]) is None:
            return
        self.more_before = True
        with self.app.batch_update():
            await self.remove_children(children[:cut])
            await self.mount(EarlierTurns(), before=0)

    @staticmethod
    def first_turn_id(children: list[Widget]) -> int | None:
        for c in children:
            turn_id = getattr(c, "turn_id", None)
            if turn_id is not None:
                return turn_id
        return None

    def window_start(self) -> int | None:
        """The logged turn the window starts at: earlier turns are the ones before it."""
        return self.first_turn_id(list(self.children))

    async def _drop_welcome(self) -> None:
        for w in self.query(Welcome):
            await w.remove()

    def turns(self) -> list[AssistantTurn]:
        return list(self.query(AssistantTurn))

    def last_turn(self) -> AssistantTurn | None:
        turns = self.turns()
        return turns[-1] if turns else None

    def turn_by_id(self, turn_id: int) -> AssistantTurn | None:
        return next((t for t in self.turns() if t.turn_id == turn_id), None)
