"""Several processes on one trace database: chat writers, `skillchat rate` and `skillchat spend` loops.

    .venv/bin/python benchmarks/bench_concurrency.py [--seconds 45] [--writers 2] [--raters 1]
        [--spenders 1] [--subprocess] [--home DIR] [--json]

Each writer is a real ChatService with demo agents (litellm's mock_response: no network, no
cost) in its own process, sending turns as fast as it can and rating and re-rating them; each
rater calls `skillchat rate TURN up|down|clear` on random turns, each spender `skillchat spend`.
The workers are fresh processes (spawned, not forked: a fork copies whatever locks the parent's
other threads hold, and in CI, under pytest, one forked worker died without a report); each imports and warms up
litellm and tiktoken, as a long-running app has them, and the clock starts once all are ready.
--subprocess runs rate and spend as real `python -m skillchat` processes instead, as a shell loop
would (slower, and each one opens and closes the database).

Prints turns sent, user messages lost (sent but not in the database), turns left `running`,
errors (a turn that failed, a rating or spend that failed) and tracebacks (an exception that
escaped: never acceptable), and p50/p99/max latency of the writers' store writes (a user
message, a turn start, a turn's outcome, a rating).

tests/reliability/test_concurrency.py runs this for a few seconds and asserts 0 lost, 0 running,
0 errors, 0 tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import multiprocessing
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# A spawned worker imports this module by name to find its function: under pytest too.
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

TINY = ROOT / "tests" / "data" / "tiny.json"
QUESTIONS = ("why does my python script raise KeyError?", "what is 17 * 23?", "hello there",
             "what is the derivative of x^2 sin x?", "how can I make this function faster?")
CLEAN_RATE_REFUSALS = ("has no answer to rate", "no turn ")
START_TIMEOUT_S = 120.0  # for every worker to import and warm up, on a loaded 2-core machine


def prepare(home: Path) -> Path:
    """A SKILLCHAT_HOME whose config routes with the small test handbook; returns the database path."""
    from skillchat import paths

    os.environ["SKILLCHAT_HOME"] = str(home)
    os.environ.pop("SKILLCHAT_CONFIG", None)
    os.environ.pop("SKILLCHAT_DB", None)
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(f'handbook = "{TINY}"\n', encoding="utf-8")
    return paths.database_file()


def _timed(store: Any, latencies: list[float]) -> None:
    """Time every write the service makes through this store."""
    for name in ("add_message", "start_turn", "finish_turn", "rate", "rate_and_catch_up", "new_conversation"):
        method = getattr(store, name, None)
        if method is None:
            continue

        def wrapper(*a: Any, __m: Any = method, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return __m(*a, **kw)
            finally:
                latencies.append(time.perf_counter() - t0)

        setattr(store, name, wrapper)


def _ready(start: Any, warm: bool) -> None:
    """Pay the imports (and litellm's lazy ones) before the clock starts, then wait for the others."""
    if warm:
        from skillchat.core.ports import Message
        from skillchat.providers.litellm_client import load_litellm, warm_up
        from skillchat.tokens import TiktokenCounter

        warm_up(load_litellm())
        TiktokenCounter().count([Message("user", "warm up")])
    start.wait(timeout=START_TIMEOUT_S)


def writer(name: str, seconds: float, seed: int, out: str, short: bool, start: Any) -> None:
    """One chat process: turns as fast as it can, rating about half of them and re-rating older ones.

    `short`: every agent answers in a few words (litellm's mock_response, as the demo agents use),
    so turns come fast and the database, not the mock stream, is what is under load.
    """
    import dataclasses

    from skillchat.events import TurnFailed, TurnFinished
    from skillchat.providers.detect import Environment
    from skillchat.service import ChatService

    rng = random.Random(seed)
    result: dict[str, Any] = {"name": name, "sent": [], "answered": 0, "errors": [], "tracebacks": [],
                              "latencies": [], "ratings": 0}
    try:
        svc = ChatService.create(demo=True, environment=Environment(frozenset(), None, None),
                                 rng=random.Random(seed), chunk_delay_s=0.0)
        _ready(start, warm=True)
    except Exception:
        result["tracebacks"].append(traceback.format_exc())
        Path(out).write_text(json.dumps(result))
        return
    _timed(svc.store, result["latencies"])
    if short:
        for agent_id, ep in list(svc.pool.endpoints.items()):
            svc.pool.endpoints[agent_id] = dataclasses.replace(ep, mock_response=f"Noted, from {agent_id}.")
    mine: list[int] = []

    async def main() -> None:
        deadline = time.monotonic() + seconds
        conversation = None
        i = 0
        while time.monotonic() < deadline:
            i += 1
            text = f"{name} #{i}: {rng.choice(QUESTIONS)}"
            result["sent"].append(text)
            if i % 5 == 1:
                conversation = None
            try:
                async for ev in svc.run_turn(conversation, text):
                    if isinstance(ev, TurnFinished):
                        result["answered"] += 1
                        mine.append(ev.turn_id)
                    elif isinstance(ev, TurnFailed):
                        result["errors"].append(f"turn: {ev.error}")
                    conversation = getattr(ev, "conversation_id", None) or conversation
            except Exception as e:
                result["tracebacks"].append(f"turn: {type(e).__name__}: {e}")
                continue
            for tid in ([mine[-1]] if mine and rng.random() < 0.5 else []) + (
                    [rng.choice(mine)] if mine and rng.random() < 0.3 else []):
                try:
                    svc.rate(tid, rng.choice(["up", "down"]))
                    result["ratings"] += 1
                except Exception as e:
                    kind = "tracebacks" if not getattr(e, "exit_code", None) else "errors"
                    result[kind].append(f"rate: {type(e).__name__}: {e}")

    try:
        asyncio.run(main())
    except Exception:
        result["tracebacks"].append(traceback.format_exc())
    finally:
        with contextlib.suppress(Exception):
            svc.close()
        Path(out).write_text(json.dumps(result))


def _last_turn(db_path: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT coalesce(max(id), 0) FROM turns").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def cli_loop(kind: str, seconds: float, seed: int, out: str, db_path: str, use_subprocess: bool, start: Any) -> None:
    """`skillchat rate` on random turns, or `skillchat spend`, over and over."""
    from skillchat.cli import main as cli_main

    rng = random.Random(seed)
    result: dict[str, Any] = {"name": f"{kind}-{seed}", "calls": 0, "ok": 0, "refused": 0, "errors": [],
                              "tracebacks": []}
    try:
        _ready(start, warm=False)
    except Exception:
        result["tracebacks"].append(traceback.format_exc())
        Path(out).write_text(json.dumps(result))
        return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if kind == "rate":
            last = _last_turn(Path(db_path))
            if last == 0:
                time.sleep(0.01)
                continue
            argv = ["rate", str(rng.randint(1, last)), rng.choice(["up", "down", "clear"])]
        else:
            argv = ["spend"]
        result["calls"] += 1
        if use_subprocess:
            p = subprocess.run([sys.executable, "-m", "skillchat", *argv], capture_output=True, text=True,
                               cwd=str(ROOT), env=os.environ.copy())
            code, err = p.returncode, p.stderr
        else:
            err_buf = io.StringIO()
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err_buf):
                    code = cli_main(argv)
            except BaseException as e:  # an exception out of main() is what a user sees as a traceback
                code, err = 1, f"Traceback: {type(e).__name__}: {e}"
            else:
                err = err_buf.getvalue()
        if "Traceback" in err:
            result["tracebacks"].append(err.strip()[-400:])
        elif code == 0:
            result["ok"] += 1
        elif code == 2 and err.count("\n") <= 1 and any(s in err for s in CLEAN_RATE_REFUSALS):
            result["refused"] += 1  # a turn still running, or refused, has nothing to rate: right
        else:
            result["errors"].append(f"{' '.join(argv)}: exit {code}: {err.strip()[-300:]}")
    Path(out).write_text(json.dumps(result))


def run(home: Path, *, seconds: float, writers: int = 2, raters: int = 1, spenders: int = 1,
        use_subprocess: bool = False, seed: int = 0, short: bool = True) -> dict[str, Any]:
    """Run the workers on one database; return what they did and what the database holds after."""
    db_path = prepare(home)
    ctx = multiprocessing.get_context("spawn")
    outdir = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    n = writers + raters + spenders
    start = ctx.Barrier(n + 1)
    procs = []
    for i in range(writers):
        procs.append(ctx.Process(name=f"w{i}", target=writer,
                                 args=(f"w{i}", seconds, seed + i, str(outdir / f"w{i}.json"), short, start)))
    for kind, count, base in (("rate", raters, 100), ("spend", spenders, 200)):
        for i in range(count):
            procs.append(ctx.Process(name=f"{kind}-{seed + base + i}", target=cli_loop,
                                     args=(kind, seconds, seed + base + i, str(outdir / f"{kind}{i}.json"),
                                           str(db_path), use_subprocess, start)))
    for p in procs:
        p.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a worker that never got ready is reported below
        start.wait(timeout=START_TIMEOUT_S)
    t0 = time.monotonic()
    hung = set()
    for p in procs:
        p.join(timeout=seconds + 120)
        if p.is_alive():
            hung.add(p.name)
            p.kill()
            p.join()
    elapsed = time.monotonic() - t0
    results = []
    for f in sorted(outdir.glob("*.json")):
        results.append(json.loads(f.read_text()))
        f.unlink()
    outdir.rmdir()
    reported = {r["name"] for r in results}
    # A worker with no report: say which, and how it ended (hung and killed, a signal, an exit code),
    # so a failure in CI can be told apart from a lost message.
    silent = [f"{p.name} ({'hung, killed' if p.name in hung else f'exit code {p.exitcode}'})"
              for p in procs if p.name not in reported]

    conn = sqlite3.connect(str(db_path), timeout=30)
    try:
        stored: dict[str, int] = {}
        for (content,) in conn.execute("SELECT content FROM messages WHERE role = 'user'"):
            stored[content] = stored.get(content, 0) + 1
        running = conn.execute("SELECT count(*) FROM turns WHERE status = 'running'").fetchone()[0]
        turns = conn.execute("SELECT count(*) FROM turns").fetchone()[0]
    finally:
        conn.close()

    sent = [t for r in results for t in r.get("sent", [])]
    lost = [t for t in sent if stored.get(t, 0) == 0]
    duplicated = [t for t in sent if stored.get(t, 0) > 1]
    latencies = sorted(x for r in results for x in r.get("latencies", []))
    errors = [e for r in results for e in r.get("errors", [])]
    tracebacks = [e for r in results for e in r.get("tracebacks", [])]
    if silent:
        tracebacks.append(f"worker process(es) died without a report: {', '.join(silent)}")
    cli = [r for r in results if "calls" in r]
    return {
        "seconds": round(elapsed, 2),
        "turns_sent": len(sent),
        "answered": sum(r.get("answered", 0) for r in results),
        "turns_in_db": turns,
        "messages_lost": len(lost),
        "messages_duplicated": len(duplicated),
        "turns_running": running,
        "ratings_by_writers": sum(r.get("ratings", 0) for r in results),
        "cli_calls": sum(r["calls"] for r in cli),
        "cli_refused_cleanly": sum(r["refused"] for r in cli),
        "errors": len(errors),
        "tracebacks": len(tracebacks),
        "write_p50_ms": round(_pct(latencies, 0.50) * 1000, 2),
        "write_p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
        "write_max_ms": round((latencies[-1] if latencies else 0.0) * 1000, 2),
        "writes": len(latencies),
        "examples": {"lost": lost[:5], "errors": errors[:5], "tracebacks": tracebacks[:3]},
    }


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--raters", type=int, default=1)
    ap.add_argument("--spenders", type=int, default=1)
    ap.add_argument("--subprocess", action="store_true", help="rate and spend as real `python -m skillchat` processes")
    ap.add_argument("--home", type=Path, help="SKILLCHAT_HOME to use (default: a fresh temporary one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--demo-answers", action="store_true",
                    help="the demo agents' full scripted answers (slower turns) instead of a few words")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or min(args.writers, args.raters, args.spenders) < 0:
        print("bench_concurrency: --seconds must be > 0 and the worker counts >= 0", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="skillchat-concurrency-") as tmp:
        home = args.home or Path(tmp)
        r = run(home, seconds=args.seconds, writers=args.writers, raters=args.raters, spenders=args.spenders,
                use_subprocess=args.subprocess, seed=args.seed, short=not args.demo_answers)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"{args.writers} writers, {args.raters} raters, {args.spenders} spenders on one database for {r['seconds']} s"
              f"{' (rate/spend as subprocesses)' if args.subprocess else ''}")
        print(f"  turns sent            {r['turns_sent']:>8,}   answered {r['answered']:,}")
        print(f"  user messages lost    {r['messages_lost']:>8,}   duplicated {r['messages_duplicated']:,}")
        print(f"  turns left running    {r['turns_running']:>8,}")
        print(f"  ratings               {r['ratings_by_writers']:>8,} by writers, {r['cli_calls']:,} CLI calls "
              f"({r['cli_refused_cleanly']:,} cleanly refused: nothing to rate yet)")
        print(f"  errors                {r['errors']:>8,}   tracebacks {r['tracebacks']:,}")
        print(f"  store write latency   p50 {r['write_p50_ms']:.2f} ms   p99 {r['write_p99_ms']:.2f} ms   "
              f"max {r['write_max_ms']:.2f} ms   ({r['writes']:,} writes)")
        for what, items in r["examples"].items():
            for item in items:
                print(f"  e.g. {what}: {item}")
    bad = r["messages_lost"] or r["turns_running"] or r["errors"] or r["tracebacks"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
