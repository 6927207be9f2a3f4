"""The real app in a real terminal: `python -m skillchat --demo` under tmux, driven by keystrokes.

This is the one test that catches what a headless Pilot cannot: the entry point, --demo, terminal
output going to the right stream, litellm loading in the background of a live app, and keys as a
terminal really sends them.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time

import pytest
from tmux_driver import Tmux

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed, so there is no real terminal to drive"),
]

@pytest.fixture
def tmux(tmp_path, skillchat_home):
    t = Tmux("skillchat-test")
    t.start(tmp_path, skillchat_home, "--demo")
    yield t
    t.stop()


def test_demo_app_in_a_real_terminal(tmux, skillchat_home):
    screen = tmux.wait_for("Message, or / for commands", timeout=15)
    assert "DEMO" in screen and "skillchat" in screen
    tmux.wait_for("models ready", timeout=30)  # litellm loaded in the background
    tmux.wait_for("Demo mode")  # the welcome says what demo mode is

    tmux("send-keys", "-t", "app", "Why does my Python loop raise KeyError?", "Enter")
    tmux.wait_for("[+] good", timeout=30)
    # The routing line, with the active skill. Waited for rather than read off the same capture:
    # on a loaded machine the footer can be painted a frame before the lines above it.
    tmux.wait_for("→")
    tmux.wait_for("Debugging")
    tmux.wait_for("out ·")  # tokens, cost and latency under the answer
    tmux.wait_for("Demo answer from")

    tmux("send-keys", "-t", "app", "C-t")
    tmux.wait_for("rated good")

    tmux("send-keys", "-t", "app", "F2")
    tmux.wait_for("1 turn")  # read in a worker, so it fills in a moment after the screen opens
    tmux.wait_for("By model")  # on a busy machine the table can be painted a frame or two later
    assert "1 turns" not in tmux.screen()
    tmux.wait_for("DEMO")
    tmux("send-keys", "-t", "app", "Escape")
    tmux.wait_for("Message, or / for commands")

    tmux("send-keys", "-t", "app", "C-q")
    tmux.wait_exit()
    db = sqlite3.connect(skillchat_home / "data" / "traces.db")
    assert db.execute("SELECT t.demo, r.value FROM ratings r JOIN turns t ON t.id = r.turn_id").fetchall() == [(1, 1.0)]


def test_closing_the_terminal_mid_answer_keeps_what_arrived(tmux, skillchat_home):
    """The terminal goes away while an answer streams (the window is closed, ssh drops): the app
    gets SIGHUP, stops the answer as esc would and logs what arrived, then exits."""
    tmux.wait_for("models ready", timeout=45)
    tmux("send-keys", "-t", "app", "Explain how to weigh two job offers, in detail", "Enter")
    tmux.wait_for("Demo answer from", timeout=30)  # streaming: the demo answer takes several seconds
    pid = int(tmux("display-message", "-p", "-t", "app", "#{pane_pid}").strip())
    tmux("kill-server")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    db = sqlite3.connect(skillchat_home / "data" / "traces.db")
    rows = db.execute("""SELECT t.status, t.error, m.content FROM turns t
                         LEFT JOIN messages m ON m.id = t.assistant_message_id""").fetchall()
    assert len(rows) == 1 and rows[0][0] == "cancelled" and rows[0][1] == "interrupted by SIGHUP", rows
    assert rows[0][2].startswith("*Demo answer from")
