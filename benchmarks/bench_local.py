"""The embedded local model through skillchat against the same server called directly, in one run.

skillchat's ChatService starts the local model (SmolLM2-135M on llama.cpp's server, as the app
does), then, in alternation, N times each, on that one server:

* direct:  a streaming POST from this process with nothing but the standard library;
* service: a turn through ChatService.run_turn pinned to the local agent: what the app runs for
           each message (routing, the trace written before and after, progress saves), minus drawing;
* ask:     the real `python -m skillchat ask` in a fresh process, its config pointing one agent at
           the running server (the same direct HTTP path the local agent takes).

It prints median and p99 of time to first token and tokens/s from the first token to the last. The
server sends no token counts when it streams, so every path's answer is counted the same way, with
tiktoken on the text received; how far each path is below direct on tokens/s is the overhead
(target: within 10%). `--cold N`
adds N runs of `skillchat ask --model local-smollm2` that start the model themselves, as a
one-off question from the shell does.

Usage:  python benchmarks/bench_local.py [--runs 9] [--cold 3]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from bench_ask import pct  # noqa: E402

from skillchat.core.ports import Message  # noqa: E402
from skillchat.providers import local_model  # noqa: E402
from skillchat.tokens import TiktokenCounter  # noqa: E402

QUESTION = "Tell me a short story about a lighthouse."
COUNTER = TiktokenCounter()


def result(t0: float, first: float | None, last: float | None, text: str) -> dict[str, float]:
    tokens = max(0, COUNTER.count([Message("assistant", text)]) - 6)  # as the service counts an answer
    rate = tokens / (last - first) if first is not None and last and last > first else float("nan")
    return {"ttft": first, "total": time.perf_counter() - t0, "tok_s": rate}


def direct(api_base: str) -> dict[str, float]:
    """One streamed answer read with nothing but the standard library."""
    host, port = api_base.split("//")[1].split("/")[0].split(":")
    body = json.dumps({"model": local_model.ALIAS, "messages": [{"role": "user", "content": QUESTION}],
                       "stream": True})
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    first = last = None
    text = ""
    for raw in conn.getresponse():
        line = raw.decode().strip()
        if not line.startswith("data:") or line == "data: [DONE]":
            continue
        for c in json.loads(line[5:]).get("choices") or []:
            piece = (c.get("delta") or {}).get("content")
            if piece:
                text += piece
                last = time.perf_counter() - t0
                first = last if first is None else first
    conn.close()
    return result(t0, first, last, text)


async def service_turn(svc) -> dict[str, float]:
    from skillchat.events import TokenChunk, TurnFinished

    t0 = time.perf_counter()
    first = last = None
    done = None
    # A fresh conversation each time, so the prompt is the same as the direct call's.
    async for ev in svc.run_turn(None, QUESTION, pin=local_model.AGENT_ID):
        if isinstance(ev, TokenChunk) and ev.text:
            last = time.perf_counter() - t0
            first = last if first is None else first
        elif isinstance(ev, TurnFinished):
            done = ev
    if done is None or done.agent_id != local_model.AGENT_ID:
        raise SystemExit(f"the service turn did not finish with the local model: {done}")
    return result(t0, first, last, done.text)


def ask(home: str, env: dict[str, str], *extra: str) -> dict[str, float]:
    """One real `skillchat ask` in a fresh process, timed from the spawn; its stdout is a terminal
    (into a pipe, ask writes the answer whole once it has finished), read as it comes."""
    import pty
    import tty

    master, slave = pty.openpty()
    tty.setraw(slave)
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "skillchat", "ask", *extra, QUESTION], cwd=home, env=env,
                         stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    first = last = None
    out = b""
    while True:
        try:
            piece = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not piece:
            break
        out += piece
        last = time.perf_counter() - t0
        first = last if first is None else first
    os.close(master)
    err = p.stderr.read().decode()
    if p.wait() != 0 or "turn " not in err:
        raise SystemExit(f"skillchat ask failed:\n{err}")
    return result(t0, first, last, out.decode())


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
    try:
        ask(ask_home, env)  # warm-up: the first ask in a home learns that the model has no price
        loop.run_until_complete(service_turn(svc))
        runs: dict[str, list[dict[str, float]]] = {"direct": [], "service": [], "ask": []}
        for _ in range(a.runs):
            runs["direct"].append(direct(url))
            runs["service"].append(loop.run_until_complete(service_turn(svc)))
            runs["ask"].append(ask(ask_home, env))
        cold = []
        if a.cold:
            cold_home = tempfile.mkdtemp(prefix="skillchat-bench-local-cold-")
            cold_env = {**env, "HOME": cold_home, "SKILLCHAT_HOME": cold_home}
            del cold_env[local_model.MODEL_ENV]
            ask(cold_home, cold_env, "--model", local_model.AGENT_ID)  # warm-up, as above
            for _ in range(a.cold):
                cold.append(ask(cold_home, cold_env, "--model", local_model.AGENT_ID))
    finally:
        svc.close()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    print(f"{a.runs} runs each, alternating, one server; load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} cores")
    print(f"{'':9}{'TTFT median':>13}{'p99':>9}{'tokens/s median':>17}{'p1 (slowest)':>14}{'below direct':>14}")
    base = statistics.median(r["tok_s"] for r in runs["direct"])
    for name, rs in [*runs.items(), *([("ask cold", cold)] if cold else [])]:
        ttft, rate = [r["ttft"] for r in rs], [r["tok_s"] for r in rs]
        below = 1 - statistics.median(rate) / base
        print(f"{name:9}{statistics.median(ttft):12.3f}s{pct(ttft, .99):8.3f}s"
              f"{statistics.median(rate):17.1f}{pct(rate, .01):14.1f}{100 * below:+13.1f}%")
    d = statistics.median(r["ttft"] for r in runs["direct"])
    for name in ("service", "ask"):
        gap = statistics.median(r["ttft"] for r in runs[name]) - d
        print(f"{name}: TTFT {gap:+.3f} s after direct (medians); tokens/s overhead "
              f"{100 * (1 - statistics.median(r['tok_s'] for r in runs[name]) / base):+.1f}% (target <= 10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
