"""Schema of the trace database, as an ordered list of migrations that run on open.

Never edit a migration that has shipped: a database that already ran it would not run it again.
Add a new one instead. docs/schema.md describes the resulting schema; tests/store/test_migrations.py
builds every older schema, fills it with rows and upgrades it.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

# The set name keeps our bookkeeping apart from any other tool's in the same _sqlite_migrations table.
migrations = Migrations("skillchat")

# Statuses whose money and tokens count in spend: a running turn has no outcome yet and a refused
# one never called a model.
COUNTED = "('answered', 'failed', 'cancelled')"


def _run(db: Database, script: str) -> None:
    # Not executescript(): it commits first, which would break the migration's transaction.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@migrations()
def m001_initial(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            demo INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at TEXT NOT NULL,
            turn_id INTEGER,
            agent_id TEXT,
            partial INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            user_message_id INTEGER REFERENCES messages(id),
            assistant_message_id INTEGER REFERENCES messages(id),
            started_at TEXT NOT NULL,
            finished_at TEXT,
            day TEXT NOT NULL,
            status TEXT NOT NULL,
            handbook TEXT,
            handbook_version INTEGER,
            mode TEXT,
            skills_json TEXT NOT NULL DEFAULT '{}',
            policy TEXT,
            lam REAL,
            chosen_agent TEXT,
            probability REAL,
            agent_id TEXT,
            model TEXT,
            decision_json TEXT,
            est_cost_usd REAL,
            est_prompt_tokens INTEGER,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost_usd REAL,
            cost_known INTEGER,
            latency_s REAL,
            ttft_s REAL,
            fallback_json TEXT NOT NULL DEFAULT '[]',
            error TEXT,
            demo INTEGER NOT NULL DEFAULT 0,
            budget_warning TEXT
        );
        CREATE TABLE ratings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            turn_id INTEGER NOT NULL REFERENCES turns(id),
            value REAL,
            rated_at TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT 'user',
            replaced_by INTEGER
        );
        CREATE TABLE handbook_events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            handbook TEXT NOT NULL,
            version INTEGER,
            detail_json TEXT NOT NULL DEFAULT '{}'
        );
        """
    )


@migrations()
def m002_indexes(db: Database) -> None:
    # Transcripts, catch-up of ratings at start-up and rated_turns() all look rows up by these.
    _run(
        db,
        """
        CREATE INDEX idx_messages_conversation ON messages(conversation_id, id);
        CREATE INDEX idx_turns_conversation ON turns(conversation_id, id);
        CREATE INDEX idx_turns_handbook ON turns(handbook, handbook_version);
        CREATE INDEX idx_ratings_turn ON ratings(turn_id, id);
        CREATE INDEX idx_handbook_events_kind ON handbook_events(kind, id);
        """
    )


@migrations()
def m003_spend_rollups(db: Database) -> None:
    """Daily totals kept by triggers, so `spend` and the budget check never scan all turns."""
    _run(
        db,
        """
        CREATE TABLE spend_daily (
            day TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            model TEXT NOT NULL,
            mode TEXT NOT NULL,
            demo INTEGER NOT NULL,
            turns INTEGER NOT NULL DEFAULT 0,
            answered INTEGER NOT NULL DEFAULT 0,
            est_usd REAL NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (day, agent_id, model, mode, demo)
        ) WITHOUT ROWID;
        CREATE TABLE spend_daily_skill (
            day TEXT NOT NULL,
            skill TEXT NOT NULL,
            demo INTEGER NOT NULL,
            turns REAL NOT NULL DEFAULT 0,
            est_usd REAL NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (day, skill, demo)
        ) WITHOUT ROWID;
        """
    )
    for sql in rollup_triggers():
        db.execute(sql)
    rebuild_rollups(db)


@migrations()
def m004_turn_progress(db: Database) -> None:
    """What a running turn has streamed so far, and which process runs it.

    `owner` is "host:pid:start" of the process streaming the turn and `heartbeat_at` the last time
    it said it was alive; `progress_json` holds the text and estimated cost so far, written every
    second or so. A turn whose owner died is closed on the next start with what was saved.
    None of these columns is watched by the spend triggers, so the frequent writes stay cheap.
    """
    _run(
        db,
        """
        ALTER TABLE turns ADD COLUMN owner TEXT;
        ALTER TABLE turns ADD COLUMN heartbeat_at TEXT;
        ALTER TABLE turns ADD COLUMN progress_json TEXT;
        CREATE INDEX idx_turns_running ON turns(id) WHERE status = 'running';
        """
    )


