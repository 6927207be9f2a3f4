"""SkillchatApp: the Textual app around one ChatService.

Start-up is ordered for a prompt that answers the keyboard in well under a second: the screen is
composed at once; the service (SQLite, handbook) is opened in a thread; the provider layer
(litellm, ~4 s to import) loads in another. A message sent before models are reachable waits in
its turn, saying so, and goes out by itself once they are.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from skillchat import stopping
from skillchat.config import Config, explore_policy
from skillchat.errors import SkillchatError
from skillchat.service_api import ChatServiceAPI
from skillchat.text_safety import clean, cut
from skillchat.ui.commands import SkillchatCommands
from skillchat.ui.screens.chat import ChatScreen
from skillchat.ui.widgets.status import StatusBar, StatusState
from skillchat.ui.widgets.turn import AssistantTurn

ServiceFactory = Callable[[Config, bool | None], ChatServiceAPI]


def _default_factory(cfg: Config, demo: bool | None) -> ChatServiceAPI:
    from skillchat.service import ChatService

    return ChatService.create(config=cfg, demo=demo)


GC_YOUNG = 10_000  # allocations between young collections (Python's default is 700)
# Young collections between collections of the middle generation (default 10), and those between
# full passes (default 10): a middle collection walks everything the young ones kept since the
# last one, 30-55 ms every ~7 s while an answer streamed; every 3 it paused 15 ms (25 at most), and
# full passes come as rarely as before (after 3 x 34 young collections instead of 10 x 10).
GC_MIDDLE, GC_OLD = 3, 34
GC_NEVER = 1 << 30  # middle collections before a full one while an answer streams: none
GC_QUIET_S = 1.0  # seconds without a key before the full collection held back by an answer runs


def quiet_gc() -> None:
    """Keep the garbage collector's full passes (which walk every live object, and stop the event
    loop for as long: 100-500 ms with litellm and a long conversation loaded) out of streaming.

    What start-up built (litellm alone is hundreds of thousands of objects) lives as long as the
    app: frozen, full passes no longer walk it. A larger young generation lets what a streamed
    answer makes for a moment (litellm's chunk objects, the lines replaced at the next update)
    die by reference counting before a collection sees it, so it never reaches the old
    generation and full passes stay rare. Once per process: what later apps (in tests) leave
    behind is not frozen with it."""
    if gc.get_freeze_count():
        return
    gc.freeze()
    gc.set_threshold(GC_YOUNG, GC_MIDDLE, GC_OLD)


MAX_TOAST = 600  # characters of a toast; a provider's HTML error page is cut


class ServiceNotOpen(RuntimeError):
    """Code that needs the service ran before it opened: a bug, as every way there waits for it
    (wait_for_service) or refuses until it is open (ui/slash.py)."""


class SkillchatApp(App[int]):
    TITLE = "skillchat"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {SkillchatCommands}
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("f1", "command('/help')", "Help", id="help", tooltip="Slash commands and keys"),
        Binding("f2", "command('/spend')", "Spend", id="spend", tooltip="Spend, by model, mode and skill; budgets"),
        Binding("f3", "command('/handbook show')", "Handbook", id="handbook",
                tooltip="Modes, skills and each agent's learned competence"),
        Binding("f4", "command('/history')", "Chats", id="conversations", tooltip="Past conversations: resume one"),
    ]

    def __init__(self, config: Config | None = None, *, demo: bool | None = None,
                 service_factory: ServiceFactory | None = None, cwd: Path | None = None,
                 handle_signals: bool = False, history_file: Path | None = None) -> None:
        super().__init__()
        self._handle_signals = handle_signals  # SIGTERM/SIGHUP (run_app sets it; tests call stop_for_signal)
        self._stopper: stopping.Stopper | None = None
        self.config = config or Config()
        self.demo_requested = demo
        self.service_factory = service_factory or _default_factory
        self.cwd = cwd or Path.cwd()
        self.history_file = history_file  # None: what was typed is recalled in this session only
        self.service: ChatServiceAPI | None = None  # None until it opens (in a thread); require_service()
        self.service_error: str | None = None  # why it could not open
        self.providers = "loading"  # loading, ready, failed, none
        self.providers_error: str | None = None
        self._service_ready = asyncio.Event()
        self._providers_done = asyncio.Event()
        self._unknown_keymap_ids: list[str] = []
        self._last_key = 0.0  # time.monotonic() of the last key

    def notify(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Every toast is plain text, whoever asks for it (screens and widgets call this too).

        Toasts carry provider errors, file names and what was typed: "[link=…]" in them must not
        become markup (nor "[/]" an error), and escape sequences must not reach the terminal.
        """
        super().notify(cut(clean(message), MAX_TOAST), title=clean(title), severity=severity, timeout=timeout,
                       markup=False)

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """No full garbage collection while an answer streams; one that came due meanwhile runs
        once the answer is on screen and no key has come for a moment.

        A full pass walks every live object and stops the event loop for as long: 0.4-0.8 s about
        once a minute of streaming into a long conversation, keys typed meanwhile waiting. Young
        and middle collections go on, so what a turn leaves behind is still freed, cycles included,
        at most one full pass later than Python would have."""
        young, middle, old = gc.get_threshold()
        gc.set_threshold(young, middle, GC_NEVER)
        try:
            yield
        finally:
            gc.set_threshold(young, middle, old)
            self.set_timer(GC_QUIET_S, self._collect_when_quiet)

    def _collect_when_quiet(self) -> None:
        """The full collection an answer held back, once no key has come for GC_QUIET_S: it stops
        the app for 0.5-0.8 s with a long conversation loaded, better while the answer is read than
        while the next question is typed."""
        if gc.get_count()[2] <= gc.get_threshold()[2]:  # middle collections since the last full one
            return  # not due, or Python ran it meanwhile, or another answer holds it (its end comes back here)
        quiet = time.monotonic() - self._last_key
        if quiet < GC_QUIET_S:
            self.set_timer(GC_QUIET_S - quiet, self._collect_when_quiet)
            return
        gc.collect()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key = time.monotonic()
        await super().on_event(event)

    # --- start-up ----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.apply_keymap(self.config.keymap)
        self.push_screen(ChatScreen())
        self._open_service()
        if self._handle_signals:
            self._stopper = stopping.Stopper(self.stop_for_signal).install()

    def stop_for_signal(self, signum: int) -> None:
        """SIGTERM or SIGHUP: stop the answer being written, as esc does (so what arrived of it and
        what it cost are logged), then quit with 128 + the signal number."""
        asyncio.ensure_future(self._stop_for_signal(signum))

    async def _stop_for_signal(self, signum: int) -> None:
        if self.service is not None:
            self.service.cancel_reason = f"interrupted by {stopping.name(signum)}"
        chat = self.chat
        worker = chat._turn_worker if chat is not None and chat.busy else None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(Exception):  # WorkerCancelled is the expected way out
                await asyncio.wait_for(worker.wait(), 15)
        self.exit(return_code=stopping.exit_code(signum))

    def apply_keymap(self, keymap: dict[str, str]) -> None:
        known = self.binding_ids()
        self._unknown_keymap_ids = sorted(k for k in keymap if k not in known)
        self.set_keymap(keymap)
        if self._unknown_keymap_ids:
            self.notify(f"[keymap] in the config names unknown binding ids: {', '.join(self._unknown_keymap_ids)}. "
                        "F1 lists the ids.", severity="warning", timeout=8)
        taken = self.prompt_editing_keys()
        shadowed = sorted(f"{bid} = {k}" for bid, keys in keymap.items() for k in keys.split(",") if k.strip() in taken)
        if shadowed:
            self.notify(f"[keymap]: {', '.join(shadowed)} is also a prompt editing key, so it only works while "
                        "the prompt is not focused.", severity="warning", timeout=8)

    def key_for(self, binding_id: str) -> str:
        """How the key bound to `binding_id` is shown, after the user's [keymap]: for help texts."""
        import dataclasses

        from skillchat.ui.widgets.prompt import PromptArea

        for cls in (type(self), ChatScreen, AssistantTurn, PromptArea):
            for b in cls.BINDINGS:
                if isinstance(b, Binding) and b.id == binding_id:
                    key = self._keymap.get(binding_id, b.key).split(",")[0].strip()
                    return self.get_key_display(dataclasses.replace(b, key=key))
        return binding_id

    @staticmethod
    def prompt_editing_keys() -> set[str]:
        from textual.widgets import TextArea

        return {k.strip() for b in TextArea.BINDINGS if isinstance(b, Binding) for k in b.key.split(",")}

    @work(thread=True, group="service", exit_on_error=False, description="opening the trace store")
    def _open_service(self) -> None:
        try:
            svc = self.service_factory(self.config, self.demo_requested)
        except Exception as e:
            self.call_from_thread(self._service_failed, e)
            return
        self.call_from_thread(self._service_opened, svc)  # type: ignore[arg-type]  # mypy cannot solve Textual's result type for a coroutine

    async def _service_opened(self, svc: ChatServiceAPI) -> None:
        self.service = svc
        self._service_ready.set()
        self.refresh_status()
        chat = self.chat
        if chat is not None and chat.conversation_id is None and not chat.transcript.turns():
            await chat.show_welcome()
        self._load_providers(svc)

    def _service_failed(self, error: Exception) -> None:
        self.service_error = str(error)
        self.providers, self.providers_error = "failed", str(error)
        self._service_ready.set()
        self._providers_done.set()
        self.notify(str(error), title="skillchat could not start its service", severity="error", timeout=30)
        self.refresh_status()

    @work(group="providers", exclusive=True, exit_on_error=False, description="loading model providers")
    async def _load_providers(self, svc: ChatServiceAPI) -> None:
        self._providers_done.clear()
        self.providers = "starting" if getattr(svc, "local_wanted", False) else "loading"
        self.refresh_status()
        try:
            await svc.load_providers()
        except Exception as e:
            self.providers, self.providers_error = "failed", str(e)
            self.notify(f"Model providers could not be loaded: {e}", severity="error", timeout=15)
        else:
            self.providers = "ready" if self.has_agents() else "none"
            self.providers_error = None
            local_error = getattr(getattr(svc, "local", None), "error", None)
            if local_error:
                self.notify(local_error, title="Local model", severity="warning", timeout=15)
        finally:
            quiet_gc()
            self._providers_done.set()
            self.refresh_status()
            chat = self.chat
            if chat is not None and chat.conversation_id is None and not chat.transcript.turns():
                await chat.show_welcome()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place where any background job that failed says so, instead of failing silently."""
        worker = event.worker
        if event.state == WorkerState.ERROR and worker.error is not None:
            what = worker.description or worker.name or "a background task"
            self.notify(f"{what} failed: {worker.error}", title="Something went wrong", severity="error", timeout=10)

    async def wait_for_service(self, turn: AssistantTurn) -> ChatServiceAPI | None:
        """Hold a turn until the service and the providers are up, and return the service; None (the
        turn says why) if they never will be."""
        if not (self._service_ready.is_set() and self._providers_done.is_set()):
            await turn.waiting_for_providers()
            await self._service_ready.wait()
            await self._providers_done.wait()
        if self.service is None or self.providers == "failed":
            await turn.failed(f"Models cannot be reached: {self.providers_error}. Run `skillchat doctor` to see why, "
                              "or type /demo to try skillchat with scripted agents.")
            return None
        return self.service

    def require_service(self) -> ChatServiceAPI:
        """The service, for code that runs only once it is open: the slash commands that need it
        refuse until then (ui/slash.py), and so the screens they open have it."""
        if self.service is None:
            raise ServiceNotOpen("the chat service is not open yet")
        return self.service

    def has_agents(self) -> bool:
        svc = self.service
        if svc is None:
            return False
        if svc.demo:
            return True
        return bool(svc.pool.usable)

    async def set_demo(self, on: bool) -> None:
        svc = self.require_service()
        if bool(svc.demo) == on:
            self.notify("Demo mode is already " + ("on." if on else "off."))
            return
        chat = self.chat
        if chat is not None:
            await chat.new_conversation()
        # The service reloads the handbook, so demo ratings never mix with real ones.
        await asyncio.to_thread(svc.set_demo, on)
        self.providers = "ready" if self.has_agents() else "none"
        self.refresh_status()
        if chat is not None:
            await chat.show_welcome()
        if on:
            self.notify("Demo mode: scripted agents answer, nothing leaves this machine and nothing is charged.",
                        title="Demo", timeout=6)
        else:
            self.notify("Demo mode is off: real models answer.", title="Demo", timeout=4)

    async def resume(self, conversation_id: int) -> None:
        chat = self.chat
        if chat is not None:
            await chat.load_conversation(conversation_id)

    # --- shared state ------------------------------------------------------------------------
    @property
    def chat(self) -> ChatScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, ChatScreen):
                return screen
        return None

    def active_handbook(self) -> Any:
        return self.service.handbook if self.service is not None else None

    def handbook_infos(self) -> list[Any]:
        if self.service is None:
            return []
        try:
            return self.service.handbook_infos()
        except SkillchatError:  # a broken file must not take the app down; using it reports why
            return []

    def handbook_names(self) -> list[str]:
        return [i.name for i in self.handbook_infos()]

    async def save_setting(self, key: str, value: float | bool | str) -> str:
        """Keep a setting changed "from now on" in the config file (atomically; the file's other
        settings and comments are kept), so the next start uses it too. Says how long it lasts:
        "from now on", or for this session only and why, when the file cannot be changed."""
        import dataclasses

        from skillchat import config as config_mod

        try:
            path = await asyncio.to_thread(config_mod.set_value, key, value, self.config.path)
        except SkillchatError as e:
            self.notify(f"Not saved in the config: {e}", severity="warning", timeout=10)
            return "for this session only"
        attr = {"lambda": "lam"}.get(key, key)
        self.config = dataclasses.replace(self.config, path=path, **{attr: value})  # type: ignore[arg-type]  # the key names a field of this type
        return "from now on"

    def config_path_text(self) -> str:
        return str(self.config.file)

    def refresh_status(self) -> None:
        chat = self.chat
        if chat is None:
            return
        bars = chat.query(StatusBar)
        if not bars:
            return
        svc = self.service
        # Until the service is open, show what the config asks for: the bar is never blank.
        state = StatusState(handbook=self.config.handbook, lam=self.config.lam, providers=self.providers,
                            demo=bool(self.demo_requested),
                            policy=explore_policy(self.config.explore))
        if svc is not None:
            pinned = svc.pinned
            hb = svc.handbook
            demo_relearned = bool(hb.history) and isinstance(hb.history[-1], dict) and hb.history[-1].get("demo")
            state = StatusState(
                handbook=hb.ref + (" (relearned in demo)" if demo_relearned else ""),
                lam=svc.lam,
                pinned=hb.agents[pinned].name if pinned in hb.agents else pinned,
                providers=self.providers,
                demo=bool(svc.demo),
                policy=svc.policy,
                **self._spend_state(svc),
            )
        bars.first().show(state)
        chat.refresh_bindings()

    def _spend_state(self, svc: ChatServiceAPI) -> dict[str, Any]:
        from skillchat.render import usd

        try:
            b = svc.budget_status()
        except SkillchatError:  # a broken file must not take the app down; using it reports why
            return {}
        limit = b.daily_usd or b.soft_daily_usd
        text = f"today {usd(b.today_usd)}" + (f" of {usd(limit)}" if limit else "")
        alert = any(r["used"] >= 0.8 for r in b.rows())
        if svc.demo:
            # What F2 shows in demo mode: the demo turns' pretend cost ("today $0" said nothing
            # spent while F2 said $0.00571). Budgets are real money, so they stay out of it.
            try:
                demo_today = svc.spend(by="day", since="today").total.cost_usd
            except SkillchatError:
                return {}
            text = f"today {usd(demo_today)} (demo)"
            alert = False
        return {"spend": text, "spend_alert": alert}

    def welcome_markdown(self) -> str:
        from skillchat.ui.screens.help import welcome_markdown

        return welcome_markdown(self)

    # --- commands ----------------------------------------------------------------------------
    def run_command_line(self, line: str) -> None:
        chat = self.chat
        if chat is None:
            return
        # From another screen (spend, handbook), come back to the chat first so results are seen.
        while self.screen is not chat and len(self.screen_stack) > 1:
            self.pop_screen()
        self.run_worker(chat.run_command(line), group="command", exit_on_error=False, description=line)

    def action_command(self, line: str) -> None:
        self.run_command_line(line)

    def binding_ids(self) -> set[str]:
        from skillchat.ui.screens import all_screen_classes
        from skillchat.ui.widgets.prompt import PromptArea

        ids: set[str] = set()
        for cls in (type(self), ChatScreen, AssistantTurn, PromptArea, *all_screen_classes()):
            for b in getattr(cls, "BINDINGS", []):
                if isinstance(b, Binding) and b.id:
                    ids.add(b.id)
        return ids


def run_app(args: argparse.Namespace, *, history_file: Path | None = None) -> int:
    from skillchat import config

    cfg = config.load()  # a broken config is reported on the terminal, before the screen switches
    demo = True if getattr(args, "demo", False) else None
    app = SkillchatApp(cfg, demo=demo, handle_signals=True, history_file=history_file)
    try:
        app.run()
    finally:
        if app.service is not None:
            with contextlib.suppress(Exception):  # writes any outcome the database refused earlier
                app.service.close()
    return app.return_code or 0
