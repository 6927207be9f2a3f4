"""One exchange in the transcript: the user's message, and the assistant's answer with its routing.

An `AssistantTurn` shows, top to bottom: the routing decision (as soon as it is made, before any
token), an expandable ranking of every agent, the answer streaming in as Markdown, and a footer
with what the turn really cost and the rating controls.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Collapsible, Static

from skillchat.core.decision import RoutingDecision
from skillchat.core.handbook import Handbook
from skillchat.text_safety import StreamCleaner, clean, one_line
from skillchat.ui import format as fmt
from skillchat.ui.widgets.answer import AnswerView, GrowsWithAnswer, Line

# How often streamed text reaches the screen: every FLUSH_MIN_S while the app keeps up, backing
# off towards FLUSH_MAX_S when layout of a long transcript starts to delay the event loop.
FLUSH_MIN_S, FLUSH_MAX_S = 1 / 10, 0.5
BUSY_LAG_S = 0.03


class UserMessage(Static):
    def __init__(self, text: str, *, again: bool = False, turn_id: int | None = None) -> None:
        content = Text(clean(text))
        if again:
            content = Text.assemble(("↻ asked again: ", "italic dim"), content)
        super().__init__(content, classes="user-message", markup=False)
        self.text = text
        self.turn_id = turn_id  # known for a message read back from the log


class Notice(Static):
    """A line from the app itself (command results, hints), never sent to a model."""

    def __init__(self, content: Any, *, kind: str = "info") -> None:
        super().__init__(content, classes=f"notice notice-{kind}")


class RateButton(Static):
    """A clickable [+] / [-]; a Static rather than a Button so it adds no tab stop per turn."""

    def __init__(self, rating: str) -> None:
        self.rating = rating
        super().__init__("[+] good" if rating == "up" else "[-] bad", classes=f"rate rate-{rating}", markup=False)
        self.tooltip = "Rate this answer as good (+)" if rating == "up" else "Rate this answer as bad (-)"

    def on_click(self) -> None:
        turn = next(a for a in self.ancestors if isinstance(a, AssistantTurn))
        turn.request_rating(self.rating)


class AssistantTurn(GrowsWithAnswer, Vertical):
    """An answer, its routing decision and its rating. Focus it (alt+up) to act on it by key."""

    can_focus = True
    BINDINGS = [
        Binding("plus,equals_sign", "rate('up')", "Good", id="turn_rate_up", tooltip="Rate this answer as good"),
        Binding("minus", "rate('down')", "Bad", id="turn_rate_down", tooltip="Rate this answer as bad"),
        Binding("0", "rate('')", "Unrate", id="turn_rate_clear", tooltip="Remove your rating of this answer"),
        Binding("c", "copy", "Copy", id="turn_copy", tooltip="Copy this answer to the clipboard"),
        Binding("w,enter", "why", "Why", id="turn_why", tooltip="Show or hide the agent ranking"),
    ]

    rating: reactive[str | None] = reactive(None)
    status: reactive[str] = reactive("routing")  # routing, waiting, streaming, done, stopped, failed

    class RatingChosen(Message):
        """The user picked a rating on a turn ("up", "down", or None to clear it)."""

        def __init__(self, turn: AssistantTurn, rating: str | None) -> None:
            super().__init__()
            self.turn, self.rating = turn, rating

    class CopyChosen(Message):
        def __init__(self, turn: AssistantTurn) -> None:
            super().__init__()
            self.turn = turn

    def __init__(self, *, hb: Handbook | None = None) -> None:
        super().__init__(classes="assistant-turn")
        self.hb = hb
        self.turn_id: int | None = None
        self.conversation_id: Any = None
        self.decision: RoutingDecision | None = None
        self.demo = False
        self.text = ""  # the answer as the model sent it (and the store keeps it)
        self.user_text = ""
        self.agent_id: str | None = None
        self._shown = StreamCleaner()  # what reaches the screen: no escape sequences
        self._pending: list[str] = []
        self._flush_timer: Timer | None = None
        self._flush_s = FLUSH_MIN_S
        self._flush_due = 0.0
        self._names: dict[str, str] = {}
        self._stats: Text | None = None
        self._drawn: tuple[int, list[Line]] | None = None  # the answer's lines, if drawn before mounting
        self._note: Text | None = None  # shown from the start (a resumed comparison says what was picked)

    @classmethod
    def restored(cls, hb: Handbook | None, *, text: str, turn_id: int | None, agent_id: str | None,
                 decision: RoutingDecision | None, demo: bool, stats: Text | None, status: str,
                 rating: str | None, drawn: tuple[int, list[Line]] | None = None,
                 note: Text | None = None) -> AssistantTurn:
        """A finished turn read back from the log, built whole before it is mounted, so a page of
        them is mounted (and laid out) in one go."""
        turn = cls(hb=hb)
        if decision is not None:
            turn._decided(decision, demo=demo, turn_id=turn_id)
        turn.turn_id, turn.agent_id, turn.text, turn._stats, turn._drawn = turn_id, agent_id, text, stats, drawn
        turn._note = note
        turn.set_reactive(AssistantTurn.status, status)
        turn.set_reactive(AssistantTurn.rating, rating)
        return turn

    def compose(self):
        d = self.decision
        yield Static(fmt.decision_summary(d, self.hb, demo=self.demo) if d is not None
                     else Text("routing…", style="dim"), classes="routing")
        if d is not None and self.hb is not None:
            yield self._why(d, self.hb)
        notes = Static(self._note or "", classes="turn-notes")
        if self._note:
            notes.display = True
        yield notes
        yield AnswerView(clean(self.text), drawn=self._drawn, classes="answer")
        with Horizontal(classes="turn-footer"):
            yield Static(self._stats or "", classes="stats")
            yield RateButton("up")
            yield RateButton("down")

    # --- routing and streaming ----------------------------------------------------------------
    def _decided(self, decision: RoutingDecision, *, demo: bool, turn_id: int | None) -> None:
        self.decision, self.demo, self.turn_id = decision, demo, turn_id
        self.agent_id = decision.chosen
        self._names = {a.agent_id: clean(a.name) for a in decision.ranking}
        self.set_class(demo, "demo")

    @staticmethod
    def _why(decision: RoutingDecision, hb: Handbook) -> Collapsible:
        return Collapsible(Static(fmt.ranking_renderable(decision, hb), classes="ranking"),
                           title=Text(fmt.why_title(decision)),  # type: ignore[arg-type]  # a Text is shown as is, never as markup
                           collapsed=True, classes="why")

    async def show_decision(self, decision: RoutingDecision, *, demo: bool, turn_id: int | None = None) -> None:
        self._decided(decision, demo=demo, turn_id=turn_id)
        self.note("")
        self.query_one(".routing", Static).update(fmt.decision_summary(decision, self.hb, demo=demo))
        if self.hb is not None:
            await self.mount(self._why(decision, self.hb), after=self.query_one(".routing"))
        if self.status == "routing":
            self.status = "waiting"

    def note(self, text: Text | str) -> None:
        notes = self.query_one(".turn-notes", Static)
        notes.update(text)
        notes.display = bool(str(text))

    async def agent_failed(self, agent_id: str, error: str, kind: str, next_agent: str | None) -> None:
        """A fallback: drop what the failed agent streamed, say why, and let the next one answer."""
        name = self._names.get(agent_id, agent_id)
        t = Text()
        t.append(f"⚠ {name} failed ({kind}): ", style="bold yellow")
        t.append(one_line(error.splitlines()[0], 160) if error else "", style="yellow")
        if next_agent:
            t.append(f" → trying {self._names.get(next_agent, next_agent)}", style="bold")
            self.agent_id = next_agent
        self.note(t)
        await self._reset_body()

    async def append(self, chunk: str) -> None:
        """Take a chunk at once, but hand it to the answer's view in batches.

        Writing each token (hundreds a second) keeps the event loop re-parsing and re-laying out
        the transcript back to back, and keys wait behind it; a batch every FLUSH_S leaves the
        loop idle most of the time while the answer still appears to flow.
        """
        self.status = "streaming"
        self.text += chunk
        shown = self._shown.feed(chunk)
        if shown:
            self._pending.append(shown)
        if self._flush_timer is None:
            self._flush_due = time.monotonic() + self._flush_s
            self._flush_timer = self.set_timer(self._flush_s, self._flush)

    async def _flush(self) -> None:
        self._flush_timer = None
        # A late timer means the loop is busy (mostly re-laying out a long transcript): update the
        # screen less often until it catches up, so keys never queue behind rendering.
        lag = time.monotonic() - self._flush_due
        if lag > BUSY_LAG_S:
            self._flush_s = min(self._flush_s * 1.6, FLUSH_MAX_S)
        else:
            self._flush_s = max(self._flush_s * 0.85, FLUSH_MIN_S)
        if self._pending:
            text, self._pending = "".join(self._pending), []
            self.query_one(".answer", AnswerView).write(text)

    async def _stop_stream(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        tail = self._shown.end()  # an escape sequence left unfinished shows as text
        if tail:
            self._pending.append(tail)
        await self._flush()
        self._pending = []
        self.query_one(".answer", AnswerView).end()

    async def _reset_body(self) -> None:
        await self._stop_stream()
        self.text = ""
        self.query_one(".answer", AnswerView).set_text("")

    async def finish(self, ev: Any) -> None:
        await self._stop_stream()
        self.agent_id = ev.agent_id
        if ev.text is not None and ev.text != self.text:
            # The service's final text is the truth (a provider may resend or trim); re-render only
            # then, since a full re-parse of a long answer costs a visible pause.
            self.text = ev.text
            self.query_one(".answer", AnswerView).set_text(clean(self.text))
        self.query_one(".stats", Static).update(fmt.finished_stats(ev, self._names))
        self.status = "done"

    async def stopped(self) -> None:
        await self._stop_stream()
        self.query_one(".stats", Static).update(Text("stopped by you; the partial answer is kept", style="dim"))
        self.status = "stopped"

    async def failed(self, error: str, *, kind: str = "failed") -> None:
        await self._stop_stream()
        if self.decision is None:
            self.query_one(".routing", Static).update(Text("not routed", style="dim"))
        label = {"refused": "Refused by your budget: ", "no_agent": "No agent available: ",
                 "unsaved": "✖ Not saved: "}.get(kind, "✖ ")
        self.note(Text.assemble((label, "bold red"), (one_line(error, 500), "red")))
        after = ("the trace database is held by another skillchat process" if kind == "unsaved"
                 else "no answer; your message is kept, ctrl+r asks again")
        self.query_one(".stats", Static).update(Text(after, style="dim"))
        self.status = "failed"

    async def waiting_for_providers(self) -> None:
        self.note(Text("Model providers are still loading; your message will be sent as soon as they are ready…", style="italic"))

    # --- ratings and actions ------------------------------------------------------------------
    def watch_status(self, status: str) -> None:
        # Classes go on the few small widgets that change, never on the turn itself: a class change
        # on the turn restyles every block of a long answer (hundreds of widgets) at once.
        if not self.is_mounted:
            return
        self.query_one(".routing").set_class(status != "routing", "-routed")
        self.query_one(".turn-footer").display = status in ("done", "stopped", "failed")
        for button in self.query(RateButton):
            button.display = status in ("done", "stopped")

    def on_mount(self) -> None:
        self.watch_status(self.status)
        self.watch_rating(self.rating)

    def watch_rating(self, rating: str | None) -> None:
        # A turn scrolled out of the mounted window can be removed while its Mount is still queued:
        # its buttons are gone by then, and there is nothing left to show the rating on.
        buttons = {b.rating: b for b in self.query(RateButton)}
        if len(buttons) < 2:
            return
        up, down = buttons["up"], buttons["down"]
        up.set_class(rating == "up", "-chosen")
        down.set_class(rating == "down", "-chosen")
        up.update("[+] rated good" if rating == "up" else "[+] good")
        down.update("[-] rated bad" if rating == "down" else "[-] bad")

    @property
    def rateable(self) -> bool:
        # A stopped answer can be rated too: "it was going nowhere" is worth learning from.
        return self.turn_id is not None and self.status in ("done", "stopped")

    def request_rating(self, rating: str | None) -> None:
        # Clicking the rating you already gave takes it back, like a toggle.
        if rating is not None and rating == self.rating:
            rating = None
        self.post_message(self.RatingChosen(self, rating))

    def action_rate(self, rating: str) -> None:
        self.post_message(self.RatingChosen(self, rating or None))

    def action_copy(self) -> None:
        self.post_message(self.CopyChosen(self))

    def action_why(self) -> None:
        self.toggle_why()

    def toggle_why(self) -> bool:
        why = self.query(".why")
        if not why:
            return False
        c = why.first(Collapsible)
        c.collapsed = not c.collapsed
        return True

    @on(Collapsible.Toggled)
    def _keep_in_view(self, event: Collapsible.Toggled) -> None:
        if not event.collapsible.collapsed:
            self.call_after_refresh(event.collapsible.scroll_visible)
