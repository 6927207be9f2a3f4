"""Budget reservations: money held by model calls in flight, seen by every process on the database.

Before a call, `Reservations.reserve` reads what was spent today and this month and what other
calls hold, asks the caller how much this call may cost at most, and writes that amount, all in
one `BEGIN IMMEDIATE` transaction: two processes can never both see the same last dollars as free.
After the call the turn's real cost is written to its row (where the spend totals count it) and
`release` drops the reservation; until then the money counts twice, never zero times.

A process that dies mid-call cannot release what it holds. Once the process is gone (same machine:
its pid no longer runs, or runs a newer process) the reservation stops counting as soon as its turn
is no longer 'running' (the next start closes an interrupted turn with what it streamed and cost,
TraceStore.mark_interrupted), or `ORPHAN_GRACE` after the turn's last sign of life, whichever
comes first; and after `MAX_AGE` whatever the machine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlite_utils import Database

from skillchat.store import clock, processes
from skillchat.store.locking import retry_read, transaction

T = TypeVar("T")
# No model call runs this long; a reservation older than this is left over from a crash (on another
# machine, or on a system where a reused pid cannot be told apart).
MAX_AGE = timedelta(hours=6)
# A dead process's call may have cost money that is only written when its interrupted turn is closed:
# its hold keeps counting until then, but never longer than this after the turn's last heartbeat.
ORPHAN_GRACE = timedelta(minutes=10)


# What this process holds right now, by (database file, turn id): a row with our pid that is not in
# here was left by an earlier run of this process (a failed release) or by a dead process whose pid
# we were given.
_held_here: set[tuple[str, int]] = set()
_held_lock = threading.Lock()


def _alive(pid: int, host: str, proc_start: str | None, key: tuple[str, int]) -> bool:
    """Whether the process that took a reservation may still be running it."""
    if host != processes.HOST:
        return True  # cannot tell from here: MAX_AGE decides
    me, my_start = processes.me()
    if pid == me:
        with _held_lock:
            return proc_start == my_start and key in _held_here
    return processes.pid_alive(pid, proc_start) is not False  # unknown: MAX_AGE decides


class Reservations:
    """The budget_reservations table of one trace database (see migration m005)."""

    def __init__(self, db: Database, lock: threading.RLock | None = None) -> None:
        self.db = db
        self._lock = lock or threading.RLock()
        row = next((r for r in db.execute("PRAGMA database_list").fetchall() if r[1] == "main"), None)
        self._file = os.path.realpath(row[2]) if row and row[2] else f"memory:{id(db)}"

    @classmethod
    def of(cls, store: object) -> Reservations:
        """The reservations of a TraceStore, sharing its connection and its lock."""
        return cls(store.db, getattr(store, "_lock", None))  # type: ignore[attr-defined]

    # --- reading -----------------------------------------------------------------------------
    def _live_rows(self, exclude: tuple[int | None, ...] = ()) -> tuple[float, list[int]]:
        """(money held by live reservations, turn ids of stale ones)."""
        now = datetime.now(UTC)
        oldest, orphaned = clock.now_iso(now - MAX_AGE), clock.now_iso(now - ORPHAN_GRACE)
        held, stale = 0.0, []
        for turn_id, amount, pid, host, start, updated, status, started in self.db.execute(
            """SELECT r.turn_id, r.amount_usd, r.pid, r.host, r.proc_start, r.updated_at, t.status,
                      coalesce(t.heartbeat_at, t.started_at)
               FROM budget_reservations r LEFT JOIN turns t ON t.id = r.turn_id"""
        ).fetchall():
            if updated < oldest:
                stale.append(turn_id)
                continue
            if not _alive(pid, host, start, (self._file, turn_id)):
                if not (status == "running" and started is not None and started > orphaned):
                    stale.append(turn_id)
                    continue
            if turn_id not in exclude:
                held += max(0.0, float(amount or 0.0))
        return held, stale

    def held(self, exclude_turn: int | None = None) -> float:
        """Money held by calls in flight (stale reservations left out; nothing is written)."""
        with self._lock:
            return retry_read(lambda: self._live_rows((exclude_turn,))[0])

    def turns(self) -> dict[int, float]:
        """Every reservation row, live or not: turn id -> amount (for tests and `doctor`)."""
        with self._lock:
            return retry_read(lambda: {r[0]: r[1] for r in self.db.execute(
                "SELECT turn_id, amount_usd FROM budget_reservations")})

    # --- writing -----------------------------------------------------------------------------
    def _transaction(self, fn: Callable[[], T]) -> T:
        """fn() in one BEGIN IMMEDIATE transaction (retried while another process holds the lock),
        under the store's lock; a lock that never comes is a StoreError, and no model is called."""
        with self._lock:
            return transaction(self.db.conn, fn, what="the trace database (reserving budget)")

    def reserve(self, turn_id: int, decide: Callable[[float, float, float], tuple[float | None, T]],
                *, first_day: str, month_day: str) -> T:
        """Hold money for a call of turn `turn_id`, atomically with the check that it fits.

        `decide(today_usd, month_usd, held_usd)` gets what was spent on `first_day` (and later) and
        since `month_day`, and what other turns' calls hold; it returns (amount to hold, result).
        An amount of None holds nothing (the call is refused) and leaves any earlier hold of the
        turn as it was. Stale reservations are dropped on the way. Returns `result`.
        """
        def one(today: float, month: float, held: float) -> tuple[tuple[float, ...] | None, T]:
            amount, result = decide(today, month, held)
            return (None if amount is None else (amount,)), result

        return self.reserve_together((turn_id,), one, first_day=first_day, month_day=month_day)

    def reserve_together(self, turn_ids: tuple[int, ...],
                         decide: Callable[[float, float, float], tuple[tuple[float, ...] | None, T]],
                         *, first_day: str, month_day: str) -> T:
        """Hold money for one call of each turn, all or none, atomically with the check that they
        all fit (a side-by-side comparison: neither answer is asked for unless both can be paid).

        As `reserve`, but `decide` returns one amount per turn, or None to hold nothing.
        """
        from skillchat.store import spend

        pid, start = processes.me()

        def write() -> T:
            now = clock.now_iso()
            conn = self.db.conn
            held, stale = self._live_rows(exclude=turn_ids)
            if stale:
                conn.executemany("DELETE FROM budget_reservations WHERE turn_id = ?", [(t,) for t in stale])
            amounts, result = decide(spend.spent_between(self.db, first_day), spend.spent_between(self.db, month_day), held)
            if amounts is not None:
                with _held_lock:
                    _held_here.update((self._file, t) for t in turn_ids)
                conn.executemany(
                    """INSERT INTO budget_reservations (turn_id, amount_usd, pid, host, proc_start, created_at, updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (turn_id) DO UPDATE SET amount_usd = excluded.amount_usd, pid = excluded.pid,
                           host = excluded.host, proc_start = excluded.proc_start, updated_at = excluded.updated_at""",
                    [[t, float(a), pid, processes.HOST, start, now, now] for t, a in zip(turn_ids, amounts, strict=True)],
                )
            return result

        return self._transaction(write)

    def release(self, turn_id: int) -> None:
        """The call is settled (its real cost is on the turn's row): stop holding money for it.

        Should the delete fail (the database stayed locked), the row no longer counts anyway: it is
        not held by this process any more, so the next reservation drops it.
        """
        with _held_lock:
            _held_here.discard((self._file, turn_id))
        self._transaction(lambda: self.db.conn.execute("DELETE FROM budget_reservations WHERE turn_id = ?", [turn_id]))
