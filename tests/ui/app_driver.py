"""Making the app and driving it under Textual's Pilot: the helpers every UI test imports by name.

The app is the real ChatService in demo mode (scripted agents through litellm's mock_response, a
real SQLite store under the test's SKILLCHAT_HOME), made deterministic: seeded routing, no pacing
between chunks, no network probes. (conftest.py holds the fixtures; a test never imports conftest.)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skillchat.config import Config

SIZE = (100, 30)
SEED = 1


def demo_factory(*, seed: int = SEED, chunk_delay_s: float = 0.0, demo: bool | None = True) -> Callable[..., Any]:
    def make(cfg: Config, requested: bool | None) -> Any:
        from skillchat.service import ChatService

        return ChatService.create(config=cfg, demo=demo, rng=random.Random(seed), chunk_delay_s=chunk_delay_s,
                                  probe=False, env={})

    return make


def make_app(tmp_path: Path, *, config: Config | None = None, **factory_kw: Any) -> Any:
    from skillchat.ui.app import SkillchatApp

    return SkillchatApp(config or Config(), demo=True, service_factory=demo_factory(**factory_kw), cwd=tmp_path)


async def wait_for(pilot: Any, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


async def start_a_long_answer(pilot: Any) -> Any:
    """Send a question whose demo answer streams slowly (with chunk_delay_s set) and return its turn
    once text is arriving."""
    app = pilot.app
    await pilot.click("#prompt")
    app.chat.prompt.insert("Explain how to weigh two job offers")
    await pilot.press("enter")
    turn = await wait_for(pilot, lambda: app.chat.transcript.last_turn(), what="a turn")
    await wait_for(pilot, lambda: turn.status == "streaming" and len(turn.text) > 10, what="streaming")
    return turn


async def ready(pilot: Any) -> None:
    """Service open and providers (litellm) loaded; the first test in a process pays the import."""
    app = pilot.app
    await wait_for(pilot, lambda: app.service is not None and app.providers != "loading", 30, "the service")
    app.chat.prompt.cursor_blink = False


async def send(pilot: Any, text: str) -> Any:
    """Type a message, press enter, and wait until its answer is complete; returns the turn widget."""
    app = pilot.app
    before = app.chat.transcript.last_turn()  # not a count: a new turn unloads the oldest past 4
    await pilot.click("#prompt")
    app.chat.prompt.insert(text)
    await pilot.press("enter")
    turn = await wait_for(pilot, lambda: (last := app.chat.transcript.last_turn()) is not before and last,
                          what="the turn widget")
    await wait_for(pilot, lambda: turn.status in ("done", "failed", "stopped"), 30, "the answer")
    await pilot.pause()
    return turn


def plain(renderable: Any, width: int = 100) -> str:
    """A Rich renderable (a Static's content) as plain text."""
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def db_rows(app: Any, sql: str, params: tuple = ()) -> list[tuple]:
    # Tests may read the store directly; the app itself only goes through the service.
    return app.service.store.db.execute(sql, params).fetchall()


async def run_command(pilot: Any, line: str) -> None:
    """Type a slash command into the prompt and press Enter, the completion menu out of the way."""
    await pilot.click("#prompt")
    pilot.app.chat.prompt.load_text(line)
    pilot.app.chat.prompt.menu.hide()
    await pilot.press("enter")
    await pilot.pause(0.2)
