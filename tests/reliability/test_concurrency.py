"""Several processes on one trace database: nothing lost, nothing left running, no traceback, and
ratings that converge to what the database says.

The multi-process stress run is benchmarks/bench_concurrency.py for a few seconds (its longer run
prints the figures in the README); the rest pins down each mechanism on its own.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from skillchat import paths
from skillchat.cli import main
from skillchat.config import Config
from skillchat.core.learning import replace_rating
from skillchat.core.ports import Message
from skillchat.events import TurnFinished
from skillchat.providers.detect import Environment
from skillchat.service import ChatService
from skillchat.store import TraceStore, locking

pytestmark = pytest.mark.reliability

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_concurrency.py"
NOTHING_FOUND = Environment(frozenset(), None, None)


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_concurrency", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_concurrency", mod)
    spec.loader.exec_module(mod)
    return mod


def test_chat_processes_and_rate_and_spend_loops_on_one_database_lose_nothing(bench, skillchat_home):
    """Two ChatService processes sending and rating turns as fast as they can, a `skillchat rate`
    loop and a `skillchat spend` loop, all on one file (the run that lost 78 messages in 45 s)."""
    r = bench.run(skillchat_home, seconds=3.0, writers=2, raters=1, spenders=1, seed=7)
    assert r["tracebacks"] == 0 and r["errors"] == 0, r["examples"]
    assert r["messages_lost"] == 0 and r["messages_duplicated"] == 0, r["examples"]
    assert r["turns_running"] == 0
    assert r["turns_sent"] >= 20 and r["answered"] == r["turns_sent"] == r["turns_in_db"]
    assert r["cli_calls"] >= 10 and r["ratings_by_writers"] > 0


# --- the mechanism: BEGIN IMMEDIATE, retried -------------------------------------------------------
def _holder(path: Path, hold_s: float, held: threading.Event, *, commit_a_write: bool = True) -> threading.Thread:
    """Another 'process': takes the write lock, writes, holds it for hold_s, commits."""

    def run() -> None:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=5)
        conn.execute("BEGIN IMMEDIATE")
        if commit_a_write:
            conn.execute("INSERT INTO handbook_events (at, kind, handbook, detail_json) VALUES ('x', 'other', 'x', '{}')")
        held.set()
        time.sleep(hold_s)
        conn.execute("COMMIT")
        conn.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_every_write_takes_the_lock_up_front(tmp_path, tiny_path):
    """A deferred BEGIN that reads first cannot wait for another writer (SQLite fails it at once):
    every transaction that writes is BEGIN IMMEDIATE; a plain BEGIN only ever holds reads (one
    snapshot for the rating catch-up)."""
    svc = ChatService.create(Config(handbook=str(tiny_path)), demo=True, store=TraceStore.open(tmp_path / "t.db"),
                             environment=NOTHING_FOUND, chunk_delay_s=0.0, rng=random.Random(0))
    statements: list[str] = []
    svc.store.db.conn.set_trace_callback(lambda sql: statements.append(" ".join(sql.split()).upper()))

    async def turn():
        return [ev async for ev in svc.run_turn(None, "why does my python raise KeyError?")]

    events = asyncio.run(turn())
    svc.rate(events[-1].turn_id, "up")
    svc.rate(events[-1].turn_id, "down")
    svc.store.mark_interrupted()
    svc.store.add_handbook_event("switch", "tiny", 1)
    svc.close()
    transactions, current = [], None
    for sql in statements:
        if sql.startswith(("BEGIN", "SAVEPOINT")):
            assert current is None, f"nested or implicit transaction: {sql}"
            current = [sql]
        elif sql.startswith(("COMMIT", "ROLLBACK")):
            transactions.append(current)
            current = None
        elif current is not None:
            current.append(sql)
        else:
            assert not sql.startswith(("INSERT", "UPDATE", "DELETE")), f"a write outside a transaction: {sql}"
    writes = [t for t in transactions if any(s.startswith(("INSERT", "UPDATE", "DELETE")) for s in t)]
    assert len(writes) >= 6 and all(t[0] == "BEGIN IMMEDIATE" for t in writes), [t[0] for t in writes]
    assert all(t[0] in ("BEGIN IMMEDIATE", "BEGIN") for t in transactions)


def test_a_write_waits_for_another_process_that_commits_meanwhile(tmp_path):
    """The old failure: read, then write after another process committed = 'database is locked'."""
    store = TraceStore.open(tmp_path / "t.db")
    cid = store.new_conversation()
    held = threading.Event()
    other = _holder(store.path, 0.3, held)
    held.wait(5)
    mid = store.add_message(cid, "user", "still here")  # reads (the conversation), then writes
    other.join()
    assert [m.content for m in store.history(cid)] == ["still here"] and mid > 0


def test_a_busy_begin_is_retried_past_the_busy_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(locking, "BUSY_TIMEOUT_S", 0.05)  # SQLite gives up after 50 ms; the store does not
    store = TraceStore.open(tmp_path / "t.db")
    cid = store.new_conversation()
    held = threading.Event()
    other = _holder(store.path, 0.6, held)
    held.wait(5)
    t0 = time.monotonic()
    store.add_message(cid, "user", "waited")
    assert time.monotonic() - t0 >= 0.4
    other.join()
    assert store.transcript(cid)[0].content == "waited"


@pytest.fixture
def impatient(monkeypatch):
    monkeypatch.setattr(locking, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(locking, "PATIENCE_S", 0.4)


def _hold_exclusively(path: Path) -> sqlite3.Connection:
    """A connection that keeps every other one out, readers included, until it is closed."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("INSERT INTO handbook_events (at, kind, handbook, detail_json) VALUES ('x', 'lock', 'x', '{}')")
    return conn


