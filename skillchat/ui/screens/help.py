"""F1: slash commands and keys (with their binding ids, for [keymap]); and the welcome text."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from skillchat.text_safety import one_line
from skillchat.ui.commands import help_renderable

if TYPE_CHECKING:
    from skillchat.ui.app import SkillchatApp


def key_rows(app: SkillchatApp) -> list[tuple[str, str]]:
    from skillchat.ui.screens.chat import ChatScreen
    from skillchat.ui.widgets.compare import ComparePanel
    from skillchat.ui.widgets.turn import AssistantTurn

    rows: list[tuple[str, str]] = []
    keymap = app._keymap  # what the user's [keymap] changed; Textual keeps no public getter
    for scope, cls in (("anywhere", type(app)), ("chat", ChatScreen), ("a selected answer", AssistantTurn),
                       ("a comparison", ComparePanel)):
        for b in cls.BINDINGS:
            if not isinstance(b, Binding):
                continue
            if b.id and b.id in keymap:
                b = dataclasses.replace(b, key=keymap[b.id])
            keys = " / ".join(app.get_key_display(dataclasses.replace(b, key=k.strip())) for k in b.key.split(","))
            what = b.tooltip or b.description
            rows.append((keys, f"{what} [{scope}; id {b.id}]" if b.id else f"{what} [{scope}]"))
    rows += [
        ("enter / ctrl+j", "send the message / start a new line"),
        ("up / down", "earlier prompts (on the first / last line of the prompt)"),
        ("tab", "complete a slash command"),
        ("ctrl+p", "command palette: every command, themes"),
        ("ctrl+q", "quit"),
    ]
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close", id="close_help")]

    def compose(self) -> ComposeResult:
        app: SkillchatApp = self.app  # type: ignore[assignment]
        with VerticalScroll(id="help-body", classes="dialog"):
            yield Static(help_renderable(key_rows(app)))
        yield Footer()

    async def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(result)


def welcome_markdown(app: SkillchatApp) -> str:
    svc = app.service
    k = app.key_for
    lines = ["# skillchat", "",
             "Every message goes to the model best suited to it. Above each answer you see the skills the turn "
             f"needs, the model chosen and what it should cost; **{k('why')}** shows the full ranking. "
             f"Rate answers with **{k('rate_up')}** (good) and **{k('rate_down')}** (bad), or click **[+]** / **[-]**: "
             "routing learns from every rating.", ""]
    if svc is None:
        lines.append("*Opening your history…*")
    elif svc.demo and svc.demo_reason:
        lines += ["> **No model provider was found, so demo agents are answering.** To use real models, set an "
                  "API key (for example `OPENAI_API_KEY` or `ANTHROPIC_API_KEY`), start Ollama, or add an "
                  "`[[agents]]` entry to the config; `skillchat doctor` checks what is reachable. "
                  "Then type **/demo off**.", "",
                  "Meanwhile everything works on scripted answers, marked **DEMO** on every turn: routing, "
                  "ratings, `/spend` and `/relearn`. Nothing is sent anywhere and nothing is charged.", "",
                  "Try: *Why does my Python loop raise KeyError?*, *Write a haiku about autumn*, "
                  "*What is the integral of x²?*"]
    elif svc.demo:
        lines += ["> **Demo mode.** Scripted agents answer through litellm's mock responses: no key, no network, "
                  "no charge. Routing, ratings, `/spend` and `/relearn` all work on the demo history. "
                  "Every demo answer is marked **DEMO**.", "",
                  "Try: *Why does my Python loop raise KeyError?*, *Write a haiku about autumn*, "
                  "*What is the integral of x²?*"]
    elif app.providers == "loading":
        lines.append("*Loading model providers in the background; you can type already.*")
    elif app.providers == "starting":
        lines.append("*Starting the local model (SmolLM2, on this machine) in the background; you can type already.*")
    elif app.providers == "none":
        lines += ["> **No model provider is configured.** Set an API key (for example `OPENAI_API_KEY`), "
                  "start Ollama, or add an `[[agents]]` entry to the config, then run `skillchat doctor` to check.",
                  "", "Or type **/demo** to try skillchat now with scripted agents (clearly marked, nothing is charged)."]
    elif app.providers == "failed":
        lines += [f"> **Model providers failed to load:** {one_line(app.providers_error or '', 500)}", "",
                  "Run `skillchat doctor` to see why, or type **/demo** to try the scripted agents."]
    else:
        hb = svc.handbook
        lines.append(f"Handbook **{hb.ref}**: {len(hb.skills)} skills in {len(hb.modes)} modes, "
                     f"{len(hb.agents)} agents. **/help** lists commands; **{k('spend')}** spend, **{k('handbook')}** handbook, "
                     f"**{k('conversations')}** past chats.")
    return "\n".join(lines)
