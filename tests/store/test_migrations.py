"""The schema comes from migrations: from a blank file, and from every older schema with rows in it."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlite_utils import Database

from skillchat.errors import StoreError
from skillchat.store import TraceStore, connect
from skillchat.store.migrations import migrations, names

ALL = names()


def test_there_is_more_than_one_migration_so_upgrades_are_exercised():
    assert len(ALL) >= 3 and ALL[0] == "m001_initial"


def test_blank_database_gets_every_migration_wal_and_a_busy_timeout(tmp_path):
    db = connect(tmp_path / "t.db")
    assert [m.name for m in migrations.applied(db)] == ALL
    assert {"conversations", "messages", "turns", "ratings", "handbook_events", "spend_daily",
            "spend_daily_skill"} <= set(db.table_names())
    assert db.journal_mode == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    triggers = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert {"turns_spend_insert", "turns_spend_update_old", "turns_spend_update_new", "turns_spend_delete"} <= triggers


def test_reopening_applies_nothing_twice(tmp_path):
    connect(tmp_path / "t.db").close()
    db = connect(tmp_path / "t.db")
    assert len(migrations.applied(db)) == len(ALL)


def _old_schema(path, stop_before: str) -> Database:
    db = Database(sqlite3.connect(str(path)))
    migrations.apply(db, stop_before=stop_before)
    return db


def _fill_v1(db: Database) -> None:
    """Rows as the first schema could hold them (only m001 columns)."""
    db.execute("INSERT INTO conversations (id, title, created_at, updated_at) "
               "VALUES (1, 'old', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
    db.execute("INSERT INTO messages (id, conversation_id, role, content, created_at) "
               "VALUES (1, 1, 'user', 'hello', '2026-01-01T00:00:00Z')")
    db.execute("INSERT INTO messages (id, conversation_id, role, content, created_at, turn_id, agent_id) "
               "VALUES (2, 1, 'assistant', 'hi', '2026-01-01T00:00:01Z', 1, 'mid')")
    for tid, day, status, cost, skills in (
        (1, "2026-01-01", "answered", 0.25, {"code.python": 0.75, "code.debugging": 0.25}),
        (2, "2026-01-02", "failed", 0.0, {"math.calculus": 1.0}),
        (3, "2026-01-02", "refused", None, {"math.calculus": 1.0}),
    ):
        db.execute(
            """INSERT INTO turns (id, conversation_id, user_message_id, assistant_message_id, started_at, day, status,
                   handbook, handbook_version, mode, skills_json, chosen_agent, probability, agent_id, model,
                   est_cost_usd, prompt_tokens, completion_tokens, cost_usd)
               VALUES (?, 1, ?, ?, ?, ?, ?, 'tiny', 1, 'code', ?, 'mid', 0.5, ?, ?, 0.2, 100, 50, ?)""",
            [tid, 1 if tid == 1 else None, 2 if tid == 1 else None, day + "T10:00:00Z", day, status, json.dumps(skills),
             "mid" if status == "answered" else None, "gpt-5-mini" if status == "answered" else None, cost],
        )
    db.execute("INSERT INTO ratings (turn_id, value, rated_at) VALUES (1, 1.0, '2026-01-01T00:00:02Z')")


@pytest.mark.parametrize("stop_before", ALL[1:])
def test_every_older_schema_with_rows_upgrades_and_keeps_them(tmp_path, stop_before):
    path = tmp_path / "old.db"
    old = _old_schema(path, stop_before)
    assert [m.name for m in migrations.applied(old)] == ALL[: ALL.index(stop_before)]
    _fill_v1(old)
    old.close()

    store = TraceStore.open(path)
    assert [m.name for m in migrations.applied(store.db)] == ALL
    assert store.transcript(1)[1].content == "hi"
    assert store.turn(1).rating == 1.0
    # The spend rollups were built from the existing rows: refused and running turns cost nothing.
    from skillchat.store import spend

    rep = spend.report(store.db, "day")
    assert [(r.key, r.turns, round(r.cost_usd, 6)) for r in rep.rows] == [("2026-01-01", 1, 0.25), ("2026-01-02", 1, 0.0)]
    by_skill = {r.key: r for r in spend.report(store.db, "skill").rows}
    assert by_skill["code.python"].cost_usd == pytest.approx(0.1875)
    assert by_skill["code.debugging"].cost_usd == pytest.approx(0.0625)
    assert by_skill["math.calculus"].turns == pytest.approx(1.0)  # the failed turn; the refused one is not counted
    # New rows keep working after the upgrade, and ids continue where they left off.
    _, rid = store.rate(1, 0.0)
    assert rid == 2


def test_a_file_that_is_not_a_database_is_a_store_error_naming_it(tmp_path):
    bad = tmp_path / "traces.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="traces.db"):
        connect(bad)


def test_a_failing_migration_leaves_no_half_applied_schema(tmp_path, monkeypatch):
    from skillchat.store import migrations as mig

    path = tmp_path / "t.db"
    db = _old_schema(path, "m003_spend_rollups")
    original = mig.rollup_triggers

    def broken():
        return original()[:1] + ["CREATE TRIGGER nonsense AFTER INSERT ON no_such_table BEGIN SELECT 1; END"]

    monkeypatch.setattr(mig, "rollup_triggers", broken)
    with pytest.raises(sqlite3.OperationalError):
        mig.migrations.apply(db)
    assert "spend_daily" not in db.table_names()
    assert [m.name for m in mig.migrations.applied(db)] == ALL[:2]


def test_the_quick_readers_list_of_migrations_is_the_real_one():
    from skillchat.store.reading import MIGRATIONS

    assert list(MIGRATIONS) == ALL


def test_the_quick_reader_opens_a_current_database_without_sqlite_utils_and_migrates_an_old_one(tmp_path):
    from skillchat.store.reading import open_for_reading

    path = tmp_path / "t.db"
    connect(path).close()
    assert isinstance(open_for_reading(path), sqlite3.Connection)
    old = tmp_path / "old.db"
    _old_schema(old, "m003_spend_rollups").close()
    db = open_for_reading(old)
    assert isinstance(db, Database) and "spend_daily" in db.table_names()
    new = open_for_reading(tmp_path / "new.db")
    assert "turns" in new.table_names()
