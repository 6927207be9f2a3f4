"""The scrolling conversation, kept pinned to the newest line while an answer streams in."""

from __future__ import annotations

from typing import Any

from textual.containers import VerticalScroll
from textual.widgets import Markdown

from skillchat.core.handbook import Handbook
from skillchat.ui.widgets.compare import ComparePanel
from skillchat.ui.widgets.turn import AssistantTurn, Notice, UserMessage


class Welcome(Markdown):
    """Shown on an empty conversation: what the app does and, on a first run, how to get going."""


class Transcript(VerticalScroll):
    # The prompt should own focus; the transcript is scrolled with the mouse or page keys.
    can_focus = False

    def on_mount(self) -> None:
        self.anchor()

    async def add_user(self, text: str, *, again: bool = False) -> UserMessage:
        await self._drop_welcome()
        w = UserMessage(text, again=again)
        await self.mount(w)
        return w

    async def add_assistant(self, hb: Handbook | None) -> AssistantTurn:
        await self._drop_welcome()
        turn = AssistantTurn(hb=hb)
        await self.mount(turn)
        self.anchor()
        return turn

    async def add_comparison(self, hb: Handbook | None) -> ComparePanel:
        await self._drop_welcome()
        panel = ComparePanel(hb=hb)
        await self.mount(panel)
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
        await self.remove_children()
        await self.mount(Welcome(markdown, id="welcome"))

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
