"""What each slash command does. Typed commands and command-palette entries both end up here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from skillchat import atomic
from skillchat.config import EXPLORE_WORDS, explore_policy
from skillchat.errors import SkillchatError
from skillchat.text_safety import clean, os_reason, shown
from skillchat.ui.commands import Invocation, SlashError

if TYPE_CHECKING:
    from skillchat.ui.screens.chat import ChatScreen

Handler = Callable[["ChatScreen", tuple[str, ...]], Awaitable[None]]
_HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


async def run(chat: ChatScreen, inv: Invocation) -> None:
    fn = _HANDLERS[inv.name]
    needs_service = inv.name not in ("help", "quit", "new", "why", "copy")
    if needs_service and chat.sc.service is None:
        if chat.sc.service_error is not None:
            chat.notify(f"/{inv.name}: skillchat could not start its service: {chat.sc.service_error}",
                        severity="error", title="Command failed")
        else:
            chat.notify("Still starting up; try again in a moment.", severity="warning")
        return
    try:
        await fn(chat, inv.args)
    except SkillchatError as e:  # what the user can act on; anything else is a bug and keeps its trace
        chat.notify(f"/{inv.name}: {e}", severity="error", title="Command failed")


@handler("help")
async def _help(chat: ChatScreen, args: tuple[str, ...]) -> None:
    from skillchat.ui.screens.help import HelpScreen

    chat.app.push_screen(HelpScreen())


@handler("quit")
async def _quit(chat: ChatScreen, args: tuple[str, ...]) -> None:
    chat.app.exit()


@handler("new")
async def _new(chat: ChatScreen, args: tuple[str, ...]) -> None:
    await chat.new_conversation()


@handler("why")
async def _why(chat: ChatScreen, args: tuple[str, ...]) -> None:
    chat.action_why()


@handler("copy")
async def _copy(chat: ChatScreen, args: tuple[str, ...]) -> None:
    chat.action_copy_last()


@handler("regenerate")
async def _regenerate(chat: ChatScreen, args: tuple[str, ...]) -> None:
    await chat.regenerate()


@handler("compare")
async def _compare(chat: ChatScreen, args: tuple[str, ...]) -> None:
    await chat.compare(" ".join(args) or None)


@handler("demo")
async def _demo(chat: ChatScreen, args: tuple[str, ...]) -> None:
    want = args[0].lower() if args else "on"
    if want not in ("on", "off"):
        raise SlashError("use /demo or /demo off")
    await chat.sc.set_demo(want == "on")


@handler("handbook")
async def _handbook(chat: ChatScreen, args: tuple[str, ...]) -> None:
    svc = chat.sc.require_service()
    sub = args[0].lower() if args else "show"
    if sub == "show":
        from skillchat.ui.screens.handbook import HandbookScreen

        chat.app.push_screen(HandbookScreen())
    elif sub == "list":
        active = svc.handbook.name
        t = Table(title="handbooks", title_justify="left", box=None, pad_edge=False)
        for col in ("", "name", "version", "description"):
            t.add_column(col)
        for info in chat.sc.handbook_infos():
            t.add_row("→" if info.name == active else "", info.name, str(info.version),
                      Text(clean(info.description) or ("shipped" if info.shipped else "your version"), overflow="fold"))
        await chat.note(t)
    elif sub == "use":
        if len(args) < 2:
            raise SlashError("name the handbook: /handbook use NAME (or NAME@VERSION)")
        svc.use_handbook(args[1])
        chat.sc.refresh_status()
        await chat.note(f"Routing with handbook {svc.handbook.ref} from now on.")
    else:
        raise SlashError(f"unknown subcommand {sub!r}: use list, use NAME or show")


@handler("relearn")
async def _relearn(chat: ChatScreen, args: tuple[str, ...]) -> None:
    from skillchat.ui.screens.relearn import RelearnScreen

    chat.app.push_screen(RelearnScreen())


@handler("spend")
async def _spend(chat: ChatScreen, args: tuple[str, ...]) -> None:
    from skillchat.ui.screens.spend import SpendScreen

    chat.app.push_screen(SpendScreen())


@handler("budget")
async def _budget(chat: ChatScreen, args: tuple[str, ...]) -> None:
    from skillchat.ui.screens.spend import budget_renderable

    await chat.note(budget_renderable(chat.sc.require_service().budget_status(), config_path=chat.sc.config_path_text()))


@handler("model")
async def _model(chat: ChatScreen, args: tuple[str, ...]) -> None:
    svc = chat.sc.require_service()
    if not args:
        pinned = svc.pinned
        name = svc.handbook.agents[pinned].name if pinned is not None and pinned in svc.handbook.agents else pinned
        await chat.note(f"Pinned to {name}; /model auto routes again." if pinned
                        else "Routing automatically; /model NAME answers with one model every turn.")
        return
    want = " ".join(args)
    if want.lower() in ("auto", "none", "off"):
        svc.pin(None)
        chat.sc.refresh_status()
        await chat.note("Routing automatically again.")
        return
    agent = _find_agent(svc.handbook, want)
    svc.pin(agent.id)
    chat.sc.refresh_status()
    await chat.note(f"Every turn of this session now goes to {agent.name} ({agent.model}); /model auto routes again.")


def _find_agent(hb, want: str):  # type: ignore[no-untyped-def]
    w = want.lower()
    for a in hb.agents.values():
        if w in (a.id.lower(), a.name.lower(), a.model.lower()):
            return a
    close = [a for a in hb.agents.values() if w in a.id.lower() or w in a.name.lower()]
    if len(close) == 1:
        return close[0]
    raise SlashError(f"no agent {want!r} in {hb.ref} (agents: {', '.join(hb.agents)})")


@handler("lambda")
async def _lambda(chat: ChatScreen, args: tuple[str, ...]) -> None:
    svc = chat.sc.require_service()
    if not args:
        await chat.note(f"λ = {svc.lam:g}: 0 ignores cost, 1 weighs it heavily. /lambda X changes it.")
        return
    from skillchat.config import check_lambda

    svc.set_lambda(check_lambda(args[0]))
    saved = await chat.sc.save_setting("lambda", svc.lam)
    chat.sc.refresh_status()
    effect = ("cost is ignored." if svc.lam == 0 else "cheaper agents win closer calls." if svc.lam < 0.5
              else "cost weighs heavily.")
    await chat.note(f"λ = {svc.lam:g} {saved}: {effect}")


_EXPLORE = {  # what each /explore word does
    "on": "routing now and then tries a model other than the best expected one, so it learns what the others are worth",
    "gentle": "routing tries another model on at most 1 turn in 4, one about as likely to be best; it learns more slowly",
    "off": "every turn goes to the best expected model, and routing learns only about the ones it prefers",
}


@handler("explore")
async def _explore(chat: ChatScreen, args: tuple[str, ...]) -> None:
    svc = chat.sc.require_service()
    if not args:
        now = next(word for word, value in EXPLORE_WORDS.items() if explore_policy(value) == svc.policy)
        others = " or ".join(f"/explore {w}" for w in EXPLORE_WORDS if w != now)
        await chat.note(f"Exploring: {now}; {_EXPLORE[now]}. {others} changes it.")
        return
    want = args[0].lower()
    if want not in EXPLORE_WORDS:
        raise SlashError("use /explore on, /explore gentle or /explore off")
    svc.policy = explore_policy(EXPLORE_WORDS[want])
    saved = await chat.sc.save_setting("explore", EXPLORE_WORDS[want])
    chat.sc.refresh_status()
    await chat.note(f"Exploring: {want} {saved}: {_EXPLORE[want]}.")


@handler("history")
async def _history(chat: ChatScreen, args: tuple[str, ...]) -> None:
    from skillchat.ui.screens.conversations import ConversationsScreen

    def resume(conversation_id: int | None) -> None:
        if conversation_id is not None:
            chat.run_worker(chat.sc.resume(conversation_id), group="resume", exit_on_error=False,
                            description="resuming the conversation")

    chat.app.push_screen(ConversationsScreen(), resume)


_FORMATS = {"markdown": ".md", "md": ".md", "json": ".json"}
_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "markdown", ".json": "json"}
# Words that name a format skillchat does not write: `/export pdf` is refused, not saved as ./pdf.md.
_OTHER_FORMATS = {"pdf", "html", "htm", "txt", "text", "csv", "tsv", "doc", "docx", "odt", "rtf", "xml", "yaml",
                  "yml", "org", "rst", "tex", "latex", "epub", "png", "jpg", "svg"}


@handler("export")
async def _export(chat: ChatScreen, args: tuple[str, ...]) -> None:
    svc = chat.sc.require_service()
    if chat.conversation_id is None:
        raise SlashError("nothing to export yet: this conversation has no turns")
    fmt, path = export_request(args)
    text = svc.export(chat.conversation_id, fmt)
    try:
        target = export_path(path, chat.conversation_id, fmt, cwd=chat.sc.cwd)
        atomic.write_text(target, text)  # a half-written export never replaces an earlier one
    except OSError as e:
        raise SlashError(f"cannot write {shown(e.filename or path or '', 200)}: {os_reason(e)}") from None
    await chat.note(Text.assemble("Exported this conversation to ", (str(target), "bold"), f" ({len(text):,} characters)."))
    chat.notify(f"Saved {target.name}", timeout=3)


def export_request(args: tuple[str, ...]) -> tuple[str, str | None]:
    """(format, path) from `/export [markdown | json] [PATH]`; a format skillchat cannot write, as a
    word or a file extension, is refused with what it can write."""
    fmt, path = None, None
    for a in args:
        if a.lower() in _FORMATS and fmt is None:
            fmt = "json" if a.lower() == "json" else "markdown"
        elif path is None:
            path = a
        else:
            raise SlashError(f"one path at most: /export [markdown | json] [PATH] (got {a!r} after {path!r})")
    can = "skillchat exports markdown (.md) or json (.json)"
    if path is not None:
        p = Path(path)
        suffix = p.suffix.lower()
        if path.lower() in _OTHER_FORMATS:
            raise SlashError(f"{path} is not a format {can}; to name a file {path}, give it an extension ({path}.md)")
        if suffix[1:] in _OTHER_FORMATS and suffix not in _SUFFIXES:
            raise SlashError(f"cannot export as {suffix}: {can}")
        by_suffix = _SUFFIXES.get(suffix)
        if fmt is not None and by_suffix is not None and by_suffix != fmt and suffix != ".txt":
            raise SlashError(f"{path} ends in {suffix} but the format asked for is {fmt}")
        fmt = fmt or by_suffix
    return fmt or "markdown", path


def export_path(path: str | None, conversation_id: int, fmt: str, *, cwd: Path) -> Path:
    """An explicit path (a folder gets the default name), or a new file in the current folder.

    The folder must exist: a typo in it must not quietly create a tree of new folders."""
    ext = _FORMATS[fmt]
    if path is not None:
        p = Path(path).expanduser()
        p = p if p.is_absolute() else cwd / p
        if p.is_dir() or path.endswith(("/", "\\")):
            p = p / f"skillchat-{conversation_id}{ext}"
        p = p if p.suffix else p.with_suffix(ext)
        if not p.parent.is_dir():
            what = "is not a folder" if p.parent.exists() else "does not exist"
            raise SlashError(f"cannot write {p}: the folder {p.parent} {what}")
        return p
    base = cwd / f"skillchat-{conversation_id}{ext}"
    n = 1
    while base.exists():  # never overwrite an earlier export
        n += 1
        base = cwd / f"skillchat-{conversation_id}-{n}{ext}"
    return base
