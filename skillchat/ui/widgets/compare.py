"""A side-by-side comparison in the transcript: two answers to one message, and the user's pick.

The two answers are ordinary `AssistantTurn`s (routing line, ranking, streaming Markdown, cost),
next to each other on a wide terminal and one above the other below STACK_BELOW columns. Under
them, four choices: left better, right better, both good, both bad. They are clickable, and keys
1 to 4 pick them while the comparison has focus; it takes focus when both answers are in and the
prompt is empty, and any other key typed there goes on to the prompt.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Static, TextArea

from skillchat.core.handbook import Handbook
from skillchat.text_safety import clean, one_line
from skillchat.ui.widgets.answer import GrowsWithAnswer
from skillchat.ui.widgets.turn import AssistantTurn

STACK_BELOW = 100  # columns: narrower terminals show the two answers one above the other
CHOICES = (("left", "1", "left is better"), ("right", "2", "right is better"),
           ("both_good", "3", "both good"), ("both_bad", "4", "both bad"))
_SAID = {"left": "{l} was better", "right": "{r} was better", "both_good": "both good", "both_bad": "both bad"}


class PickButton(Static):
    """One of the four choices; a Static (as RateButton) so it adds no tab stop."""

    def __init__(self, outcome: str, key: str, label: str) -> None:
        self.outcome = outcome
        super().__init__(f"[{key}] {label}", classes=f"pick pick-{outcome}", markup=False)

    def on_click(self) -> None:
        panel = next(a for a in self.ancestors if isinstance(a, ComparePanel))
        panel.pick(self.outcome)


class _Sides(GrowsWithAnswer, Horizontal):
    """The two answers of a comparison, side by side or stacked."""


class ComparePanel(GrowsWithAnswer, Vertical):
    can_focus = True
    BINDINGS = [
        Binding("1", "pick('left')", "Left better", id="compare_left", tooltip="The left answer is better"),
        Binding("2", "pick('right')", "Right better", id="compare_right", tooltip="The right answer is better"),
        Binding("3", "pick('both_good')", "Both good", id="compare_both_good"),
        Binding("4", "pick('both_bad')", "Both bad", id="compare_both_bad"),
        Binding("escape", "to_prompt", "Back to prompt", show=False, id="compare_to_prompt"),
    ]

    class Picked(Message):
        def __init__(self, panel: ComparePanel, outcome: str) -> None:
            super().__init__()
            self.panel, self.outcome = panel, outcome

    def __init__(self, *, hb: Handbook | None = None) -> None:
        super().__init__(classes="compare-panel")
        self.left = AssistantTurn(hb=hb)
        self.right = AssistantTurn(hb=hb)
        self.outcome: str | None = None

    def compose(self):
        yield Static(Text("comparing two answers side by side…", style="dim"), classes="compare-head")
        with _Sides(classes="compare-sides"):
            yield self.left
            yield self.right
        with Horizontal(classes="compare-pick"):
            for outcome, key, label in CHOICES:
                yield PickButton(outcome, key, label)
        yield Static("", classes="compare-said")

    def on_mount(self) -> None:
        self.query_one(".compare-pick").display = False
        self.query_one(".compare-said").display = False
        self._fit(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(self.app.size.width)

    def _fit(self, width: int) -> None:
        self.set_class(width < STACK_BELOW, "-stacked")

    @property
    def sides(self) -> tuple[AssistantTurn, AssistantTurn]:
        return self.left, self.right

    @property
    def ready(self) -> bool:
        """Both answers are in: the user can pick."""
        return all(t.status == "done" for t in self.sides)

    # --- the service's events -------------------------------------------------------------------
    def side(self, turn_id: Any) -> AssistantTurn | None:
        return next((t for t in self.sides if t.turn_id == turn_id), None)

    async def started(self, ev: Any) -> None:
        await self.left.show_decision(ev.left.decision, demo=ev.left.demo, turn_id=ev.left.turn_id)
        await self.right.show_decision(ev.right.decision, demo=ev.right.demo, turn_id=ev.right.turn_id)
        for t in self.sides:
            t.conversation_id = ev.left.conversation_id
        names = [t._names.get(t.agent_id or "", t.agent_id) for t in self.sides]
        self.query_one(".compare-head", Static).update(Text.assemble(
            ("⇄ ", "bold"), (f"{names[0]}", "bold"), " (best expected) vs ", (f"{names[1]}", "bold"),
            (f" (the challenger: beats it with p={ev.beats:.0%} under the posterior)", "dim")))

    async def all_failed(self, error: str, kind: str) -> None:
        """The comparison never started (refused, nothing to compare): say so once, on the left."""
        self.right.display = False
        await self.left.failed(error, kind=kind)
        self.query_one(".compare-head", Static).update(Text("no comparison", style="dim"))

    async def stopped(self) -> None:
        for t in self.sides:
            if t.status not in ("done", "failed"):
                await t.stopped()

    def answers_done(self) -> None:
        """Both sides ended: offer the pick when both answered; otherwise each side says what happened."""
        if self.ready:
            pick = self.query_one(".compare-pick")
            pick.display = True
            self.call_after_refresh(pick.scroll_visible, animate=False)
            self.border_subtitle = "which is better? 1 left · 2 right · 3 both good · 4 both bad"
            prompt = self.screen.query_one("#prompt")
            if not getattr(prompt, "text", ""):
                self.focus(scroll_visible=False)  # the choices, not the top of a tall panel, stay in view

    # --- the pick --------------------------------------------------------------------------------
    def action_pick(self, outcome: str) -> None:
        self.pick(outcome)

    def pick(self, outcome: str) -> None:
        if not self.ready:
            self.app.notify("Wait for both answers before picking.", severity="warning")
            return
        self.post_message(self.Picked(self, outcome))

    def show_choice(self, outcome: str) -> None:
        self.outcome = outcome
        for b in self.query(PickButton):
            b.set_class(b.outcome == outcome, "-chosen")
        names = [one_line(clean(t._names.get(t.agent_id or "", t.agent_id or "")), 40) for t in self.sides]
        said = _SAID[outcome].format(l=names[0], r=names[1])
        on_from = names[1] if outcome == "right" else names[0]
        said_line = self.query_one(".compare-said", Static)
        said_line.update(Text(f"You said: {said}. Both ratings were learned from; the conversation goes on "
                              f"from {on_from}'s answer.", style="dim"))
        said_line.display = True
        self.border_subtitle = ""
        for t in self.sides:
            t.rating = "up" if (outcome == "both_good" or (outcome == "left" and t is self.left)
                                or (outcome == "right" and t is self.right)) else "down"

    def action_to_prompt(self) -> None:
        self.screen.query_one("#prompt").focus()

    async def _on_key(self, event: events.Key) -> None:
        # Typing must reach the prompt: anything printable that is not a pick goes on to it.
        if event.is_printable and event.character and event.character not in "1234":
            event.stop()
            event.prevent_default()
            prompt = self.screen.query_one("#prompt", TextArea)
            prompt.focus()
            prompt.insert(event.character)


def resumed_note(comparison: Any, turn_id: int) -> Text | None:
    """What a compared answer says when its conversation is resumed: which side it was, what the user
    picked, and whether the conversation went on from it. None for an ordinary turn."""
    if comparison is None:
        return None
    side = "left" if turn_id == comparison.left_turn else "right"
    said = {"left": "the left answer was better", "right": "the right answer was better", "both_good": "both good",
            "both_bad": "both bad", None: "not picked yet"}[comparison.outcome]
    kept = (comparison.outcome == "right") == (side == "right")
    return Text(f"⇄ compared side by side ({side}; you said: {said}); "
                + ("the conversation went on from this answer" if kept else "set aside: not in the conversation's context"),
                style="dim")

