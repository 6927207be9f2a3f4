"""A turn whose process is killed mid-stream keeps its partial answer and its cost.

The real `skillchat ask` in a subprocess, streaming slowly from the local OpenAI-compatible server,
is sent SIGKILL, SIGTERM or SIGHUP half-way; then the database is read as the next start sees it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openai_server import closed_port
from terminal import Terminal

from skillchat import paths
from skillchat.cli import main
from skillchat.config import Config
from skillchat.core.ports import Message
from skillchat.errors import StoreError
from skillchat.events import TokenChunk, TurnFailed, TurnFinished
from skillchat.providers.detect import Environment
from skillchat.service import ChatService
from skillchat.store import TraceStore, traces

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
QUESTION = " ".join(f"word{i}" for i in range(120))  # echoed back one word at a time
KEY = "fake-kill-key-0123456789"


def _config(server, tiny_path) -> None:
    agents = "".join(
        f'\n[[agents]]\nid = "{a}"\nmodel = "openai/{m}"\napi_base = "{server.api_base}"\napi_key_env = "FAKE_SERVER_KEY"\n'
        f"input_per_mtok = 1000.0\noutput_per_mtok = 2000.0\n"
        for a, m in (("big", "alpha"), ("mid", "beta"), ("small", "gamma")))
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(f'handbook = "{tiny_path}"\n{agents}', encoding="utf-8")


class Ask:
    """`python -m skillchat ask -m big QUESTION` on a terminal, its stdout read as it streams."""

    def __init__(self, home: Path) -> None:
        env = {**os.environ, "SKILLCHAT_HOME": str(home), "FAKE_SERVER_KEY": KEY, "PYTHONPATH": str(REPO),
               "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OLLAMA_HOST": f"127.0.0.1:{closed_port()}"}
        self.term = Terminal()  # to a file or a pipe, ask writes only a finished answer
        self.proc = subprocess.Popen([sys.executable, "-m", "skillchat", "ask", "-m", "big", QUESTION],
                                     stdout=self.term.slave, stderr=subprocess.PIPE, env=env, cwd=str(home))
        self.term.opened()

    def wait_streaming(self, seconds: float, timeout: float = 60.0) -> None:
        """Until text has been arriving for `seconds` (the answer takes several times longer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            first_at = self.term.first_at
            if first_at is not None and time.monotonic() - first_at >= seconds:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"ask ended early ({self.proc.returncode}): {self.proc.stderr.read().decode()}")
            time.sleep(0.02)
        raise AssertionError("no answer streamed")

    def finish(self) -> tuple[int, str, str]:
        code = self.proc.wait(30)
        return code, self.term.text(), self.proc.stderr.read().decode()


