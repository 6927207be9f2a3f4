"""The top line: the settings that shape routing right now, and whether models can be reached."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from skillchat.config import DEFAULT_LAMBDA
from skillchat.text_safety import clean


@dataclass(frozen=True)
class StatusState:
    handbook: str = ""
    lam: float = DEFAULT_LAMBDA
    pinned: str | None = None  # display name of the pinned agent
    providers: str = "loading"  # loading, starting (the local model), ready, failed, none
    demo: bool = False
    spend: str = ""  # e.g. "today $0.012 of $2.00"
    spend_alert: bool = False
    policy: str = "thompson"  # how routing explores: thompson, gentle or greedy


class StatusBar(Static):
    def show(self, s: StatusState) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" skillchat ", style="bold reverse")
        if s.demo:
            t.append(" DEMO ", style="bold black on yellow")
        t.append("  handbook ", style="dim")
        t.append(clean(s.handbook))
        t.append("  λ ", style="dim")
        t.append(f"{s.lam:g}")
        t.append("  routing ", style="dim")
        if s.pinned:
            t.append(f"pinned: {clean(s.pinned)}", style="bold yellow")
        else:
            t.append({"gentle": "auto, exploring gently", "greedy": "auto, not exploring"}.get(s.policy, "auto"))
        t.append("  models ", style="dim")
        style = {"ready": "green", "loading": "italic", "starting": "italic", "failed": "bold red",
                 "none": "bold yellow"}.get(s.providers, "")
        label = {"loading": "loading…", "starting": "starting local model…",
                 "none": "none configured"}.get(s.providers, s.providers)
        t.append(label, style=style)
        if s.spend:
            t.append("  ")
            t.append(s.spend, style="bold red" if s.spend_alert else "dim")
        self.update(t)
