"""The trace store: conversations, messages, turns, ratings and handbook events in one SQLite file.

The log is the source of truth for learning: every turn keeps the routing decision it was made
with (skills and weights, every agent's probability), so ratings can be credited exactly and
relearn and off-policy evaluation can replay history. Writes that belong together happen in one
transaction. No API key ever reaches this module: it is only given model names and env var names.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

from skillchat import paths
from skillchat.attempts import Attempt
from skillchat.core.decision import RoutingDecision
from skillchat.core.learning import RatedTurn
from skillchat.core.ports import Message
from skillchat.core.relearn import TurnCost
from skillchat.errors import StoreError
from skillchat.store import clock, learning, processes, spend
from skillchat.store.database import connect, named_rows, retry_read, transaction
from skillchat.store.learning import CatchUp
from skillchat.store.spend import SpendReport

T = TypeVar("T")
RATABLE = ("answered", "cancelled")
# A running turn says it is alive (heartbeat_at) every few seconds while it streams. It is closed as
# interrupted on the next start when the process that owns it is gone; when that process cannot be
# checked (another host) after HEARTBEAT_STALE without a heartbeat; and in any case after
# STALE_AFTER without one (a hung or long-suspended process: if it ever finishes, its answer
# replaces what was saved). Turns from before owners were recorded go by their start time.
STALE_AFTER = timedelta(minutes=10)
HEARTBEAT_STALE = timedelta(minutes=2)
INTERRUPTED = "interrupted: skillchat stopped during the call"
# Each turn adds ~10-20 pages to the write-ahead log; checkpointing every 50 turns keeps it to a
# few megabytes, and journal_size_limit trims the file back after a checkpoint.
CHECKPOINT_EVERY_TURNS = 50
WAL_SIZE_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    id: int
    title: str
    created_at: str
    updated_at: str
    turns: int
    demo: bool


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    message_id: int
    role: str
    content: str
    created_at: str
    turn_id: int | None = None
    agent_id: str | None = None
    partial: bool = False  # an answer cut short by cancellation
    status: str | None = None  # the turn's status, on user and assistant messages alike
    rating: float | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class TurnRecord:
    id: int
    conversation_id: int
    status: str
    started_at: str
    handbook: str | None
    handbook_version: int | None
    mode: str | None
    skills: dict[str, float]
    policy: str | None
    chosen_agent: str | None
    probability: float | None
    agent_id: str | None
    model: str | None
    decision: RoutingDecision | None
    est_cost_usd: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    latency_s: float | None
    ttft_s: float | None
    attempts: tuple[Attempt, ...]
    error: str | None
    demo: bool
    user_text: str
    answer_text: str | None
    rating: float | None


def _inserted_id(cur: sqlite3.Cursor) -> int:
    """The id of the row an INSERT just wrote (sqlite3 types it as optional: None only before any insert)."""
    if cur.lastrowid is None:
        raise StoreError("the database reported no id for a row it just wrote")
    return cur.lastrowid


def _locked(method: Callable[..., T]) -> Callable[..., T]:
    """Reads take the store's lock too: the UI reads from worker threads while the event loop
    writes, and a read must not land inside another thread's open transaction. A read that
    SQLite answers with "busy" is retried (outside a transaction: inside one we hold the lock)."""

    @functools.wraps(method)
    def wrapper(self: TraceStore, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            if self.db.conn.in_transaction:
                return method(self, *args, **kwargs)
            return retry_read(lambda: method(self, *args, **kwargs), what=self._what)

    return wrapper


class TraceStore:
    def __init__(self, db: Database, path: Path | None = None) -> None:
        self.db = db
        self.path = path
        self._lock = threading.RLock()
        self._turns_since_checkpoint = 0
        self._checkpointer: threading.Thread | None = None
        if path is not None:
            # SQLite's automatic checkpoint runs inside whichever commit crosses the threshold and
            # fsyncs the database file: a 5-20 ms stall in the middle of a turn. We checkpoint in a
            # background thread instead (see _after_turn); readers and writers carry on meanwhile.
            db.execute("PRAGMA wal_autocheckpoint = 0")
            db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")

    @classmethod
    def open(cls, path: Path | str | None = None) -> TraceStore:
        path = Path(path) if path is not None else paths.database_file()
        return cls(connect(path), path)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=5)
        self.db.close()  # the last connection to close checkpoints what is left

    def _after_turn(self) -> None:
        self._turns_since_checkpoint += 1
        if self.path is None or self._turns_since_checkpoint < CHECKPOINT_EVERY_TURNS:
            return
        if self._checkpointer is not None and self._checkpointer.is_alive():
            return
        self._turns_since_checkpoint = 0
        self._checkpointer = threading.Thread(target=_checkpoint, args=(self.path,), daemon=True,
                                              name="skillchat-wal-checkpoint")
        self._checkpointer.start()

    @property
    def _what(self) -> str:
        return f"the trace database {self.path}" if self.path is not None else "the trace database"

    def _transact(self, fn: Callable[[], T], **kwargs: Any) -> T:
        """One write transaction (BEGIN IMMEDIATE, retried while busy) under the store's lock."""
        with self._lock:
            return transaction(self.db.conn, fn, what=self._what, **kwargs)

    # --- conversations and messages ---------------------------------------------------------
    def new_conversation(self, title: str = "", demo: bool = False) -> int:
        now = clock.now_iso()

        def write() -> int:
            cur = self.db.execute(
                "INSERT INTO conversations (title, created_at, updated_at, demo) VALUES (?, ?, ?, ?)",
                [title, now, now, int(demo)],
            )
            return _inserted_id(cur)

        return self._transact(write)

    @_locked
    def conversation_exists(self, conversation_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM conversations WHERE id = ?", [conversation_id]).fetchone() is not None

    _CONVERSATION = """SELECT c.id, c.title, c.created_at, c.updated_at,
                             (SELECT count(*) FROM turns t WHERE t.conversation_id = c.id), c.demo
                      FROM conversations c"""

    @_locked
    def conversations(self, limit: int = 200) -> list[ConversationInfo]:
        """Most recently active first."""
        rows = self.db.execute(self._CONVERSATION + " ORDER BY c.updated_at DESC, c.id DESC LIMIT ?", [limit]).fetchall()
        return [ConversationInfo(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    @_locked
    def conversation(self, conversation_id: int) -> ConversationInfo | None:
        r = self.db.execute(self._CONVERSATION + " WHERE c.id = ?", [conversation_id]).fetchone()
        return ConversationInfo(r[0], r[1], r[2], r[3], r[4], bool(r[5])) if r else None

    def add_message(self, conversation_id: int, role: str, content: str) -> int:
        """A message on its own (the user's, before any provider is called), committed at once."""
        now = clock.now_iso()

        def write() -> int:
            if not self.conversation_exists(conversation_id):
                raise StoreError(f"no conversation {conversation_id}")
            cur = self.db.execute(
                "INSERT INTO messages (conversation_id, role, content, created_at) VALUES (?, ?, ?, ?)",
                [conversation_id, role, content, now],
            )
            title = _title(content) if role == "user" else ""
            self.db.execute(
                "UPDATE conversations SET updated_at = ?, title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ?",
                [now, title, conversation_id],
            )
            return _inserted_id(cur)

        return self._transact(write)

    @_locked
    def history(self, conversation_id: int) -> list[Message]:
        """The conversation as context for the next call: user messages and complete answers."""
        # Of a comparison's two answers, only the one the conversation goes on from (store/comparisons.py).
        rows = self.db.execute(
            """SELECT role, content FROM messages WHERE conversation_id = ? AND partial = 0
                 AND (turn_id IS NULL OR turn_id NOT IN (
                     SELECT CASE WHEN outcome = 'right' THEN left_turn ELSE right_turn END
                     FROM comparisons WHERE conversation_id = ?))
               ORDER BY id""",
            [conversation_id, conversation_id],
        ).fetchall()
        return [Message(r[0], r[1]) for r in rows]

    _TRANSCRIPT = """SELECT m.id, m.role, m.content, m.created_at, coalesce(m.turn_id, tu.id), m.agent_id, m.partial,
                            coalesce(ta.status, tu.status), r.value, ta.cost_usd
                     FROM messages m
                     LEFT JOIN turns ta ON ta.id = m.turn_id
                     LEFT JOIN turns tu ON tu.user_message_id = m.id
                     LEFT JOIN ratings r ON r.turn_id = m.turn_id AND r.replaced_by IS NULL"""

    @_locked
    def transcript(self, conversation_id: int) -> list[TranscriptEntry]:
        rows = self.db.execute(self._TRANSCRIPT + " WHERE m.conversation_id = ? ORDER BY m.id",
                               [conversation_id]).fetchall()
        return [
            TranscriptEntry(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9]) for r in rows
        ]

    @_locked
    def transcript_page(self, conversation_id: int, turns: int,
                        before_turn: int | None = None) -> tuple[list[TranscriptEntry], bool]:
        """The last `turns` exchanges (each user message and what follows it) before turn
        `before_turn`'s user message, or at the end; and whether there are earlier ones."""
        end = None
        if before_turn is not None:
            row = self.db.execute("SELECT user_message_id FROM turns WHERE id = ? AND conversation_id = ?",
                                  [before_turn, conversation_id]).fetchone()
            end = row[0] if row is not None else None
        end = end if end is not None else 2**62
        row = self.db.execute(
            "SELECT id FROM messages WHERE conversation_id = ? AND role = 'user' AND id < ? "
            "ORDER BY id DESC LIMIT 1 OFFSET ?", [conversation_id, end, max(turns - 1, 0)],
        ).fetchone()
        start = row[0] if row is not None else 0
        rows = self.db.execute(
            self._TRANSCRIPT + " WHERE m.conversation_id = ? AND m.id >= ? AND m.id < ? ORDER BY m.id",
            [conversation_id, start, end],
        ).fetchall()
        more = start > 0 and self.db.execute("SELECT 1 FROM messages WHERE conversation_id = ? AND id < ? LIMIT 1",
                                             [conversation_id, start]).fetchone() is not None
        return [TranscriptEntry(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9]) for r in rows], more

    # --- turns ------------------------------------------------------------------------------
    def start_turn(
        self,
        conversation_id: int,
        user_message_id: int,
        decision: RoutingDecision | None,
        *,
        demo: bool,
        status: str = "running",
        error: str | None = None,
        started: datetime | None = None,
    ) -> int:
        """Log the routing decision before any call; `status="refused"` logs a turn that never ran.

        A running turn is owned by this process (see process_owner) from its start.
        """
        started = started or datetime.now(UTC)
        d = decision
        running = status == "running"

        def write() -> int:
            cur = self.db.execute(
                """INSERT INTO turns (conversation_id, user_message_id, started_at, day, status, handbook,
                       handbook_version, mode, skills_json, policy, lam, chosen_agent, probability,
                       decision_json, est_cost_usd, est_prompt_tokens, error, demo, finished_at, owner,
                       heartbeat_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    conversation_id, user_message_id, clock.now_iso(started), clock.local_day(started), status,
                    d and d.handbook, d and d.handbook_version, d and d.mode,
                    json.dumps(d.skill_weights() if d else {}), d and d.policy, d and d.lam, d and d.chosen,
                    d and d.probability, json.dumps(d.to_dict()) if d else None, d and d.estimated_cost,
                    d and d.prompt_tokens, error, int(demo), None if running else clock.now_iso(),
                    process_owner() if running else None, clock.now_iso(started) if running else None,
                ],
            )
            return _inserted_id(cur)

        return self._transact(write)

    def save_progress(self, turn_id: int, progress: Mapping[str, Any] | None = None, *, busy_ms: int = 250) -> bool:
        """A running turn's heartbeat, with what it has streamed so far (`progress`: text, agent_id,
        model, tokens, cost_usd, attempts...). Cheap, and never worth waiting for: when another
        process holds the lock beyond `busy_ms` it is skipped (returns False) and the next one
        catches up. Nothing happens to a turn that is no longer running."""
        now = clock.now_iso()

        def write() -> None:
            if progress is None:
                self.db.execute("UPDATE turns SET heartbeat_at = ? WHERE id = ? AND status = 'running'", [now, turn_id])
            else:
                self.db.execute(
                    "UPDATE turns SET heartbeat_at = ?, progress_json = ? WHERE id = ? AND status = 'running'",
                    [now, json.dumps(dict(progress)), turn_id],
                )

        try:
            self._transact(write, patience_s=busy_ms / 1000.0, busy_ms=busy_ms)
        except StoreError:
            return False
        return True

    def finish_turn(
        self,
        turn_id: int,
        status: str,
        *,
        attempts: Sequence[Attempt],
        agent_id: str | None = None,
        model: str | None = None,
        text: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        cost_usd: float | None = None,
        cost_known: bool | None = None,
        latency_s: float | None = None,
        ttft_s: float | None = None,
        error: str | None = None,
        budget_warning: str | None = None,
    ) -> int | None:
        """The outcome and the answer, in one transaction; returns the answer's message id.

        A turn already closed as interrupted (its process looked dead) gets the real outcome: the
        answer saved then is replaced, not duplicated.
        """
        now = clock.now_iso()
        fallback = json.dumps([a.to_dict() for a in attempts])

        def write() -> int | None:
            row = self.db.execute("SELECT conversation_id, assistant_message_id FROM turns WHERE id = ?",
                                  [turn_id]).fetchone()
            if row is None:
                raise StoreError(f"no turn {turn_id}")
            message_id = None
            if text and row[1] is not None:
                self.db.execute("UPDATE messages SET content = ?, agent_id = ?, partial = ? WHERE id = ?",
                                [text, agent_id, int(status != "answered"), row[1]])
                message_id = int(row[1])
            elif text:
                cur = self.db.execute(
                    """INSERT INTO messages (conversation_id, role, content, created_at, turn_id, agent_id, partial)
                       VALUES (?, 'assistant', ?, ?, ?, ?, ?)""",
                    [row[0], text, now, turn_id, agent_id, int(status != "answered")],
                )
                message_id = _inserted_id(cur)
            elif row[1] is not None:
                message_id = int(row[1])  # keep what was saved rather than lose it
            self.db.execute(
                """UPDATE turns SET status = ?, finished_at = ?, assistant_message_id = ?, agent_id = ?, model = ?,
                       prompt_tokens = ?, completion_tokens = ?, cost_usd = ?, cost_known = ?, latency_s = ?,
                       ttft_s = ?, fallback_json = ?, error = ?, budget_warning = ?, progress_json = NULL
                   WHERE id = ?""",
                [
                    status, now, message_id, agent_id, model, prompt_tokens, completion_tokens, cost_usd,
                    None if cost_known is None else int(cost_known), latency_s, ttft_s,
                    fallback, error, budget_warning, turn_id,
                ],
            )
            self.db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", [now, row[0]])
            return message_id

        message_id = self._transact(write)
        self._after_turn()
        return message_id

    @_locked
    def turn(self, turn_id: int) -> TurnRecord | None:
        rows = named_rows(
            self.db,
            """SELECT t.id, t.conversation_id, t.status, t.started_at, t.handbook, t.handbook_version, t.mode,
                      t.skills_json, t.policy, t.chosen_agent, t.probability, t.agent_id, t.model, t.decision_json,
                      t.est_cost_usd, t.prompt_tokens, t.completion_tokens, t.cost_usd, t.latency_s, t.ttft_s,
                      t.fallback_json, t.error, t.demo, mu.content AS user_text, ma.content AS answer_text,
                      r.value AS rating
               FROM turns t
               LEFT JOIN messages mu ON mu.id = t.user_message_id
               LEFT JOIN messages ma ON ma.id = t.assistant_message_id
               LEFT JOIN ratings r ON r.turn_id = t.id AND r.replaced_by IS NULL
               WHERE t.id = ?""",
            [turn_id],
        )
        if not rows:
            return None
        r = rows[0]
        return TurnRecord(
            id=r["id"], conversation_id=r["conversation_id"], status=r["status"], started_at=r["started_at"],
            handbook=r["handbook"], handbook_version=r["handbook_version"], mode=r["mode"],
            skills=json.loads(r["skills_json"] or "{}"), policy=r["policy"], chosen_agent=r["chosen_agent"],
            probability=r["probability"], agent_id=r["agent_id"], model=r["model"],
            decision=RoutingDecision.from_dict(json.loads(r["decision_json"])) if r["decision_json"] else None,
            est_cost_usd=r["est_cost_usd"], prompt_tokens=r["prompt_tokens"], completion_tokens=r["completion_tokens"],
            cost_usd=r["cost_usd"], latency_s=r["latency_s"], ttft_s=r["ttft_s"],
            attempts=tuple(Attempt.from_dict(a) for a in json.loads(r["fallback_json"] or "[]")), error=r["error"],
            demo=bool(r["demo"]), user_text=r["user_text"] or "", answer_text=r["answer_text"], rating=r["rating"],
        )

    @_locked
    def turns_of(self, conversation_id: int) -> list[TurnRecord]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM turns WHERE conversation_id = ? ORDER BY id",
                                             [conversation_id]).fetchall()]
        return [t for t in (self.turn(i) for i in ids) if t is not None]

    def mark_interrupted(self) -> int:
        """Close turns left 'running' by a process that died mid-call: they will never finish.

        Each keeps what its process last saved (the partial answer, its agent, tokens and
        estimated cost, the attempts), so it counts in spend and budgets and can be rated when it
        has text. A turn whose process is alive and still beating is left alone. Returns how many
        were closed.
        """
        now = datetime.now(UTC)

        def write() -> int:
            rows = self.db.execute(
                "SELECT id, conversation_id, started_at, owner, heartbeat_at, progress_json, assistant_message_id "
                "FROM turns WHERE status = 'running'"
            ).fetchall()
            closed = 0
            for tid, cid, started_at, owner, heartbeat_at, progress_json, answer_id in rows:
                why = _orphaned(owner, clock.parse_iso(heartbeat_at or started_at), now)
                if why is None:
                    continue
                p = _progress(progress_json)
                text = p.get("text") or None
                if text and answer_id is None:
                    answer_id = _inserted_id(self.db.execute(
                        """INSERT INTO messages (conversation_id, role, content, created_at, turn_id, agent_id, partial)
                           VALUES (?, 'assistant', ?, ?, ?, ?, 1)""",
                        [cid, text, clock.now_iso(now), tid, p.get("agent_id")],
                    ))
                self.db.execute(
                    """UPDATE turns SET status = 'cancelled', finished_at = ?, error = ?, assistant_message_id = ?,
                           agent_id = ?, model = ?, prompt_tokens = ?, completion_tokens = ?, cost_usd = ?,
                           cost_known = ?, latency_s = ?, ttft_s = ?, fallback_json = ?, progress_json = NULL
                       WHERE id = ?""",
                    [
                        clock.now_iso(now), f"{INTERRUPTED} ({why})", answer_id,
                        p.get("agent_id") if text else None, p.get("model") if text else None,
                        p.get("prompt_tokens"), p.get("completion_tokens"), p.get("cost_usd"),
                        0 if p.get("cost_usd") is not None else None, p.get("latency_s"), p.get("ttft_s"),
                        json.dumps(p.get("attempts") or []), tid,
                    ],
                )
                self.db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", [clock.now_iso(now), cid])
                closed += 1
            return closed

        return self._transact(write)

    # --- ratings ----------------------------------------------------------------------------
    def rate(self, turn_id: int, value: float | None, source: str = "user") -> tuple[float | None, int]:
        """Store a rating (None clears it), replacing the turn's previous one.

        Returns (previous value, new rating id). Ids only grow: the old row stays, marked as
        replaced, so a handbook's `evidence_through` watermark keeps meaning the same ratings.
        """
        return self._transact(lambda: self._rate(turn_id, value, source))

    def rate_and_catch_up(
        self, turn_id: int, value: float | None, source: str, handbook_name: str, through: int | None,
        *, include_demo: bool = False,
    ) -> tuple[float | None, int, list[CatchUp]]:
        """rate(), plus in the same transaction every rating after `through` on turns of this
        handbook (this one included): what an in-memory handbook that holds the ratings up to
        `through` must apply to hold the database's truth. Another process's ratings in between
        are in the list, so nothing is subtracted that was never added."""

        def write() -> tuple[float | None, int, list[CatchUp]]:
            old, new_id = self._rate(turn_id, value, source)
            return old, new_id, self.catch_up(handbook_name, through, include_demo=include_demo)

        return self._transact(write)

    def _rate(self, turn_id: int, value: float | None, source: str) -> tuple[float | None, int]:
        t = self.db.execute("SELECT status, assistant_message_id FROM turns WHERE id = ?", [turn_id]).fetchone()
        if t is None:
            raise StoreError(f"no turn {turn_id}")
        if t[0] not in RATABLE or t[1] is None:
            raise StoreError(f"turn {turn_id} has no answer to rate (it {_status_phrase(t[0])})")
        old = self.db.execute(
            "SELECT id, value FROM ratings WHERE turn_id = ? AND replaced_by IS NULL ORDER BY id DESC LIMIT 1",
            [turn_id],
        ).fetchone()
        cur = self.db.execute(
            "INSERT INTO ratings (turn_id, value, rated_at, source) VALUES (?, ?, ?, ?)",
            [turn_id, value, clock.now_iso(), source],
        )
        new_id = _inserted_id(cur)
        if old is not None:
            self.db.execute("UPDATE ratings SET replaced_by = ? WHERE id = ?", [new_id, old[0]])
        return (old[1] if old is not None else None), new_id

    @_locked
    def last_rating_id(self) -> int:
        return int(self.db.execute("SELECT coalesce(max(id), 0) FROM ratings").fetchone()[0])

    def ratings_since(self, handbook_name: str, through: int | None, *,
                      include_demo: bool = False) -> tuple[list[CatchUp], int]:
        """catch_up(), and the last rating id of all, read from one snapshot: a handbook that applies
        the list holds every rating up to that id (ratings on other handbooks' turns say nothing
        to it), so its next catch-up can start there."""

        def read() -> tuple[list[CatchUp], int]:
            return self.catch_up(handbook_name, through, include_demo=include_demo), self.last_rating_id()

        with self._lock:
            if self.db.conn.in_transaction:
                return read()

            def snapshot() -> tuple[list[CatchUp], int]:
                self.db.conn.execute("BEGIN")  # deferred and read-only: both reads see one state
                try:
                    return read()
                finally:
                    self.db.conn.execute("COMMIT")

            return retry_read(snapshot, what=self._what)

    @_locked
    def catch_up(self, handbook_name: str, through: int | None, *, include_demo: bool = False) -> list[CatchUp]:
        return learning.catch_up(self.db, handbook_name, through, include_demo=include_demo)

    @_locked
    def rated_turns(self, handbook_name: str | None = None, since: datetime | str | None = None, *,
                    after_rating: int | None = None, include_demo: bool = False) -> list[RatedTurn]:
        return learning.rated_turns(self.db, handbook_name, since, after_rating=after_rating, include_demo=include_demo)

    @_locked
    def rating_counts(self, handbook_name: str | None = None) -> tuple[int, int]:
        """(real, demo): how many turns hold a rating, as rated_turns counts them; the CLI says so
        when the demo has ratings and your real turns have none."""
        where, params = ["r.replaced_by IS NULL", "r.value IS NOT NULL", "t.agent_id IS NOT NULL"], []
        if handbook_name is not None:
            where.append("t.handbook = ?")
            params.append(handbook_name)
        row = self.db.execute(
            f"""SELECT COALESCE(SUM(t.demo = 0), 0), COALESCE(SUM(t.demo != 0), 0)
                FROM ratings r JOIN turns t ON t.id = r.turn_id WHERE {' AND '.join(where)}""", params).fetchone()
        return int(row[0]), int(row[1])

    @_locked
    def turn_costs(self, handbook_name: str) -> list[TurnCost]:
        return learning.turn_costs(self.db, handbook_name)

    @_locked
    def cost_observations(self, handbook_name: str, version: int, limit: int = 5000) -> list[tuple[str, str, int, int, float]]:
        return learning.cost_observations(self.db, handbook_name, version, limit)

    # --- money ---------------------------------------------------------------------------------
    @_locked
    def spend_report(self, by: str = "model", since: Any = None, *, demo: bool = False) -> SpendReport:
        return spend.report(self.db, by, since, demo=demo)

    @_locked
    def spent_between(self, first_day: str, last_day: str | None = None) -> float:
        return spend.spent_between(self.db, first_day, last_day)

    # --- handbook events --------------------------------------------------------------------
    def add_handbook_event(self, kind: str, handbook: str, version: int | None, detail: Mapping[str, Any] | None = None) -> int:
        def write() -> int:
            cur = self.db.execute(
                "INSERT INTO handbook_events (at, kind, handbook, version, detail_json) VALUES (?, ?, ?, ?, ?)",
                [clock.now_iso(), kind, handbook, version, json.dumps(dict(detail or {}))],
            )
            return _inserted_id(cur)

        return self._transact(write)

    @_locked
    def last_handbook_event(self, kinds: Iterable[str]) -> dict[str, Any] | None:
        kinds = list(kinds)
        r = self.db.execute(
            f"""SELECT id, at, kind, handbook, version, detail_json FROM handbook_events
                WHERE kind IN ({','.join('?' * len(kinds))}) ORDER BY id DESC LIMIT 1""",
            kinds,
        ).fetchone()
        if r is None:
            return None
        return {"id": r[0], "at": r[1], "kind": r[2], "handbook": r[3], "version": r[4], "detail": json.loads(r[5])}


# --- which process owns a running turn ---------------------------------------------------------
def process_owner() -> str:
    """"host:pid:start" of this process; `start` (its start time, from /proc) tells a reused pid apart."""
    pid, start = processes.me()
    return f"{processes.HOST}:{pid}:{start or ''}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process that owns a turn is still running; None when it cannot be told (another host)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return None
    host, pid_text, start = parts
    if host != processes.HOST:
        return None
    try:
        pid = int(pid_text)
    except ValueError:
        return None
    if pid == os.getpid():
        return True
    return processes.pid_alive(pid, start or None)


def _orphaned(owner: str | None, last_sign: datetime, now: datetime) -> str | None:
    """Why a running turn should be closed, or None while its process may still finish it."""
    silent = now - last_sign
    if owner:
        alive = owner_alive(owner)
        pid = owner.rsplit(":", 2)[-2] if owner.count(":") >= 2 else owner
        if alive is False:
            return f"process {pid} ended"
        if alive is None and silent > HEARTBEAT_STALE:
            return f"no sign of life from {owner} for {int(silent.total_seconds() // 60)} min"
    if silent > STALE_AFTER:
        return f"no sign of life for {int(silent.total_seconds() // 60)} min"
    return None


def _progress(progress_json: str | None) -> dict[str, Any]:
    try:
        p = json.loads(progress_json) if progress_json else {}
    except ValueError:
        return {}
    return p if isinstance(p, dict) else {}


def _checkpoint(path: Path) -> None:
    try:
        conn = sqlite3.connect(str(path), timeout=1.0)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()
    except sqlite3.Error:  # busy or gone: the next turn's checkpoint, or the final close, catches up
        pass


def _title(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _status_phrase(status: str) -> str:
    return {"failed": "failed", "refused": "was refused before any call", "running": "is still running",
            "cancelled": "was cancelled before any text arrived"}.get(status, status)
