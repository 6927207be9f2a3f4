"""How much later does `skillchat ask` show the first token than the server could send it?

Starts a loopback OpenAI-compatible server (tests/openai_server.py: one word a chunk, chunked framing, at --rate
words a second), or uses a running one (--api-base, --model: a real local model). Then, in
alternation, N times each:

* direct: a streaming POST to the server from this process (stdlib http.client, connection
  included), the least any client can take;
* ask:    the real `python -m skillchat ask` in a fresh process, timed from the spawn, reading
  its stdout as it arrives. Its config has one agent, `openai/<model>` at the server's api_base;
  the question is routed as usual.

For each, it prints median and p99 of: time to first token (TTFT), total time (ask: until the
process has exited, its turn written), and tokens/s from the first token to the last one, with
the server's own token count. The first ask in a fresh SKILLCHAT_HOME imports litellm once after
the answer, to learn whether litellm prices the model; it is a warm-up, reported apart.

Usage:  python benchmarks/bench_ask.py [--runs 15] [--words 200] [--rate 80] [--api-base URL --model NAME]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
QUESTION = "Tell me a short story about a lighthouse."


def direct(api_base: str, model: str) -> dict[str, float]:
    """One streamed answer read with nothing but the standard library."""
    u = urlsplit(api_base)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": QUESTION}], "stream": True,
                       "stream_options": {"include_usage": True}})
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    conn.request("POST", u.path.rstrip("/") + "/chat/completions", body,
                 {"Content-Type": "application/json", "Authorization": "Bearer x"})
    resp = conn.getresponse()
    first = last = None
    tokens = 0
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data:") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[5:])
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        if any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or []):
            last = time.perf_counter() - t0
            first = last if first is None else first
    conn.close()
    return {"ttft": first, "total": time.perf_counter() - t0, "tok_s": _rate(tokens, first, last)}


def ask(home: str, env: dict[str, str]) -> dict[str, float]:
    """One real `skillchat ask`, timed from the spawn."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "skillchat", "ask", QUESTION], cwd=home, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = last = None
    out = b""
    while piece := os.read(p.stdout.fileno(), 65536):
        out += piece
        if piece.strip():
            last = time.perf_counter() - t0
            first = last if first is None else first
    err = p.stderr.read().decode()
    status = p.wait()
    total = time.perf_counter() - t0
    if status != 0 or "turn " not in err:
        raise SystemExit(f"skillchat ask failed (exit {status}):\n{err}")
    tokens = int(err.split(" tokens,")[0].rsplit("+", 1)[1])  # "turn N: agent, P+C tokens, ..."
    return {"ttft": first, "total": total, "tok_s": _rate(tokens, first, last)}


def _rate(tokens: int, first: float | None, last: float | None) -> float:
    return tokens / (last - first) if tokens > 1 and first is not None and last and last > first else float("nan")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--words", type=int, default=200, help="spawned server: words (tokens) per answer")
    ap.add_argument("--rate", type=float, default=80.0, help="spawned server: words per second (a small local model)")
    ap.add_argument("--api-base", help="use this running OpenAI-compatible server instead of spawning one")
    ap.add_argument("--model", default="bench", help="the model name the server knows (with --api-base)")
    a = ap.parse_args()

    server = None
    api_base = a.api_base
    if api_base is None:
        server = subprocess.Popen([sys.executable, str(REPO / "tests" / "openai_server.py"), "--words", str(a.words),
                                   "--rate", str(a.rate)], stdout=subprocess.PIPE, text=True)
        api_base = server.stdout.readline().strip()
    home = tempfile.mkdtemp(prefix="skillchat-bench-ask-")
    (Path(home) / "config").mkdir()
    (Path(home) / "config" / "config.toml").write_text(
        f'[[agents]]\nid = "local"\nmodel = "openai/{a.model}"\napi_base = "{api_base}"\n', encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "SKILLCHAT_HOME": home, "PYTHONPATH": str(REPO),
           "OLLAMA_HOST": "127.0.0.1:9"}  # nothing listens there: no Ollama on this machine, whatever runs here
    try:
        warm = ask(home, env)
        runs: dict[str, list[dict[str, float]]] = {"direct": [], "ask": []}
        for _ in range(a.runs):
            runs["direct"].append(direct(api_base, a.model))
            runs["ask"].append(ask(home, env))
    finally:
        if server is not None:
            server.terminate()
            server.wait()

    where = f"{a.api_base} ({a.model})" if a.api_base else f"spawned loopback server, {a.words} words at {a.rate:g}/s"
    print(f"skillchat ask vs direct HTTP streaming; {where}; {a.runs} runs each, alternating; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"first ask in a fresh home (warm-up, not counted): TTFT {warm['ttft']:.3f} s, total {warm['total']:.3f} s")
    print(f"{'':8}{'TTFT median':>13}{'p99':>9}{'total median':>14}{'p99':>9}"
          f"{'tokens/s median':>17}{'p1 (slowest)':>14}")
    for name, rs in runs.items():
        ttft, total, rate = ([r[k] for r in rs] for k in ("ttft", "total", "tok_s"))
        print(f"{name:8}{statistics.median(ttft):12.3f}s{pct(ttft, .99):8.3f}s{statistics.median(total):13.3f}s"
              f"{pct(total, .99):8.3f}s{statistics.median(rate):17.1f}{pct(rate, .01):14.1f}")
    d, k = runs["direct"], runs["ask"]
    gap = statistics.median(r["ttft"] for r in k) - statistics.median(r["ttft"] for r in d)
    slower = 1 - statistics.median(r["tok_s"] for r in k) / statistics.median(r["tok_s"] for r in d)
    print(f"ask's TTFT - direct TTFT (medians): {gap:+.3f} s (target: <= 1.0 s)")
    print(f"ask's tokens/s below direct (medians): {100 * slower:+.1f}% (target: <= 10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
