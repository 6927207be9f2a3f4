"""Slash commands: the registry, parsing, completion, and the same commands in the command palette.

Every action a user can take by typing `/something` is also reachable from ctrl+p, and both paths
end in one dispatcher (`ChatScreen.run_command`), so the two can never drift apart.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from skillchat.errors import SkillchatError

if TYPE_CHECKING:
    from skillchat.ui.app import SkillchatApp


@dataclass(frozen=True, slots=True)
class SlashCommand:
    name: str
    usage: str
    help: str
    choices: tuple[str, ...] = ()  # fixed values of the first argument, for completion


COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand("help", "", "commands and keys"),
    SlashCommand("handbook", "[list | use NAME[@N] | show]", "list handbooks, switch to one, or open the active one",
                 ("list", "use", "show")),
    SlashCommand("relearn", "", "rebuild the handbook from your rated history; asks before activating it"),
    SlashCommand("spend", "", "spend today, this month and all time, by model, mode and skill"),
    SlashCommand("budget", "", "your budgets and how close you are to them"),
    SlashCommand("model", "NAME | auto", "answer with one model every turn, or route automatically again"),
    SlashCommand("lambda", "X", "cost weight in routing: 0 ignores cost, 1 weighs it heavily",
                 ("0", "0.1", "0.2", "0.5", "1")),
    SlashCommand("explore", "[on | gentle | off]", "let routing try other models now and then (on), on at most "
                 "1 turn in 4 (gentle), or always take the best expected one (off)", ("on", "gentle", "off")),
    SlashCommand("new", "", "start a new conversation"),
    SlashCommand("history", "", "past conversations: open one to resume it"),
    SlashCommand("export", "[markdown | json] [PATH]", "save this conversation to a file (default: current folder)",
                 ("markdown", "json")),
    SlashCommand("why", "", "show or hide the agent ranking behind the last answer"),
    SlashCommand("regenerate", "", "answer the last message again, with a freshly routed model"),
    SlashCommand("compare", "[MESSAGE]", "two agents answer side by side (the last message again if none); "
                 "pick the better one"),
    SlashCommand("copy", "", "copy the last answer to the clipboard"),
    SlashCommand("demo", "[on | off]", "demo mode: scripted agents, no provider or key needed", ("on", "off")),
    SlashCommand("quit", "", "leave skillchat"),
)
BY_NAME = {c.name: c for c in COMMANDS}


class SlashError(SkillchatError):
    """A slash command that cannot be run as typed; the message says what to type instead."""


@dataclass(frozen=True, slots=True)
class Invocation:
    name: str
    args: tuple[str, ...]


def is_command(text: str) -> bool:
    # "//text" escapes a message that really starts with a slash.
    return text.startswith("/") and not text.startswith("//")


def parse(text: str) -> Invocation:
    """`/name args...`; a unique prefix of a name is accepted (`/hand` is `/handbook`)."""
    body = text.strip()[1:]
    try:
        words = shlex.split(body)
    except ValueError:  # an unbalanced quote in a path: fall back to plain splitting
        words = body.split()
    if not words:
        raise SlashError("type a command after the slash; /help lists them")
    head = words[0].lower()
    if head in BY_NAME:
        return Invocation(head, tuple(words[1:]))
    matches = [c.name for c in COMMANDS if c.name.startswith(head)]
    if len(matches) == 1:
        return Invocation(matches[0], tuple(words[1:]))
    if matches:
        raise SlashError(f"/{head} is ambiguous: " + ", ".join(f"/{m}" for m in matches))
    raise SlashError(f"unknown command /{head}; /help lists them")


@dataclass(frozen=True, slots=True)
class Completion:
    value: str  # the whole prompt line after completing
    label: str
    help: str


def completions(text: str, *, handbooks: Sequence[str] | Callable[[], Sequence[str]] = (),
                agents: Sequence[str] = ()) -> list[Completion]:
    """What the prompt line could become; empty when the line is not a command being typed.
    `handbooks` may be a function: listing them reads every handbook file, far too slow for each
    key, so it is called only when a handbook name is being completed."""
    if not is_command(text) or "\n" in text:
        return []
    body = text[1:]
    if " " not in body:
        prefix = body.lower()
        return [Completion(f"/{c.name}" + (" " if c.usage else ""), f"/{c.name} {c.usage}".rstrip(), c.help)
                for c in COMMANDS if c.name.startswith(prefix) and c.name != prefix]
    head, _, rest = body.partition(" ")
    cmd = BY_NAME.get(head.lower())
    if cmd is None:
        return []
    words = rest.split(" ")
    options: Iterable[tuple[str, str]] = ()
    if len(words) == 1:
        if cmd.name == "model":
            options = [("auto", "route automatically again")] + [(a, "always answer with this agent") for a in agents]
        elif cmd.name == "handbook":
            options = [("list", "all handbooks"), ("use", "switch to another handbook"), ("show", "open the active one")]
        else:
            options = [(c, "") for c in cmd.choices]
    elif len(words) == 2 and cmd.name == "handbook" and words[0] == "use":
        options = [(h, "") for h in (handbooks() if callable(handbooks) else handbooks)]
    partial = words[-1].lower()
    lead = f"/{cmd.name} " + " ".join(words[:-1]) + (" " if len(words) > 1 else "")
    more = {"use"} if cmd.name == "handbook" else set()  # words that need another word after them
    return [Completion(lead + o + (" " if o in more else ""), o, h)
            for o, h in options if o.lower().startswith(partial) and o.lower() != partial]


def help_renderable(keys: Iterable[tuple[str, str]]):  # -> rich renderable
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    cmds = Table(title="Slash commands", title_justify="left", title_style="bold", box=None, pad_edge=False,
                 show_header=False)
    cmds.add_column(style="bold", no_wrap=True)
    cmds.add_column(overflow="fold")
    for c in COMMANDS:
        # Text, not str: usages such as [list | use NAME] are not Rich markup.
        cmds.add_row(Text(f"/{c.name}" + (f" {c.usage}" if c.usage else "")), Text(c.help))
    key_table = Table(title="Keys", title_justify="left", title_style="bold", box=None, pad_edge=False,
                      show_header=False)
    key_table.add_column(style="bold", no_wrap=True)
    key_table.add_column(overflow="fold")
    for k, d in keys:
        key_table.add_row(Text(k), Text(d))
    tail = Text.assemble(
        "Start a message with ", ("//", "bold"), " to send text that begins with a slash. Every command is also in the "
        "command palette (", ("ctrl+p", "bold"), "), which also switches themes.\n"
        "Remap a key by its id in the config file's ", ("[keymap]", "bold"), " table, e.g. ",
        ('rate_up = "f8"', "bold"), ".", style="dim")
    return Group(cmds, Text(""), key_table, Text(""), tail)


class SkillchatCommands(Provider):
    """The slash commands, offered in the command palette (ctrl+p)."""

    def _entries(self) -> list[tuple[str, str, str]]:
        app: SkillchatApp = self.app  # type: ignore[assignment]
        out = [
            ("New conversation", "/new", "start a new conversation"),
            ("Conversations", "/history", "past conversations: open one to resume it"),
            ("Spend", "/spend", "spend by day, model, mode and skill, and budgets"),
            ("Handbook", "/handbook show", "modes, skills and each agent's competence"),
            ("Relearn handbook", "/relearn", "rebuild the handbook from your rated history"),
            ("Export conversation as Markdown", "/export markdown", "save to a file in the current folder"),
            ("Export conversation as JSON", "/export json", "save to a file in the current folder"),
            ("Regenerate last answer", "/regenerate", "answer the last message again"),
            ("Compare two answers side by side", "/compare", "the last message again, from two agents; pick the better"),
            ("Copy last answer", "/copy", "copy it to the clipboard"),
            ("Why this model?", "/why", "the ranking behind the last answer"),
            ("Route automatically", "/model auto", "stop pinning one model"),
            ("Help", "/help", "commands and keys"),
        ]
        svc = app.service
        if svc is not None:
            for agent in svc.handbook.agents.values():
                out.append((f"Pin model: {agent.name}", f"/model {agent.id}", f"answer every turn with {agent.model}"))
            for name in app.handbook_names():
                out.append((f"Use handbook: {name}", f"/handbook use {name}", "route with this handbook"))
            explore = {"thompson": ("Explore", "/explore on", "let routing try other models now and then"),
                       "gentle": ("Explore gently", "/explore gentle", "try other models on at most 1 turn in 4"),
                       "greedy": ("Stop exploring", "/explore off", "always take the best expected model")}
            out.extend(v for k, v in explore.items() if k != svc.policy)
            if svc.demo:
                out.append(("Leave demo mode", "/demo off", "real models answer again"))
            else:
                out.append(("Demo mode", "/demo", "scripted agents; no provider needed"))
        return out

    async def discover(self) -> Hits:
        for title, line, help_ in self._entries()[:12]:
            yield DiscoveryHit(title, self._runner(line), help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, line, help_ in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), self._runner(line), help=help_)

    def _runner(self, line: str):
        app: SkillchatApp = self.app  # type: ignore[assignment]
        return lambda: app.run_command_line(line)
