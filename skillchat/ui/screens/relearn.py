"""/relearn: rebuild the handbook from the rated log, show what changed, activate only if asked.

The rebuild runs in a thread (it can read thousands of turns); esc cancels it through the
threading.Event the service polls. Nothing is activated until the user presses the button.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, ProgressBar, Static

from skillchat.core.competence import posterior
from skillchat.text_safety import one_line, plain

if TYPE_CHECKING:
    from skillchat.ui.app import SkillchatApp

def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def competence_moves(old: Any, new: Any, limit: int = 8) -> list[tuple[str, str, float, float]]:
    """The (agent, skill) competences that moved most between two handbooks."""
    moves = []
    for aid in new.agents:
        if aid not in old.agents:
            continue
        for sid in new.skills:
            if sid not in old.skills:
                continue
            a, b = posterior(old, aid, sid).mean, posterior(new, aid, sid).mean
            if abs(b - a) >= 0.005:
                moves.append((aid, sid, a, b))
    moves.sort(key=lambda m: -abs(m[3] - m[2]))
    return moves[:limit]


def result_renderable(result: Any, old_hb: Any) -> Any:
    """What a relearn produced: the service's summary (ratings used, taxonomy changes, off-policy
    estimate), each skill change with its rationale, and the competences that moved most."""
    parts: list[Any] = []
    new_hb = _get(result, "handbook")
    base = _get(result, "base") or old_hb
    summary = _get(result, "summary")
    if isinstance(summary, str) and summary:
        parts.append(plain(summary))  # it starts with "base -> new"
    else:
        if new_hb is not None:
            parts.append(Text(f"{base.ref} → {new_hb.ref}", style="bold"))
        counts = _get(result, "counts")
        if counts is not None:
            parts.append(Text(f"{_get(counts, 'used', 0)} of {_get(counts, 'turns', 0)} rated turns used"))
    for note in _get(result, "notes") or ():
        parts.append(plain(str(note), "yellow"))

    changes = _get(result, "changes") or []
    if changes:
        t = Table(title="skill changes", title_justify="left", box=None, pad_edge=False)
        t.add_column("change")
        t.add_column("skills")
        t.add_column("why", overflow="fold")
        for c in changes:
            skills = ", ".join(_get(c, "created") or ()) or ", ".join(_get(c, "skills") or ())
            # names may come from a model
            t.add_row(str(_get(c, "kind", "")), plain(skills), plain(str(_get(c, "rationale", ""))))
        parts += [Text(""), t]

    if new_hb is not None:
        moves = competence_moves(old_hb, new_hb)
        if moves:
            t = Table(title="biggest competence changes", title_justify="left", box=None, pad_edge=False)
            for col, just in (("agent", "left"), ("skill", "left"), ("before", "right"), ("after", "right"), ("", "left")):
                t.add_column(col, justify=just)  # type: ignore[arg-type]
            for aid, sid, a, b in moves:
                arrow = Text("▲", style="green") if b > a else Text("▼", style="red")
                t.add_row(plain(new_hb.agents[aid].name), plain(new_hb.skills[sid].name), f"{a:.2f}", f"{b:.2f}", arrow)
            parts += [Text(""), t]
    return Group(*parts)


class RelearnScreen(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel_relearn")]

    def __init__(self) -> None:
        super().__init__()
        self.cancel_event = threading.Event()
        self.result: Any = None
        self.old_handbook: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(id="relearn-box", classes="dialog"):
            yield Static("Relearn the handbook from your ratings", classes="dialog-title")
            yield Static(Text("starting…", style="dim"), id="relearn-stage")
            yield ProgressBar(total=None, show_eta=False, id="relearn-progress")
            with VerticalScroll(id="relearn-result"):
                yield Static("", id="relearn-body")
            with Horizontal(id="relearn-buttons"):
                yield Button("Activate", id="activate", variant="success", disabled=True)
                yield Button("Keep the current handbook", id="keep")
        yield Footer()

    @property
    def _open(self) -> bool:
        # The relearn thread reports after esc may have closed this screen; then nobody is listening.
        return self in self.app.screen_stack

    def _methods(self) -> tuple[Any, Any]:
        """relearn/activate, or in demo mode their dry-run twins that write nothing."""
        svc = self.app.require_service()  # type: ignore[attr-defined]
        if svc.demo:
            return svc.relearn_demo, svc.activate_demo
        return svc.relearn, svc.activate

    def on_mount(self) -> None:
        app: SkillchatApp = self.app  # type: ignore[assignment]
        svc = app.require_service()
        if svc.demo:
            self.query_one(".dialog-title", Static).update(
                Text.assemble(("DEMO ", "bold black on yellow"), "Relearn from the demo ratings: nothing is saved, "
                              "and an activated version lasts until demo mode ends"))
        self.old_handbook = svc.handbook
        self._run()

    @work(thread=True, exclusive=True, exit_on_error=False, description="relearning")
    def _run(self) -> None:
        def progress(stage: str, done: int, total: int) -> None:
            self.app.call_from_thread(self._progress, stage, done, total)

        relearn = self._methods()[0]
        try:
            result = relearn(progress=progress, cancel=self.cancel_event)
        except Exception as e:
            if self.cancel_event.is_set():
                self.app.call_from_thread(self._finished_cancelled)
            else:
                self.app.call_from_thread(self._failed, e)
            return
        self.app.call_from_thread(self._finished, result)

    def _progress(self, stage: str, done: int, total: int) -> None:
        if not self._open:
            return
        bar = self.query_one(ProgressBar)
        bar.update(total=max(total, 1), progress=done)
        self.query_one("#relearn-stage", Static).update(Text(f"{stage}: {done:,} of {total:,}", style="dim"))

    def _finished(self, result: Any) -> None:
        if not self._open:
            return
        self.result = result
        bar = self.query_one(ProgressBar)
        bar.update(total=1, progress=1)
        new_hb = _get(result, "handbook")
        unchanged = bool(_get(result, "unchanged", False)) or new_hb is None
        demo = self.app.require_service().demo  # type: ignore[attr-defined]
        if unchanged:
            stage = "Nothing new to learn: no version was written."
        elif demo:
            stage = "Done (demo: nothing was saved). Routing changes only if you activate it."
        else:
            stage = f"Done: {new_hb.ref} is saved but not active. Routing changes only if you activate it."
        self.query_one("#relearn-stage", Static).update(Text(stage, style="bold"))
        self.query_one("#relearn-body", Static).update(result_renderable(result, self.old_handbook))
        activate = self.query_one("#activate", Button)
        activate.disabled = unchanged
        if unchanged:
            self.query_one("#keep", Button).label = "Close"
            self.query_one("#keep", Button).focus()
        else:
            activate.label = "Activate for this demo" if demo else f"Activate {new_hb.ref}"
            activate.refresh(layout=True)  # the new label is wider than the old one
            activate.focus()

    def _finished_cancelled(self) -> None:
        if not self._open:
            return
        self.query_one("#relearn-stage", Static).update(Text("Cancelled; nothing was saved.", style="yellow"))
        self.query_one("#keep", Button).label = "Close"

    def _failed(self, e: Exception) -> None:
        if not self._open:
            return
        self.query_one("#relearn-stage", Static).update(plain(f"Relearn failed: {one_line(str(e), 500)}", "bold red"))
        self.query_one(ProgressBar).display = False
        self.query_one("#keep", Button).label = "Close"

    def action_cancel(self) -> None:
        if self.result is None and not self.cancel_event.is_set():
            self.cancel_event.set()
            self.query_one("#relearn-stage", Static).update(Text("cancelling…", style="yellow"))
            self.workers.cancel_group(self, "default")
            self.dismiss(False)
        else:
            self.dismiss(False)

    @on(Button.Pressed, "#keep")
    def _keep(self) -> None:
        self.cancel_event.set()
        self.dismiss(False)

    @on(Button.Pressed, "#activate")
    def _activate(self) -> None:
        app: SkillchatApp = self.app  # type: ignore[assignment]
        try:
            self._methods()[1](self.result)
        except Exception as e:
            self.notify(f"Could not activate: {e}", severity="error")
            return
        app.refresh_status()
        svc = app.require_service()
        note = " (demo: until demo mode ends)" if svc.demo else ""
        self.notify(f"Routing with the relearned {svc.handbook.ref} from now on{note}.",
                    title="Handbook activated")
        self.dismiss(True)
