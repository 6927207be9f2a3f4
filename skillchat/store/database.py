"""Opening the trace database: WAL, a busy timeout, and pending migrations applied on the way in.

Writes go through locking.transaction (BEGIN IMMEDIATE, retried while busy): see locking.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from skillchat import paths
from skillchat.errors import StoreError
from skillchat.store import locking
from skillchat.store.locking import retry_read, transaction
from skillchat.store.migrations import migrations


def connect(path: Path | str | None = None, *, migrate: bool = True) -> Database:
    path = Path(path) if path is not None else paths.database_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: the service is created on one thread and used from the event
        # loop's; TraceStore serialises writes with its own lock.
        conn = sqlite3.connect(str(path), timeout=locking.BUSY_TIMEOUT_S, check_same_thread=False)
        db = Database(conn, execute_plugins=False)
        db.execute(f"PRAGMA busy_timeout = {int(locking.BUSY_TIMEOUT_S * 1000)}")
        db.enable_wal()
        # In WAL mode NORMAL loses at most the last commits on power loss, never consistency,
        # and keeps logging a turn well under a millisecond.
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        if migrate:
            _migrate(db)
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path}: cannot open the trace database ({e})") from None
    except OSError as e:
        raise StoreError(f"{path}: cannot create the trace database ({e})") from None
    return db


def named_rows(db: Database, sql: str, params: Any = ()) -> list[sqlite3.Row]:
    """The rows of a query, read by column name (row["rating_id"]) rather than by position."""
    cur = db.conn.cursor()
    cur.row_factory = sqlite3.Row
    return cur.execute(sql, params).fetchall()


def _migrate(db: Database) -> None:
    if not retry_read(lambda: migrations.pending(db)):
        return

    def apply() -> None:
        # Under the write lock: another skillchat process may have migrated the file meanwhile.
        if migrations.pending(db):
            migrations.apply(db)  # each migration's own transaction nests as a savepoint

    transaction(db.conn, apply)
