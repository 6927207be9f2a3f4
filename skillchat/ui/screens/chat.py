"""The main screen: transcript, prompt, and the turn loop that streams routed answers into it."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from skillchat.events import CompareStarted, TurnFailed
from skillchat.text_safety import clean
from skillchat.ui import commands, slash
from skillchat.ui.widgets.answer import AnswerView, draw
from skillchat.ui.widgets.compare import ComparePanel, resumed_note
from skillchat.ui.widgets.prompt import CompletionMenu, PromptArea, PromptHistory
from skillchat.ui.widgets.status import StatusBar
from skillchat.ui.widgets.transcript import PAGE_TURNS, Transcript
from skillchat.ui.widgets.turn import AssistantTurn, UserMessage

if TYPE_CHECKING:
    from skillchat.ui.app import SkillchatApp


class ChatScreen(Screen):
    AUTO_FOCUS = "#prompt"
    BINDINGS = [
        Binding("escape", "cancel", "Stop", id="cancel", tooltip="Stop the answer being written"),
        # Same key, tried next: with no answer to stop, esc brings the focus back from an answer.
        Binding("escape", "to_prompt", "Back to prompt", id="back_to_prompt",
                tooltip="Leave the selected answer and type again"),
        Binding("ctrl+t", "rate_last('up')", "Good", id="rate_up", tooltip="Rate the last answer as good"),
        Binding("ctrl+g", "rate_last('down')", "Bad", id="rate_down", tooltip="Rate the last answer as bad"),
        Binding("ctrl+o", "why", "Why", id="why", tooltip="Show or hide the ranking behind the last answer"),
        Binding("ctrl+y", "copy_last", "Copy", id="copy", tooltip="Copy the last answer to the clipboard"),
        Binding("ctrl+r", "regenerate", "Retry", id="regenerate", tooltip="Answer the last message again"),
        Binding("ctrl+n", "new", "New", id="new_conversation", tooltip="Start a new conversation"),
        Binding("ctrl+s", "compare", "Compare", show=False, id="compare", tooltip="Ask two agents side by side: the message "
                "being typed, or the last one again"),
        Binding("alt+up", "focus_turn(-1)", "Previous answer", show=False, id="focus_previous_answer",
                tooltip="Select an earlier answer to rate, copy or inspect it"),
        Binding("alt+down", "focus_turn(1)", "Next answer", show=False, id="focus_next_answer"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: Any = None
        self._turn_worker: Worker | None = None
        self._loading_earlier = False
        self.last_user_text: str | None = None

    @property
    def sc(self) -> SkillchatApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Transcript(id="transcript")
        menu = CompletionMenu(id="completions")
        menu.display = False
        yield menu
        yield PromptArea(id="prompt", history=PromptHistory(self.sc.history_file), menu=menu,
                         complete=self._complete, placeholder="Message, or / for commands  (enter sends, ctrl+j new line)")
        yield Footer(compact=True)

    async def on_mount(self) -> None:
        self.sc.refresh_status()
        await self.show_welcome()

    async def show_welcome(self) -> None:
        await self.query_one(Transcript).show_welcome(self.sc.welcome_markdown())

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    @property
    def prompt(self) -> PromptArea:
        return self.query_one(PromptArea)

    @property
    def busy(self) -> bool:
        return self._turn_worker is not None and self._turn_worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def _complete(self, text: str) -> list[commands.Completion]:
        svc = self.sc.service
        agents = list(svc.handbook.agents) if svc is not None else []
        return commands.completions(text, handbooks=self.sc.handbook_names, agents=agents)

    # --- sending ---------------------------------------------------------------------------
    @on(PromptArea.Submitted)
    async def _submitted(self, event: PromptArea.Submitted) -> None:
        text = event.text.strip("\n")
        if commands.is_command(text.strip()):
            event.prompt.sent(text.strip())
            await self.run_command(text.strip())
            return
        if text.startswith("//"):
            text = text[1:]
        if self.busy:
            self.notify("An answer is still being written: esc stops it.", severity="warning")
            return
        event.prompt.sent(event.text)
        await self.send(text)

    async def run_command(self, line: str) -> None:
        try:
            inv = commands.parse(line)
        except commands.SlashError as e:
            self.notify(str(e), severity="warning")
            return
        await slash.run(self, inv)

    async def send(self, text: str, *, again: bool = False) -> None:
        self.last_user_text = text
        await self.transcript.add_user(text, again=again)
        turn = await self.transcript.add_assistant(self.sc.active_handbook())
        self._turn_worker = self._run_turn(text, turn)
        self.refresh_bindings()

    @work(group="turn", exclusive=True, exit_on_error=False, description="answering")
    async def _run_turn(self, text: str, turn: AssistantTurn) -> None:
        app = self.sc
        svc = await app.wait_for_service(turn)
        if svc is None:
            return
        try:
            with app.answering():
                async with aclosing(svc.run_turn(self.conversation_id, text)) as events:
                    async for ev in events:
                        await self._on_turn_event(turn, ev)
        except asyncio.CancelledError:
            await turn.stopped()
            raise
        except Exception as e:  # the service should turn failures into TurnFailed; never lose the UI
            await turn.failed(f"{type(e).__name__}: {e}")
        finally:
            app.refresh_status()

    async def _on_turn_event(self, turn: AssistantTurn, ev: Any) -> None:
        kind = type(ev).__name__
        if kind == "TurnStarted":
            self.conversation_id = ev.conversation_id
            turn.conversation_id = ev.conversation_id
            await turn.show_decision(ev.decision, demo=ev.demo, turn_id=ev.turn_id)
        elif kind == "TokenChunk":
            await turn.append(ev.text)
        elif kind == "AgentFailed":
            await turn.agent_failed(ev.agent_id, ev.error, ev.kind, ev.next_agent)
        elif kind == "TurnFinished":
            await turn.finish(ev)
            if ev.budget_warning:
                self.notify(ev.budget_warning, title="Budget", severity="warning")
        elif kind == "TurnFailed":
            if getattr(ev, "conversation_id", None) is not None:
                self.conversation_id = ev.conversation_id
            await turn.failed(ev.error, kind=getattr(ev, "kind", "failed"))

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self._turn_worker:
            self.refresh_bindings()

    # --- bindings ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.busy
        if action == "to_prompt":
            return self.is_mounted and self.focused is not self.prompt
        if action in ("rate_last", "copy_last", "why"):
            turn = self.transcript.last_turn() if self.is_mounted else None
            return turn is not None and (action != "rate_last" or turn.rateable)
        if action == "regenerate":
            return self.last_user_text is not None and not self.busy
        if action == "compare":
            return not self.busy
        return True

    def action_cancel(self) -> None:
        if self._turn_worker is not None:
            self._turn_worker.cancel()

    def action_to_prompt(self) -> None:
        self.prompt.focus()

    def on_key(self, event: events.Key) -> None:
        """Typing always reaches the prompt. A key that bubbles up to here was not taken by the
        widget it was sent to (an answer selected with alt+up or by clicking its [+], a "why"
        title; the prompt takes every printable key): a printable one that nothing is bound to goes
        to the prompt, which takes the focus back. Keys of the same read that were already sent to
        the old focus arrive here after it moved, and are put in too, in order."""
        prompt = self.prompt
        if not event.is_printable or not event.character:
            return
        bound = self.app.active_bindings.get(event.key)
        if bound is not None and bound.enabled:
            return
        event.prevent_default()
        event.stop()
        prompt.focus()
        prompt.insert(event.character)

    def action_rate_last(self, rating: str) -> None:
        turn = self.transcript.last_turn()
        if turn is not None:
            turn.request_rating(rating)

    def action_why(self) -> None:
        turn = self.transcript.last_turn()
        if turn is None or not turn.toggle_why():
            self.notify("No routed answer yet.", severity="information")

    def action_copy_last(self) -> None:
        turn = self.transcript.last_turn()
        if turn is not None:
            self.copy_turn(turn)

    async def action_regenerate(self) -> None:
        await self.regenerate()

    async def action_new(self) -> None:
        await self.new_conversation()

    async def action_focus_turn(self, step: int) -> None:
        turns = self.transcript.turns()
        if not turns:
            return
        focused = self.focused
        if isinstance(focused, AssistantTurn) and focused in turns:
            i = turns.index(focused) + step
            if i >= len(turns):
                self.prompt.focus()
                return
            if i < 0 and await self.load_earlier():
                turns = self.transcript.turns()
                i = turns.index(focused) + step
            i = max(i, 0)
        else:
            i = len(turns) - 1 if step < 0 else 0
        turns[i].focus()
        turns[i].scroll_visible()

    # --- side by side (/compare, ctrl+s) -------------------------------------------------------
    async def action_compare(self) -> None:
        text = self.prompt.text.strip("\n")
        if text.strip() and not commands.is_command(text.strip()):
            self.prompt.sent(text)
            await self.compare(text[1:] if text.startswith("//") else text)
        else:
            await self.compare(None)

    async def compare(self, text: str | None) -> None:
        """Ask the best expected agent and a challenger at once (text None: the last message again)."""
        if self.busy:
            self.notify("An answer is still being written: esc stops it.", severity="warning")
            return
        again = text is None
        text = self.last_user_text if again else text
        if not text:
            self.notify("Type a message first, or /compare MESSAGE.", severity="information")
            return
        self.last_user_text = text
        await self.transcript.add_user(text, again=again)
        panel = await self.transcript.add_comparison(self.sc.active_handbook())
        self._turn_worker = self._run_compare(text, panel)
        self.refresh_bindings()

    @work(group="turn", exclusive=True, exit_on_error=False, description="comparing")
    async def _run_compare(self, text: str, panel: ComparePanel) -> None:
        app = self.sc
        svc = await app.wait_for_service(panel.left)
        if svc is None:
            return
        try:
            with app.answering():
                async with aclosing(svc.run_compare(self.conversation_id, text)) as events:
                    async for ev in events:
                        if isinstance(ev, CompareStarted):
                            self.conversation_id = ev.left.conversation_id
                            await panel.started(ev)
                        elif isinstance(ev, TurnFailed) and panel.left.decision is None:  # before it started: no comparison
                            if ev.conversation_id is not None:
                                self.conversation_id = ev.conversation_id
                            await panel.all_failed(ev.error, ev.kind)
                        elif (side := panel.side(getattr(ev, "turn_id", None))) is not None:
                            await self._on_turn_event(side, ev)
            panel.answers_done()
        except asyncio.CancelledError:
            await panel.stopped()
            raise
        except Exception as e:  # the service should turn failures into events; never lose the UI
            await panel.all_failed(f"{type(e).__name__}: {e}", "failed")
        finally:
            app.refresh_status()

    @on(ComparePanel.Picked)
    def _picked(self, event: ComparePanel.Picked) -> None:
        panel = event.panel
        try:
            self.sc.require_service().choose(panel.left.turn_id, event.outcome)  # type: ignore[arg-type]  # None fails below
        except Exception as e:
            self.notify(f"The choice was not saved: {e}", severity="error")
            return
        panel.show_choice(event.outcome)
        self.prompt.focus()
        self.notify("Both answers rated; the handbook learned from both.", timeout=3)

    # --- turn actions ------------------------------------------------------------------------
    @on(AssistantTurn.RatingChosen)
    def _rate(self, event: AssistantTurn.RatingChosen) -> None:
        turn = event.turn
        if turn.turn_id is None or not turn.rateable:
            self.notify("Only a finished answer can be rated.", severity="warning")
            return
        try:
            self.sc.require_service().rate(turn.turn_id, event.rating)
        except Exception as e:
            self.notify(f"The rating was not saved: {e}", severity="error")
            return
        turn.rating = event.rating
        agent = turn._names.get(turn.agent_id or "", turn.agent_id)
        if event.rating is None:
            self.notify("Rating removed.", timeout=2)
        else:
            self.notify(f"Rated {agent} {'good' if event.rating == 'up' else 'bad'}; the handbook learned from it.", timeout=3)

    @on(AssistantTurn.CopyChosen)
    def _copy(self, event: AssistantTurn.CopyChosen) -> None:
        self.copy_turn(event.turn)

    def copy_turn(self, turn: AssistantTurn) -> None:
        # What is on screen, not the raw answer: escape sequences pasted into a terminal are typed
        # into it (one that ends a bracketed paste runs what follows).
        text = clean(turn.text)
        if not text:
            self.notify("That answer is empty.", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied the answer ({len(text):,} characters).", timeout=2)

    async def regenerate(self) -> None:
        """Ask the last message again as a new turn, routed afresh.

        The earlier answer stays (and stays rateable: rating it down is exactly the signal routing
        needs), because the log keeps both and a resumed conversation must look the same.
        """
        if self.busy:
            self.notify("An answer is still being written: esc stops it.", severity="warning")
            return
        if self.last_user_text is None:
            self.notify("Nothing to regenerate yet.", severity="information")
            return
        await self.send(self.last_user_text, again=True)

    async def new_conversation(self) -> None:
        if self.busy:
            self.action_cancel()
        self.conversation_id = None
        self.last_user_text = None
        await self.show_welcome()
        self.prompt.focus()
        self.refresh_bindings()

    async def load_conversation(self, conversation_id: int) -> None:
        """Show a past conversation as it was (answers, routing, ratings) and continue it.

        Only its last turns are mounted; earlier ones load as the view scrolls up to them."""
        if self.busy:
            self.action_cancel()
        widgets, more = await self._read_page(conversation_id, None)
        if not widgets:
            self.notify(f"Conversation {conversation_id} is empty.", severity="warning")
            return
        self.conversation_id = conversation_id
        self.last_user_text = next((w.text for w in reversed(widgets) if isinstance(w, UserMessage)), None)
        await self.transcript.show_window(widgets, more_before=more)
        await self.note(f"Resumed conversation {conversation_id}; new messages continue it.")
        self.transcript.scroll_end(animate=False)
        self.prompt.focus()
        self.refresh_bindings()

    @on(Transcript.EarlierWanted)
    async def _earlier_wanted(self) -> None:
        await self.load_earlier()

    async def load_earlier(self) -> bool:
        """Mount the page of turns before the window's first; False if there is none."""
        transcript = self.transcript
        start = transcript.window_start()
        if self._loading_earlier or not transcript.more_before or self.conversation_id is None or start is None:
            return False
        self._loading_earlier = True
        try:
            widgets, more = await self._read_page(self.conversation_id, start)
            await transcript.prepend(widgets, more_before=more)
        finally:
            self._loading_earlier = False
        return bool(widgets)

    async def _read_page(self, conversation_id: int, before_turn: int | None) -> tuple[list[Widget], bool]:
        """A page of the log as widgets, read (and the routing of each turn with it) in a thread."""
        svc = self.sc.require_service()
        turn_of = getattr(svc, "turn", None)
        # Answers are drawn here too when the width they will have is known (an answer is on
        # screen): drawing is most of the cost of a page, and the event loop stays free meanwhile.
        width = next((v.size.width for v in self.transcript.query(AnswerView) if v.size.width), None)
        console = self.app.console

        def read() -> tuple[list[Any], dict[int, Any], dict[int, Any], dict[int, Any], bool]:
            entries, more = svc.transcript_page(conversation_id, PAGE_TURNS, before_turn)
            answers = [(e.turn_id, e) for e in entries if e.role == "assistant" and e.turn_id is not None]
            records = {tid: turn_of(tid) for tid, _ in answers if callable(turn_of)}
            drawn = {tid: (width, draw(clean(e.content), console, width)) for tid, e in answers if width}
            notes = {tid: resumed_note(svc.comparison(tid), tid) for tid, _ in answers}
            return entries, records, drawn, notes, more

        entries, records, drawn, notes, more = await asyncio.to_thread(read)
        hb = self.sc.active_handbook()
        widgets: list[Widget] = []
        for e in entries:
            if e.role == "user":
                widgets.append(UserMessage(e.content, turn_id=e.turn_id))
            elif e.role == "assistant":
                rec = records.get(e.turn_id)
                widgets.append(AssistantTurn.restored(
                    hb, text=e.content, turn_id=e.turn_id, agent_id=e.agent_id,
                    decision=getattr(rec, "decision", None), demo=bool(getattr(rec, "demo", False)),
                    stats=_record_stats(rec, e), status="stopped" if e.partial else "done",
                    rating=_rating_name(e.rating), drawn=drawn.get(e.turn_id), note=notes.get(e.turn_id)))
        return widgets, more

    async def note(self, content: Any, *, kind: str = "info") -> None:
        await self.transcript.add_notice(content if not isinstance(content, str) else Text(content), kind=kind)


def _rating_name(value: float | None) -> str | None:
    if value is None:
        return None
    return "up" if value >= 0.5 else "down"


def _record_stats(rec: Any, entry: Any) -> Text | None:
    from skillchat.render import usd
    from skillchat.ui.format import seconds

    if rec is None:
        return Text(usd(entry.cost_usd), style="dim") if entry.cost_usd is not None else None
    t = Text(style="dim")
    if rec.prompt_tokens is not None:
        t.append(f"{rec.prompt_tokens:,} in · {rec.completion_tokens or 0:,} out · ")
    t.append(usd(rec.cost_usd or 0.0))
    if rec.latency_s is not None:
        t.append(f" · {seconds(rec.latency_s)}")
    if len(rec.attempts or ()) > 1:
        t.append("   fallback: " + " → ".join(a.agent_id for a in rec.attempts), style="yellow")
    return t
