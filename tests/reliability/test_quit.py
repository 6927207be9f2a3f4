"""Quitting is prompt whatever the app waits on: the process is gone seconds after ctrl+q or
SIGTERM, while the local model's server is still starting and while an answer streams.

The start can take up to a minute on a busy machine (local_model.START_TIMEOUT_S). It used to be
awaited on the event loop's default executor, which asyncio.run joins before it returns: the
terminal was restored at once, and the process then stayed alive until the server answered or
the minute ran out. Here the engine is one that never finishes loading, under the real entry
point in a real terminal. A streaming answer is read on the event loop and always stopped at
once; its test keeps it so, and checks that what arrived is kept.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from openai_server import closed_port
from tmux_driver import REPO, Tmux, local_servers

from skillchat import paths
from skillchat.providers import local_model

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed, so there is no real terminal"),
]

PROMPT_S = 10.0  # the target is ~5 s; the rest is for a loaded machine


def never_ready_engine(root: Path) -> dict[str, str]:
    """The environment for an engine whose server never answers: llama_cpp.server sleeps, the
    other modules the engine needs are empty, and the model file only starts like a GGUF one."""
    for name in local_model._SERVER_MODULES:
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
    (root / "llama_cpp" / "server").mkdir()
    (root / "llama_cpp" / "server" / "__init__.py").write_text("")
    (root / "llama_cpp" / "server" / "__main__.py").write_text("import time\ntime.sleep(600)\n")
    model = root / "never-ready.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    return {"PYTHONPATH": f"{root}{os.pathsep}{REPO}", local_model.MODEL_ENV: str(model)}



def quit_app(t: Tmux, how: str) -> float:
    """Quit the app in the pane as a user would (ctrl+q) or as a system does (SIGTERM); the seconds
    until its process was gone. It must end cleanly: no traceback, no fatal error at exit."""
    t0 = time.monotonic()
    if how == "ctrl+q":
        t.keys("C-q")
    else:
        os.kill(t.pane_pid(), signal.SIGTERM)
    screen = t.wait_exit(timeout=PROMPT_S)
    took = time.monotonic() - t0
    assert "Traceback" not in screen and "Fatal Python error" not in screen, screen
    return took


@pytest.mark.parametrize("how", ["ctrl+q", "SIGTERM"])
def test_quitting_while_the_local_model_starts_ends_the_process_at_once(tmp_path, skillchat_home, how):
    t = Tmux("skillchat-quit")
    t.start(tmp_path, skillchat_home, extra_env=never_ready_engine(tmp_path / "engine"))
    try:
        t.wait_for("starting local model…", timeout=30)
        deadline = time.monotonic() + 30
        while not local_servers(skillchat_home) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(local_servers(skillchat_home)) == 1, "the local model's server was never started"
        time.sleep(1.0)  # well into the wait for an answer

        took = quit_app(t, how)
        deadline = time.monotonic() + 5  # it ends at its stdin's end of file, a moment after the app
        while local_servers(skillchat_home) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert local_servers(skillchat_home) == [], "the local model's server outlived the app"
        print(f"{how}: the process was gone {took:.1f} s later")
    finally:
        t.stop()


QUESTION = " ".join(f"word{i}" for i in range(60))  # echoed back one word at a time
KEY = "fake-quit-key-0123456789"


def saved_answer() -> str:
    """What has arrived of the answer being written, as saved in the database while it streams."""
    if not paths.database_file().exists():
        return ""
    with sqlite3.connect(paths.database_file(), timeout=10) as db:
        row = db.execute("SELECT progress_json FROM turns WHERE status = 'running'").fetchone()
    return str(json.loads(row[0]).get("text", "")) if row and row[0] else ""


@pytest.mark.parametrize("how", ["ctrl+q", "SIGTERM"])
def test_quitting_mid_answer_ends_the_process_at_once_and_keeps_what_arrived(tmp_path, skillchat_home, openai_server,
                                                                           tiny_path, how):
    for model in openai_server.models:
        openai_server.behaviour[model] = "slow"
    openai_server.word_delay_s = 0.5  # 60 words: half a minute of answer
    agents = "".join(f'\n[[agents]]\nid = "{m}"\nmodel = "openai/{m}"\napi_base = "{openai_server.api_base}"\n'
                     f'api_key_env = "FAKE_SERVER_KEY"\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n'
                     for m in openai_server.models)
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(f'handbook = "{tiny_path}"\n{agents}', encoding="utf-8")
    t = Tmux("skillchat-quit")
    t.start(tmp_path, skillchat_home, extra_env={"FAKE_SERVER_KEY": KEY, local_model.MODEL_ENV: "off",
                                                 "OLLAMA_HOST": f"127.0.0.1:{closed_port()}"})
    try:
        t.wait_for("models ready", timeout=60)
        t.keys(QUESTION, "Enter")
        deadline = time.monotonic() + 30
        while "word3" not in saved_answer() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "word3" in saved_answer(), t.screen()  # streaming, and saving its progress as it goes

        took = quit_app(t, how)
        print(f"{how} mid-answer: the process was gone {took:.1f} s later")
    finally:
        t.stop()
    with sqlite3.connect(paths.database_file()) as db:
        rows = db.execute("SELECT t.status, t.error, m.content FROM turns t "
                          "LEFT JOIN messages m ON m.id = t.assistant_message_id").fetchall()
    reason = "cancelled by the user" if how == "ctrl+q" else "interrupted by SIGTERM"
    assert len(rows) == 1 and rows[0][:2] == ("cancelled", reason), rows
    assert "word0 word1 word2 word3" in rows[0][2] and not rows[0][2].rstrip().endswith("word59"), rows
