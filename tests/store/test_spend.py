"""Spend totals from the trigger-maintained rollups: right numbers, and never out of step with the turns."""

from __future__ import annotations

import json
import random
from datetime import date

import pytest

from skillchat.errors import SkillchatError
from skillchat.store import TraceStore, spend
from skillchat.store.migrations import rebuild_rollups


@pytest.fixture
def store(tmp_path):
    s = TraceStore.open(tmp_path / "traces.db")
    s.db.execute("INSERT INTO conversations (id, created_at, updated_at) VALUES (1, 'x', 'x')")
    yield s
    s.close()


def add(store, day, agent, model, mode, cost, est, skills, status="answered", demo=0, pt=100, ct=50):
    cur = store.db.execute(
        """INSERT INTO turns (conversation_id, started_at, day, status, mode, skills_json, chosen_agent, agent_id,
               model, est_cost_usd, cost_usd, prompt_tokens, completion_tokens, demo)
           VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [day + "T12:00:00Z", day, status, mode, json.dumps(skills), agent, agent, model, est, cost, pt, ct, demo],
    )
    return cur.lastrowid


def snapshot(db):
    a = sorted(tuple(round(x, 9) if isinstance(x, float) else x for x in r)
               for r in db.execute("SELECT * FROM spend_daily WHERE turns != 0 OR abs(cost_usd) > 1e-12"))
    b = sorted(tuple(round(x, 9) if isinstance(x, float) else x for x in r)
               for r in db.execute("SELECT * FROM spend_daily_skill WHERE abs(turns) > 1e-9"))
    return a, b


def test_report_by_each_breakdown(store):
    add(store, "2026-03-01", "big", "gpt-5", "code", 0.30, 0.40, {"code.python": 3, "code.debugging": 1})
    add(store, "2026-03-01", "mid", "gpt-5-mini", "math", 0.10, 0.05, {"math.calculus": 1})
    add(store, "2026-03-02", "mid", "gpt-5-mini", "code", 0.20, 0.20, {"code.python": 1})
    add(store, "2026-03-02", "mid", "gpt-5-mini", "code", 9.99, 9.99, {"code.python": 1}, status="refused")
    add(store, "2026-03-02", "mid", "gpt-5-mini", "code", 5.00, 5.00, {"code.python": 1}, demo=1)

    by_model = spend.report(store.db, "model")
    assert [(r.key, r.turns, round(r.cost_usd, 6), round(r.est_usd, 6)) for r in by_model.rows] == [
        ("gpt-5-mini", 2, 0.30, 0.25), ("gpt-5", 1, 0.30, 0.40)]
    assert (by_model.total.turns, round(by_model.total.cost_usd, 6), by_model.demo_turns) == (3, 0.60, 1)
    assert [r.key for r in spend.report(store.db, "day").rows] == ["2026-03-01", "2026-03-02"]
    assert {r.key: round(r.cost_usd, 6) for r in spend.report(store.db, "mode").rows} == {"code": 0.5, "math": 0.1}
    skills = {r.key: r for r in spend.report(store.db, "skill").rows}
    assert skills["code.python"].cost_usd == pytest.approx(0.30 * 0.75 + 0.20)
    assert skills["code.debugging"].turns == pytest.approx(0.25)
    assert spend.report(store.db, "model", "2026-03-02").total.cost_usd == pytest.approx(0.20)
    demo = spend.report(store.db, "model", demo=True)
    assert demo.demo and demo.total.cost_usd == pytest.approx(5.0)
    assert spend.spent_between(store.db, "2026-03-01", "2026-03-01") == pytest.approx(0.40)
    assert spend.spent_between(store.db, "2026-03-02") == pytest.approx(0.20)


def test_rollups_match_a_rebuild_after_any_mix_of_inserts_updates_and_deletes(store):
    rng = random.Random(7)
    ids = []
    for _ in range(300):
        op = rng.random()
        if op < 0.5 or not ids:
            ids.append(add(store, f"2026-04-{rng.randint(1, 5):02d}", rng.choice("abc"), rng.choice(["m1", "m2"]),
                           rng.choice(["code", "chat"]), rng.random(), rng.random(),
                           {s: rng.random() for s in rng.sample(["s1", "s2", "s3"], rng.randint(0, 3))},
                           status=rng.choice(["running", "answered", "failed", "refused", "cancelled"]),
                           demo=rng.randint(0, 1)))
        elif op < 0.85:
            tid = rng.choice(ids)
            store.db.execute("UPDATE turns SET status = ?, cost_usd = ?, agent_id = ?, skills_json = ? WHERE id = ?",
                             [rng.choice(["answered", "failed", "cancelled", "running"]), rng.random(),
                              rng.choice("abc"), json.dumps({"s1": rng.random()}), tid])
        else:
            tid = ids.pop(rng.randrange(len(ids)))
            store.db.execute("DELETE FROM turns WHERE id = ?", [tid])
    live = snapshot(store.db)
    rebuild_rollups(store.db)
    assert snapshot(store.db) == live


@pytest.mark.parametrize("text, expected", [
    ("today", date(2026, 5, 20)), ("yesterday", date(2026, 5, 19)), ("month", date(2026, 5, 1)),
    ("year", date(2026, 1, 1)), ("7d", date(2026, 5, 14)), ("1d", date(2026, 5, 20)), ("2w", date(2026, 5, 7)),
    ("3m", date(2026, 2, 1)), ("2026-04-02", date(2026, 4, 2)), ("2026-04", date(2026, 4, 1)), (None, None),
])
def test_since_accepts_dates_and_relative_periods(text, expected):
    assert spend.parse_since(text, today=date(2026, 5, 20)) == expected


def test_a_bad_since_or_breakdown_is_a_clear_error(store):
    with pytest.raises(SkillchatError, match="--since 'last tuesday'"):
        spend.parse_since("last tuesday")
    with pytest.raises(SkillchatError, match="choose one of"):
        spend.report(store.db, "colour")


@pytest.mark.parametrize(
    "x, text",
    [(0, "$0"), (1e-7, "<$0.00001"), (0.00001, "$0.00001"), (0.00123, "$0.00123"), (0.0099, "$0.0099"), (0.01, "$0.0100"),
     (0.5, "$0.5000"), (1, "$1.00"), (1234567.8, "$1,234,567.80"), (-0.0123, "-$0.0123"), (-1e-7, "-<$0.00001"),
     (float("nan"), "n/a"), (float("inf"), "n/a")],
)
def test_money_format(x, text):
    from skillchat.money import usd

    assert usd(x) == text


def test_skillchat_spend_on_a_current_database_loads_no_heavy_module(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    TraceStore.open(tmp_path / "t.db").close()
    code = ("import sys\nfrom skillchat.cli import main\nmain(['spend'])\nprint('--- modules')\n"
            "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))")
    env = dict(os.environ, SKILLCHAT_DB=str(tmp_path / "t.db"), PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    report, _, modules = out.partition("--- modules\n")
    assert "Spend, all time" in report
    assert {"skillchat", "sqlite3"} <= set(modules.split())  # the listing works ...
    assert not {"sqlite_utils", "litellm", "rich", "textual", "tiktoken"} & set(modules.split())  # ... and is lean
