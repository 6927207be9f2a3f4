"""Sharing one SQLite file between processes without losing a write.

Why BEGIN IMMEDIATE: a deferred transaction that reads first and then writes holds a read
snapshot; if another process commits meanwhile, SQLite cannot upgrade it to a writer and fails
at once with "database is locked", whatever the busy timeout. BEGIN IMMEDIATE takes the write
lock up front, so the busy timeout applies; and a busy BEGIN is safe to retry, since nothing was
done yet. So every write is `transaction(conn, fn)`: BEGIN IMMEDIATE, fn(), COMMIT, the whole of
it retried while SQLite says busy, for up to PATIENCE_S; then one StoreError that says so.

No sqlite-utils here: quick readers (`skillchat spend`) use retry_read too.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from skillchat.errors import StoreError

# The app, `skillchat ask` and a relearn worker may write at once; waiting beats "database is locked".
BUSY_TIMEOUT_S = 10.0
# How long a write (or a read) keeps retrying while another process holds the lock, in all; past
# that it fails with a StoreError that says so in one line.
PATIENCE_S = 30.0
SQLITE_BUSY, SQLITE_LOCKED = 5, 6

T = TypeVar("T")


def is_busy(e: BaseException) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (any extended code): another connection holds the lock."""
    if not isinstance(e, sqlite3.OperationalError):
        return False
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
    text = str(e).lower()
    return "locked" in text or "busy" in text


def busy_error(what: str = "the trace database") -> StoreError:
    return StoreError(f"{what} stayed locked by another skillchat process for more than {PATIENCE_S:.0f} s; "
                      "nothing was changed, try again")


def transaction(conn: sqlite3.Connection, fn: Callable[[], T], *, patience_s: float | None = None,
                busy_ms: int | None = None, what: str = "the trace database") -> T:
    """fn() inside BEGIN IMMEDIATE ... COMMIT, the whole transaction retried while SQLite says busy.

    Inside an open transaction fn() simply joins it. `busy_ms` shortens SQLite's own wait for this
    transaction (a progress save that can just be skipped). Raises busy_error() when the lock is
    still held after `patience_s`; any other error rolls back and propagates.
    """
    if conn.in_transaction:
        return fn()

    def once() -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn()
            conn.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    if busy_ms is not None:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    try:
        return retry_read(once, patience_s=patience_s, what=what)
    finally:
        if busy_ms is not None:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")


def retry_read(fn: Callable[[], T], *, patience_s: float | None = None, what: str = "the trace database") -> T:
    """fn() retried while SQLite says busy, for up to `patience_s` (a read: rare in WAL mode, during
    recovery or an exclusive lock; a whole transaction, see `transaction`)."""
    deadline = time.monotonic() + (PATIENCE_S if patience_s is None else patience_s)
    pause = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if not is_busy(e):
                raise
            if time.monotonic() + pause > deadline:
                raise busy_error(what) from None
        time.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 0.25)