def _add(row: str, sign: str) -> list[str]:
    """Two upserts that add (sign '+') or remove (sign '-') one turn row's share of the totals."""
    key_agent = f"coalesce({row}.agent_id, {row}.chosen_agent, '')"
    daily = f"""
        INSERT INTO spend_daily (day, agent_id, model, mode, demo, turns, answered, est_usd, cost_usd,
                                 prompt_tokens, completion_tokens)
        VALUES ({row}.day, {key_agent}, coalesce({row}.model, ''), coalesce({row}.mode, ''), {row}.demo,
                {sign}1, {sign}({row}.status = 'answered'), {sign}coalesce({row}.est_cost_usd, 0),
                {sign}coalesce({row}.cost_usd, 0), {sign}coalesce({row}.prompt_tokens, 0),
                {sign}coalesce({row}.completion_tokens, 0))
        ON CONFLICT (day, agent_id, model, mode, demo) DO UPDATE SET
            turns = turns + excluded.turns, answered = answered + excluded.answered,
            est_usd = est_usd + excluded.est_usd, cost_usd = cost_usd + excluded.cost_usd,
            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
            completion_tokens = completion_tokens + excluded.completion_tokens;"""
    # Money is attributed to skills in proportion to the skill weights stored with the turn.
    skill = f"""
        INSERT INTO spend_daily_skill (day, skill, demo, turns, est_usd, cost_usd)
        SELECT {row}.day, j.key, {row}.demo, {sign}(1.0 * j.value / s.total),
               {sign}(coalesce({row}.est_cost_usd, 0) * j.value / s.total),
               {sign}(coalesce({row}.cost_usd, 0) * j.value / s.total)
        FROM json_each({row}.skills_json) AS j,
             (SELECT 1.0 * sum(value) AS total FROM json_each({row}.skills_json) WHERE value > 0) AS s
        WHERE s.total > 0 AND j.value > 0
        ON CONFLICT (day, skill, demo) DO UPDATE SET
            turns = turns + excluded.turns, est_usd = est_usd + excluded.est_usd,
            cost_usd = cost_usd + excluded.cost_usd;"""
    return [daily, skill]


_WATCHED = ("day, status, agent_id, chosen_agent, model, mode, demo, est_cost_usd, cost_usd, "
            "prompt_tokens, completion_tokens, skills_json")


def rollup_triggers() -> list[str]:
    def trigger(name: str, event: str, when: str, body: list[str]) -> str:
        return f"CREATE TRIGGER {name} AFTER {event} ON turns WHEN {when} BEGIN {' '.join(body)} END;"

    return [
        trigger("turns_spend_insert", "INSERT", f"NEW.status IN {COUNTED}", _add("NEW", "+")),
        trigger("turns_spend_update_old", f"UPDATE OF {_WATCHED}", f"OLD.status IN {COUNTED}", _add("OLD", "-")),
        trigger("turns_spend_update_new", f"UPDATE OF {_WATCHED}", f"NEW.status IN {COUNTED}", _add("NEW", "+")),
        trigger("turns_spend_delete", "DELETE", f"OLD.status IN {COUNTED}", _add("OLD", "-")),
    ]


def rebuild_rollups(db: Database) -> None:
    """Recompute the daily totals from the turns: after a bulk import or if they are ever in doubt."""
    with db.atomic():  # readers never see the totals half rebuilt
        _rebuild(db)


def _rebuild(db: Database) -> None:
    db.execute("DELETE FROM spend_daily")
    db.execute("DELETE FROM spend_daily_skill")
    db.execute(
        f"""
        INSERT INTO spend_daily (day, agent_id, model, mode, demo, turns, answered, est_usd, cost_usd,
                                 prompt_tokens, completion_tokens)
        SELECT day, coalesce(agent_id, chosen_agent, ''), coalesce(model, ''), coalesce(mode, ''), demo,
               count(*), sum(status = 'answered'), sum(coalesce(est_cost_usd, 0)), sum(coalesce(cost_usd, 0)),
               sum(coalesce(prompt_tokens, 0)), sum(coalesce(completion_tokens, 0))
        FROM turns WHERE status IN {COUNTED}
        GROUP BY 1, 2, 3, 4, 5
        """
    )
    db.execute(
        f"""
        INSERT INTO spend_daily_skill (day, skill, demo, turns, est_usd, cost_usd)
        SELECT t.day, j.key, t.demo, sum(j.value / s.total),
               sum(coalesce(t.est_cost_usd, 0) * j.value / s.total), sum(coalesce(t.cost_usd, 0) * j.value / s.total)
        FROM turns AS t, json_each(t.skills_json) AS j,
             (SELECT t2.id AS id, 1.0 * sum(j2.value) AS total FROM turns AS t2, json_each(t2.skills_json) AS j2
              WHERE j2.value > 0 AND t2.status IN {COUNTED} GROUP BY t2.id) AS s
        WHERE s.id = t.id AND s.total > 0 AND j.value > 0 AND t.status IN {COUNTED}
        GROUP BY 1, 2, 3
        """
    )


@migrations()
def m005_budget_reservations(db: Database) -> None:
    """Money held by model calls in flight, so that processes sharing the file never spend the same dollars."""
    _run(
        db,
        """
        CREATE TABLE budget_reservations (
            turn_id INTEGER PRIMARY KEY,
            amount_usd REAL NOT NULL,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            proc_start TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        """
    )


@migrations()
def m006_comparisons(db: Database) -> None:
    """Side-by-side comparisons: the two turns that answered one user message, and the user's pick.

    The conversation goes on from one answer: the right one when the user preferred it, the left
    one otherwise (and until they pick); the other stays in the transcript, out of the context.
    """
    _run(
        db,
        """
        CREATE TABLE comparisons (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            user_message_id INTEGER NOT NULL REFERENCES messages(id),
            left_turn INTEGER NOT NULL REFERENCES turns(id),
            right_turn INTEGER NOT NULL REFERENCES turns(id),
            outcome TEXT,
            created_at TEXT NOT NULL,
            decided_at TEXT
        );
        CREATE INDEX idx_comparisons_conversation ON comparisons(conversation_id);
        CREATE UNIQUE INDEX idx_comparisons_left ON comparisons(left_turn);
        CREATE UNIQUE INDEX idx_comparisons_right ON comparisons(right_turn);
        """
    )


def names() -> list[str]:
    """Every migration, oldest first."""
    return [m.name for m in migrations.pending(Database(memory=True))]
