"""A connection for quick read-only commands that skips sqlite-utils when the schema is current.

`skillchat spend` must answer in well under 200 ms; importing sqlite-utils alone takes 50-100 ms.
When every migration has already run, a plain sqlite3 connection is all a reader needs; otherwise
(a new or older database) the full store opens it and migrates.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from skillchat import paths
from skillchat.errors import StoreError
from skillchat.store import locking

# Must equal migrations.names() (tests/store/test_migrations.py checks it).
MIGRATIONS = ("m001_initial", "m002_indexes", "m003_spend_rollups", "m004_turn_progress",
              "m005_budget_reservations", "m006_comparisons")


def open_for_reading(path: Path | str | None = None) -> Any:
    """A sqlite3.Connection, or a migrated sqlite_utils Database; both have .execute(sql, params).

    Reads on it should go through locking.retry_read: rare in WAL mode, but a read can be told
    the database is busy, and that is retried rather than shown as a traceback.
    """
    path = Path(path) if path is not None else paths.database_file()
    if path.exists():
        try:
            conn = sqlite3.connect(str(path), timeout=locking.BUSY_TIMEOUT_S)

            def applied() -> set[str]:
                try:
                    return {r[0] for r in conn.execute(
                        "SELECT name FROM _sqlite_migrations WHERE migration_set = 'skillchat'")}
                except sqlite3.OperationalError as e:
                    if locking.is_busy(e):
                        raise
                    return set()  # no migrations table: a new or foreign file

            done = locking.retry_read(applied, what=f"the trace database {path}")
            if set(MIGRATIONS) <= done:
                return conn
            conn.close()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{path}: cannot open the trace database ({e})") from None
    from skillchat.store.database import connect

    return connect(path)