def _answered_turn(store: TraceStore) -> int:
    cid = store.new_conversation()
    mid = store.add_message(cid, "user", "hello")
    tid = store.start_turn(cid, mid, None, demo=False)
    store.finish_turn(tid, "answered", attempts=[], agent_id="mid", text="hi")
    return tid


def test_rate_says_in_one_line_when_the_database_stays_locked(impatient, capsys):
    store = TraceStore.open()
    tid = _answered_turn(store)
    store.close()
    held = threading.Event()
    other = _holder(paths.database_file(), 1.5, held, commit_a_write=False)
    held.wait(5)
    assert main(["rate", str(tid), "up"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "locked by another skillchat process" in err and "Traceback" not in err
    other.join()
    assert main(["rate", str(tid), "up"]) == 0  # and once it is free, it works


def test_spend_says_in_one_line_when_the_database_stays_locked(impatient, capsys):
    TraceStore.open().close()
    lock = _hold_exclusively(paths.database_file())
    try:
        assert main(["spend"]) == 2
    finally:
        lock.close()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "locked" in err and "Traceback" not in err
    assert main(["spend"]) == 0


async def test_a_message_the_database_will_not_take_is_reported_not_dropped_silently(impatient, tiny_path, tmp_path):
    svc = ChatService.create(Config(handbook=str(tiny_path)), demo=True, store=TraceStore.open(tmp_path / "t.db"),
                             environment=NOTHING_FOUND, chunk_delay_s=0.0)
    held = threading.Event()
    other = _holder(tmp_path / "t.db", 1.5, held, commit_a_write=False)
    held.wait(5)
    events = [ev async for ev in svc.run_turn(None, "keep me")]
    other.join()
    assert len(events) == 1 and events[0].kind == "unsaved"
    assert "your message was not saved" in events[0].error and "locked" in events[0].error
    events = [ev async for ev in svc.run_turn(None, "keep me")]  # free again: it goes through
    assert isinstance(events[-1], TurnFinished)


# --- ratings from two processes converge to the database ---------------------------------------------
def _cells(hb) -> dict:
    return {(a, s): (round(x, 9), round(y, 9)) for a, s, x, y in hb.evidence.cells() if abs(x) > 1e-12 or abs(y) > 1e-12}


def _service(path: Path, tiny_path: Path, seed: int = 0) -> ChatService:
    return ChatService.create(Config(handbook=str(tiny_path)), demo=True, store=TraceStore.open(path),
                              environment=NOTHING_FOUND, chunk_delay_s=0.0, rng=random.Random(seed))


async def test_two_apps_flipping_one_turns_rating_keep_evidence_equal_to_a_recount(tmp_path, tiny_path):
    db = tmp_path / "t.db"
    a, b = _service(db, tiny_path, 1), _service(db, tiny_path, 2)  # both open before any rating
    turns = []
    for text in ("why does my python raise KeyError?", "what is 17 * 23?"):
        events = [ev async for ev in a.run_turn(None, text)]
        turns.append(events[-1].turn_id)
    cli = TraceStore.open(db)  # `skillchat rate` in between, as a third writer
    for i in range(6):
        for svc, value in ((a, "up"), (b, "down")):
            svc.rate(turns[0], value)
            truth = _service(db, tiny_path)  # what a fresh start recounts from the log
            assert _cells(svc.handbook) == _cells(truth.handbook), f"flip {i}"
            assert all(x >= 0 and y >= 0 for _, _, x, y in svc.handbook.evidence.cells())
            assert not svc.handbook.evidence.clamped
            truth.close()
        cli.rate(turns[1], float(i % 2))
    b.rate(turns[0], None)  # cleared
    a.sync_ratings()
    truth = _service(db, tiny_path)
    assert _cells(a.handbook) == _cells(b.handbook) == _cells(truth.handbook)
    # and routing with it works (it raised "math domain error" once evidence went negative)
    decision = a.router.route([Message("user", "why does my python raise KeyError?")], rng=random.Random(0))
    assert decision.chosen in a.handbook.agents
    for s in (a, b, truth):
        s.close()
    cli.close()


async def test_a_turn_gets_the_ratings_other_processes_gave_before_it_routes(tmp_path, tiny_path):
    db = tmp_path / "t.db"
    a, b = _service(db, tiny_path, 1), _service(db, tiny_path, 2)
    events = [ev async for ev in a.run_turn(None, "why does my python raise KeyError?")]
    a.rate(events[-1].turn_id, "up")
    before = _cells(b.handbook)
    [ev async for ev in b.run_turn(None, "hello")]
    assert _cells(b.handbook) != before and _cells(b.handbook) == _cells(a.handbook)
    assert b._through == b.store.last_rating_id()  # the next catch-up starts after it: nothing to rescan
    a.close()
    b.close()


def test_evidence_never_goes_below_zero(tiny):
    """Taking back a rating the handbook never had stops at zero, with the reason kept; routing works."""
    replace_rating(tiny, "mid", {"code.debugging": 1.0}, 1.0, 0.0)
    s, f = tiny.evidence.skill("mid", "code.debugging")
    assert s == 0.0 and f == 1.0
    assert tiny.evidence.mode("mid", "code") == (0.0, 1.0) and tiny.evidence.agent("mid") == (0.0, 1.0)
    assert len(tiny.evidence.clamped) == 1 and "below zero" in tiny.evidence.clamped[0]
    for _ in range(5):
        replace_rating(tiny, "mid", {"code.debugging": 1.0}, 1.0, 0.0)
    from skillchat.core import Router

    Router(tiny).route([Message("user", "why does my python raise KeyError?")], rng=random.Random(0))
    assert all(x >= 0 and y >= 0 for _, _, x, y in tiny.evidence.cells())
    replace_rating(tiny, "not-an-agent", {"code.debugging": 1.0}, 1.0, 0.0)  # nothing to take back from
    assert all(a != "not-an-agent" for a, *_ in tiny.evidence.cells())
