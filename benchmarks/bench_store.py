"""Trace store speed: `spend` over a million logged turns, and the cost of logging one turn.

    .venv/bin/python benchmarks/bench_store.py [--turns 1000000] [--repeat 30] [--db PATH]

Builds a trace database with N synthetic turns (a year of days, the general handbook's agents,
modes and skills) by a fast bulk insert (triggers off, rollups rebuilt once, as a bulk import
would), then prints median and p99 of:
  * each spend report (by day/model/mode/skill/agent) plus the budget totals, in process;
  * `skillchat spend` end to end as a subprocess (Python start-up included);
  * logging one turn on that database: user message + turn start + answer and outcome (three
    transactions, the rollup triggers firing), i.e. what the service adds to a turn. Turns are
    spaced 5 ms apart (real ones are seconds apart: a model answers in between), which leaves the
    background WAL checkpoint room to run, as it would in use.
Targets (issue #4): spend <= 200 ms; logging one turn <= 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from skillchat import handbooks  # noqa: E402
from skillchat.core import Message, Router  # noqa: E402
from skillchat.events import Attempt  # noqa: E402
from skillchat.store import TraceStore, spend  # noqa: E402
from skillchat.store.migrations import rebuild_rollups, rollup_triggers  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def show(label: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(f"  {label:<38} median {statistics.median(ms):8.2f} ms   p99 {pct(ms, 0.99):8.2f} ms   (n={len(ms)})")


def fill(store: TraceStore, n: int, seed: int = 0) -> float:
    hb = handbooks.load("general")
    agents = [(a.id, a.model) for a in hb.agents.values()]
    skills_by_mode = {m: hb.skills_in_mode(m) for m in hb.modes}
    modes = list(hb.modes)
    rng = random.Random(seed)
    first = date.today() - timedelta(days=364)
    db = store.db
    t0 = time.perf_counter()
    db.execute("INSERT INTO conversations (id, title, created_at, updated_at) VALUES (1, 'bench', 'x', 'x')")
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    with db.atomic():
        for name in names:
            db.execute(f"DROP TRIGGER {name}")

        def rows():
            for i in range(n):
                day = (first + timedelta(days=i * 365 // n)).isoformat()
                agent, model = agents[rng.randrange(len(agents))]
                mode = modes[rng.randrange(len(modes))]
                picked = rng.sample(skills_by_mode[mode], min(len(skills_by_mode[mode]), rng.randint(1, 3)))
                w = [rng.random() + 0.1 for _ in picked]
                skills = json.dumps({s: round(x / sum(w), 4) for s, x in zip(picked, w, strict=True)})
                pt, ct = rng.randint(50, 4000), rng.randint(20, 1500)
                cost = (pt * 1e-6 + ct * 4e-6) * rng.choice((0.1, 1.0, 5.0))
                status = "answered" if rng.random() > 0.03 else "failed"
                yield (1, day + "T12:00:00.000Z", day, status, "general", 1, mode, skills, "thompson", agent,
                       0.5, agent, model, cost * 1.1, pt, ct, cost, 1.2)

        db.conn.executemany(
            """INSERT INTO turns (conversation_id, started_at, day, status, handbook, handbook_version, mode,
                   skills_json, policy, chosen_agent, probability, agent_id, model, est_cost_usd, prompt_tokens,
                   completion_tokens, cost_usd, latency_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            rows(),
        )
        rebuild_rollups(db)
        for sql in rollup_triggers():
            db.execute(sql)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # as a bulk import would leave it
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--log-turns", type=int, default=1000)
    ap.add_argument("--db", help="reuse or create this database file (default: a temp dir)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="skillchat-bench-")
    path = Path(args.db) if args.db else Path(tmp) / "traces.db"
    os.environ["SKILLCHAT_HOME"] = tmp  # handbooks, config: nothing of the user's is touched
    store = TraceStore.open(path)
    have = store.db.execute("SELECT count(*) FROM turns").fetchone()[0]
    if have < args.turns:
        secs = fill(store, args.turns - have)
        print(f"bulk insert of {args.turns - have:,} turns and rollup rebuild: {secs:.1f} s")
    n = store.db.execute("SELECT count(*) FROM turns").fetchone()[0]
    print(f"database {path}: {n:,} turns, {path.stat().st_size / 1e6:.0f} MB, "
          f"{store.db.execute('SELECT count(*) FROM spend_daily').fetchone()[0]:,} daily rollup rows")

    print("spend, in process (report + budget totals):")
    today = date.today()
    for by in spend.BY:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            spend.report(store.db, by)
            spend.spent_between(store.db, today.isoformat())
            spend.spent_between(store.db, today.replace(day=1).isoformat())
            times.append(time.perf_counter() - t0)
        show(f"--by {by}", times)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        spend.report(store.db, "skill", "30d")
        times.append(time.perf_counter() - t0)
    show("--by skill --since 30d", times)

    print("`skillchat spend` as a subprocess (interpreter start-up included):")
    env = dict(os.environ, SKILLCHAT_DB=str(path), SKILLCHAT_HOME=tmp, PYTHONPATH=str(ROOT))
    times = []
    for _ in range(max(5, args.repeat // 3)):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "skillchat", "spend", "--by", "model"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    show("skillchat spend --by model", times)
    times = []
    for _ in range(max(5, args.repeat // 3)):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        times.append(time.perf_counter() - t0)
    show("(python -c pass, for comparison)", times)

    print(f"logging one turn on this database ({args.log_turns} turns):")
    hb = handbooks.load("general")
    router = Router(hb)
    rng = random.Random(1)
    texts = ["Why does my python script raise KeyError?", "Translate this into French please",
             "What is the derivative of x^2 sin x?", "Write a haiku about databases"]
    decisions = [router.route([Message("user", t)], rng=rng) for t in texts]
    cid = store.new_conversation()
    times = []
    for i in range(args.log_turns):
        d = decisions[i % len(decisions)]
        t0 = time.perf_counter()
        mid = store.add_message(cid, "user", texts[i % len(texts)])
        tid = store.start_turn(cid, mid, d, demo=False)
        store.finish_turn(tid, "answered", attempts=[Attempt(d.chosen, d.winner.model, True, latency_s=1.0)],
                          agent_id=d.chosen, model=d.winner.model, text="An answer of a few hundred characters. " * 8,
                          prompt_tokens=120, completion_tokens=300, cost_usd=0.001, cost_known=True,
                          latency_s=1.0, ttft_s=0.2)
        times.append(time.perf_counter() - t0)
        time.sleep(0.005)
    show("user message + start + finish", times)
    store.close()
    if not args.db:
        shutil.rmtree(tmp, ignore_errors=True)  # a million turns is ~300 MB of temp space


if __name__ == "__main__":
    main()
