"""The embedded local model through skillchat against the same server called directly, in one run.

skillchat's ChatService starts the local model (SmolLM2-135M on llama.cpp's server, as the app
does), then, in alternation, N times each, on that one server:

* direct:  a streaming POST from this process with nothing but the standard library;
* service: a turn through ChatService.run_turn pinned to the local agent: what the app runs for
           each message (routing, the trace written before and after, progress saves), minus drawing;
* ask:     the real `python -m skillchat ask` in a fresh process, its config pointing one agent at
           the running server (the same direct HTTP path the local agent takes).

It prints median and p99 of time to first token and tokens/s (first to last token, the server's own
token count), and how far each path is below direct on tokens/s (target: within 10%). `--cold N`
adds N runs of `skillchat ask --model local-smollm2` that start the model themselves, as a
one-off question from the shell does.

Usage:  python benchmarks/bench_local.py [--runs 9] [--cold 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import bench_ask  # noqa: E402  (its direct call, its `ask` timing, its percentiles)

from skillchat.providers import local_model  # noqa: E402

bench_ask.QUESTION = QUESTION = "Tell me a short story about a lighthouse."


async def service_turn(svc, conversation: list[int]) -> dict[str, float]:
    from skillchat.events import TokenChunk, TurnFinished

    t0 = time.perf_counter()
    first = last = None
    done = None
    # A fresh conversation each time, so the prompt is the same as the direct call's.
    async for ev in svc.run_turn(None, QUESTION, pin=local_model.AGENT_ID):
        if isinstance(ev, TokenChunk) and ev.text.strip():
            last = time.perf_counter() - t0
            first = last if first is None else first
        elif isinstance(ev, TurnFinished):
            done = ev
    if done is None or done.agent_id != local_model.AGENT_ID:
        raise SystemExit(f"the service turn did not finish with the local model: {done}")
    conversation.append(done.turn_id)
    return {"ttft": first, "total": time.perf_counter() - t0,
            "tok_s": bench_ask._rate(done.completion_tokens, first, last)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--cold", type=int, default=0, help="also time this many `ask` runs that start the model")
    a = ap.parse_args()
    if local_model.problem({}):
        raise SystemExit(f"skillchat bench_local: {local_model.problem({})}")

    from skillchat.config import Config
    from skillchat.providers.detect import Environment
    from skillchat.service import ChatService

    home = tempfile.mkdtemp(prefix="skillchat-bench-local-")
    os.environ["SKILLCHAT_HOME"] = home
    os.environ.pop(local_model.MODEL_ENV, None)
    svc = ChatService.create(Config(), demo=False, environment=Environment(frozenset(), None, None),
                             rng=random.Random(0), chunk_delay_s=0.0)
    loop = asyncio.new_event_loop()
    t0 = time.perf_counter()
    loop.run_until_complete(svc.load_providers())
    started = time.perf_counter() - t0
    url = svc.local.url
    print(f"local model {local_model.model_file({})}: started and litellm loaded in {started:.2f} s "
          f"(server alone {svc.local.started_s:.2f} s) at {url}")

    ask_home = tempfile.mkdtemp(prefix="skillchat-bench-local-ask-")
    (Path(ask_home) / "config").mkdir()
    (Path(ask_home) / "config" / "config.toml").write_text(
        f'[[agents]]\nid = "bench"\nmodel = "{local_model.MODEL}"\napi_base = "{url}"\n', encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": ask_home, "SKILLCHAT_HOME": ask_home,
           "PYTHONPATH": str(REPO), "OLLAMA_HOST": "127.0.0.1:9", local_model.MODEL_ENV: "off"}
    turns: list[int] = []
    try:
        bench_ask.ask(ask_home, env)  # warm-up: the first ask in a home learns the model has no price
        loop.run_until_complete(service_turn(svc, turns))
        runs: dict[str, list[dict[str, float]]] = {"direct": [], "service": [], "ask": []}
        for _ in range(a.runs):
            runs["direct"].append(bench_ask.direct(url, local_model.ALIAS))
            runs["service"].append(loop.run_until_complete(service_turn(svc, turns)))
            runs["ask"].append(bench_ask.ask(ask_home, env))
        cold = []
        if a.cold:
            cold_home = tempfile.mkdtemp(prefix="skillchat-bench-local-cold-")
            cold_env = {**env, "HOME": cold_home, "SKILLCHAT_HOME": cold_home}
            del cold_env[local_model.MODEL_ENV]
            for _ in range(a.cold):
                cold.append(_ask_pinned(cold_home, cold_env))
    finally:
        svc.close()
        loop.close()

    print(f"{a.runs} runs each, alternating, one server; load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} cores")
    print(f"{'':9}{'TTFT median':>13}{'p99':>9}{'tokens/s median':>17}{'p1 (slowest)':>14}{'below direct':>14}")
    base = statistics.median(r["tok_s"] for r in runs["direct"])
    for name, rs in [*runs.items(), *([("ask cold", cold)] if cold else [])]:
        ttft, rate = [r["ttft"] for r in rs], [r["tok_s"] for r in rs]
        below = 1 - statistics.median(rate) / base
        print(f"{name:9}{statistics.median(ttft):12.3f}s{bench_ask.pct(ttft, .99):8.3f}s"
              f"{statistics.median(rate):17.1f}{bench_ask.pct(rate, .01):14.1f}{100 * below:+13.1f}%")
    d = statistics.median(r["ttft"] for r in runs["direct"])
    for name in ("service", "ask"):
        gap = statistics.median(r["ttft"] for r in runs[name]) - d
        print(f"{name}: TTFT {gap:+.3f} s after direct (medians); tokens/s overhead "
              f"{100 * (1 - statistics.median(r['tok_s'] for r in runs[name]) / base):+.1f}% (target <= 10%)")
    return 0


def _ask_pinned(home: str, env: dict[str, str]) -> dict[str, float]:
    """`skillchat ask --model local-smollm2`: the command starts the model, asks, and stops it."""
    import subprocess

    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "skillchat", "ask", "--model", local_model.AGENT_ID, QUESTION],
                         cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = last = None
    while piece := os.read(p.stdout.fileno(), 65536):
        if piece.strip():
            last = time.perf_counter() - t0
            first = last if first is None else first
    err = p.stderr.read().decode()
    if p.wait() != 0 or "turn " not in err:
        raise SystemExit(f"skillchat ask failed:\n{err}")
    tokens = int(err.split(" tokens,")[0].rsplit("+", 1)[1])
    return {"ttft": first, "total": time.perf_counter() - t0, "tok_s": bench_ask._rate(tokens, first, last)}


if __name__ == "__main__":
    raise SystemExit(main())