def _turn_row(tid: int = 1) -> dict:
    """The turn as stored, read the way another process would."""
    conn = sqlite3.connect(str(paths.database_file()), timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM turns WHERE id = ?", [tid]).fetchone())
    finally:
        conn.close()


@pytest.fixture
def slow_server(openai_server, tiny_path, monkeypatch):
    openai_server.behaviour["alpha"] = "slow"
    openai_server.word_delay_s = 0.06  # 120 words: about 7 s of answer
    monkeypatch.setenv("FAKE_SERVER_KEY", KEY)
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")
    _config(openai_server, tiny_path)
    return openai_server


def _next_start() -> ChatService:
    return ChatService.create(probe=False, environment=Environment(frozenset(), None, None))


@pytest.mark.slow
def test_kill_9_mid_stream_keeps_the_saved_text_and_cost_and_the_next_start_closes_it(slow_server, skillchat_home, capsys):
    ask = Ask(skillchat_home)
    ask.wait_streaming(2.5)
    # While it streams, another start must leave it alone: its process is alive.
    assert TraceStore.open().mark_interrupted() == 0
    row = _turn_row()
    assert row["status"] == "running" and row["owner"].split(":")[1] == str(ask.proc.pid)
    saved = json.loads(row["progress_json"])
    assert saved["text"] and saved["cost_usd"] > 0  # saved every second or so while streaming

    ask.proc.send_signal(signal.SIGKILL)
    code, out, _ = ask.finish()
    assert code == -signal.SIGKILL
    row = _turn_row()
    assert row["status"] == "running"  # nobody could write anything at the kill
    saved = json.loads(row["progress_json"])
    assert saved["text"] and out.startswith(saved["text"]) and len(saved["text"]) >= len(out) - 400

    svc = _next_start()  # the next start: the owner is dead, so the turn is closed with what was saved
    t = svc.store.turn(1)
    assert t.status == "cancelled" and t.error.startswith("interrupted") and f"process {ask.proc.pid} ended" in t.error
    assert t.answer_text == saved["text"] and t.agent_id == "big"
    assert t.cost_usd == pytest.approx(saved["cost_usd"]) and t.cost_usd > 0
    assert [a.kind for a in t.attempts] == ["cancelled"]
    svc.close()
    capsys.readouterr()
    assert main(["spend", "--json"]) == 0  # the budget sees it
    assert json.loads(capsys.readouterr().out)["total"]["cost_usd"] == pytest.approx(t.cost_usd)
    assert main(["rate", "1", "down"]) == 0  # and it can be rated


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_ask_like_ctrl_c(slow_server, skillchat_home, sig):
    ask = Ask(skillchat_home)
    ask.wait_streaming(1.0)
    ask.proc.send_signal(sig)
    code, out, err = ask.finish()
    assert code == 128 + sig, err
    assert f"stopped by {signal.Signals(sig).name}" in err and "Traceback" not in err
    t = TraceStore.open().turn(1)
    assert t.status == "cancelled" and t.error == f"interrupted by {signal.Signals(sig).name}"
    assert t.answer_text and t.answer_text == out.rstrip("\n")  # everything that arrived, not the last save
    assert t.cost_usd > 0 and t.completion_tokens > 0
    assert main(["rate", "1", "up"]) == 0


# --- which process owns a running turn ---------------------------------------------------------------
def test_a_dead_a_zombie_and_a_reused_pid_are_not_alive():
    me = traces.process_owner()
    assert traces.owner_alive(me) is True
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    host, _, _ = me.rsplit(":", 2)
    while child.poll() is None:
        time.sleep(0.01)
    assert traces.owner_alive(f"{host}:{child.pid}:") is False  # exited and reaped
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(0.5)  # exited, not reaped yet
    if Path(f"/proc/{zombie.pid}/stat").exists():
        assert traces.owner_alive(f"{host}:{zombie.pid}:") is False
    zombie.wait()
    if Path("/proc/self/stat").exists():
        assert traces.owner_alive(f"{host}:{os.getpid()}:1") is True  # this process is never a stranger
        assert traces.owner_alive(f"{host}:{os.getppid()}:1") is False  # that pid started at another time
    assert traces.owner_alive(f"another-{socket.gethostname()}:1:1") is None  # can't tell on another host


def _running_turn(store: TraceStore, *, owner: str | None, heartbeat: datetime | None, text: str = "half an ans") -> int:
    cid = store.new_conversation()
    mid = store.add_message(cid, "user", "q")
    tid = store.start_turn(cid, mid, None, demo=False)
    store.save_progress(tid, {"text": text, "agent_id": "mid", "model": "m", "prompt_tokens": 5,
                              "completion_tokens": 3, "cost_usd": 0.25, "attempts": []})
    store.db.execute("UPDATE turns SET owner = ?, heartbeat_at = ? WHERE id = ?",
                     [owner, heartbeat and heartbeat.isoformat().replace("+00:00", "Z"), tid])
    store.db.conn.commit()
    return tid


def test_only_turns_whose_process_is_gone_or_silent_are_closed(tmp_path):
    store = TraceStore.open(tmp_path / "t.db")
    now = datetime.now(UTC)
    host = socket.gethostname()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = _running_turn(store, owner=traces.process_owner(), heartbeat=now)
    live_but_silent = _running_turn(store, owner=traces.process_owner(), heartbeat=now - timedelta(hours=1))
    dead = _running_turn(store, owner=f"{host}:{gone.pid}:", heartbeat=now)
    elsewhere = _running_turn(store, owner="other-host:1:1", heartbeat=now - timedelta(seconds=30))
    elsewhere_silent = _running_turn(store, owner="other-host:2:1", heartbeat=now - timedelta(minutes=5))
    assert store.mark_interrupted() == 3
    status = {tid: store.turn(tid).status for tid in (live, live_but_silent, dead, elsewhere, elsewhere_silent)}
    assert status == {live: "running", live_but_silent: "cancelled", dead: "cancelled", elsewhere: "running",
                      elsewhere_silent: "cancelled"}
    t = store.turn(dead)
    assert t.answer_text == "half an ans" and t.cost_usd == 0.25 and t.prompt_tokens == 5
    store.rate(dead, 1.0)  # ratable
    from skillchat.store import spend

    assert spend.spent_between(store.db, "2000-01-01") == pytest.approx(0.75)  # the three closed ones count


# --- the service saves progress, and never leaves a turn running because a write failed ---------------
class SlowProvider:
    """Streams `words` words, `delay` seconds apart, without litellm."""

    def __init__(self, words: int = 40, delay: float = 0.05) -> None:
        self.words, self.delay = words, delay

    async def stream(self, ep, messages, stats, **kw):
        import asyncio

        for i in range(self.words):
            await asyncio.sleep(self.delay)
            piece = f"w{i} "
            stats.text += piece
            yield piece
        stats.prompt_tokens, stats.completion_tokens = 10, self.words


def _service(tmp_path, tiny_path, provider) -> ChatService:
    return ChatService.create(Config(handbook=str(tiny_path)), demo=True, store=TraceStore.open(tmp_path / "t.db"),
                              environment=Environment(frozenset(), None, None), provider=provider, chunk_delay_s=0.0)


async def test_streamed_text_is_saved_every_second_or_so(tmp_path, tiny_path, monkeypatch):
    from skillchat.service import outcomes

    monkeypatch.setattr(outcomes, "SAVE_EVERY_S", 0.2)
    svc = _service(tmp_path, tiny_path, SlowProvider(words=30, delay=0.04))
    saves = []
    seen = 0
    async for ev in svc.run_turn(None, "hello"):
        if isinstance(ev, TokenChunk):
            seen += 1
            row = svc.store.db.execute("SELECT progress_json FROM turns WHERE id = ?", [ev.turn_id]).fetchone()
            if row[0]:
                saves.append(json.loads(row[0])["text"])
    assert 3 <= len(set(saves)) <= 20  # bounded: not one write per token (30 of them)
    assert all(s.startswith("w0 ") for s in saves)
    assert svc.store.db.execute("SELECT progress_json FROM turns").fetchone()[0] is None  # cleared when finished


class LinesProvider(SlowProvider):
    """Streams lines of five words."""

    async def stream(self, ep, messages, stats, **kw):
        import asyncio

        for i in range(self.words):
            await asyncio.sleep(self.delay)
            piece = f"word{i}" + ("\n" if i % 5 == 4 else " ")
            stats.text += piece
            yield piece
        stats.prompt_tokens, stats.completion_tokens = 10, self.words


async def test_each_progress_save_counts_only_the_text_that_arrived_since_the_last(tmp_path, tiny_path, monkeypatch):
    # Counting the whole answer at every save made each save cost more as the answer grew (60 ms
    # and more for a long one, on the loop that draws the screen).
    from skillchat.service import outcomes

    monkeypatch.setattr(outcomes, "SAVE_EVERY_S", 0.0)
    svc = _service(tmp_path, tiny_path, LinesProvider(words=200, delay=0.0))
    exact = svc._counter
    counted: list[int] = []

    class Recording:
        def count(self, messages):
            counted.append(sum(len(m.content) for m in messages))
            return exact.count(messages)

    svc._counter = Recording()
    estimates = []
    async for ev in svc.run_turn(None, "hello"):
        if isinstance(ev, TokenChunk):
            row = svc.store.db.execute("SELECT progress_json FROM turns WHERE id = ?", [ev.turn_id]).fetchone()
            if row[0]:
                saved = json.loads(row[0])
                estimates.append((saved["text"], saved["completion_tokens"]))
    assert len(estimates) >= 50
    text, tokens = estimates[-1]
    whole = exact.count([Message("assistant", text)]) - exact.count([Message("assistant", "")])
    assert abs(tokens - whole) <= 0.02 * whole  # the same count, give or take a token split at a line end
    # Each character once, and at each save the line still growing: not the whole text again each time.
    longest_line = max(len(line) + 1 for line in text.split("\n"))
    assert sum(counted) <= counted[0] + len(text) + len(estimates) * longest_line


def test_the_progress_count_starts_over_with_a_fallbacks_text(tmp_path, tiny_path):
    from skillchat.providers.litellm_client import CallStats
    from skillchat.service.outcomes import TurnState
    from skillchat.tokens import answer_tokens

    svc = _service(tmp_path, tiny_path, SlowProvider())
    state = TurnState()
    state.stats.text = "the first agent wrote this line\nand half of another"
    first = svc._completion_tokens(state)
    assert first == answer_tokens(svc._counter, state.stats.text) > 0
    state.stats = CallStats()  # the fallback's call
    state.stats.text = "short\n"
    assert svc._completion_tokens(state) == answer_tokens(svc._counter, "short\n") < first


async def test_a_finishing_write_that_fails_is_shown_retried_and_never_leaves_the_turn_running(tmp_path, tiny_path, monkeypatch):
    svc = _service(tmp_path, tiny_path, SlowProvider(words=5, delay=0.0))
    real = svc.store.finish_turn
    failing = {"on": True}

    def finish_turn(*a, **kw):
        if failing["on"]:
            raise StoreError("the trace database stayed locked by another skillchat process for more than 30 s")
        return real(*a, **kw)

    monkeypatch.setattr(svc.store, "finish_turn", finish_turn)
    events = [ev async for ev in svc.run_turn(None, "hello")]
    assert isinstance(events[-1], TurnFailed) and events[-1].kind == "unsaved"
    assert "could not be saved" in events[-1].error and "locked" in events[-1].error
    tid = events[-1].turn_id
    assert svc.store.turn(tid).status == "running"
    failing["on"] = False
    events = [ev async for ev in svc.run_turn(None, "again")]  # written before the next turn
    assert isinstance(events[-1], TurnFinished)
    t = svc.store.turn(tid)
    assert t.status == "answered" and t.answer_text == "w0 w1 w2 w3 w4 "


async def test_an_unsaved_outcome_is_closed_on_the_next_start_if_its_process_died(tmp_path, tiny_path, monkeypatch):
    svc = _service(tmp_path, tiny_path, SlowProvider(words=5, delay=0.0))
    monkeypatch.setattr(svc.store, "finish_turn", lambda *a, **kw: (_ for _ in ()).throw(StoreError("locked")))
    events = [ev async for ev in svc.run_turn(None, "hello")]
    tid = events[-1].turn_id
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    svc.store.db.execute("UPDATE turns SET owner = ? WHERE id = ?", [f"{socket.gethostname()}:{gone.pid}:", tid])
    svc.store.db.conn.commit()
    assert TraceStore.open(tmp_path / "t.db").mark_interrupted() == 1
    assert TraceStore.open(tmp_path / "t.db").turn(tid).status == "cancelled"
