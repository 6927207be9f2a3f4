"""Does the UI stay responsive while a long answer streams in?

A scripted service (tests/ui/fakes.py: the real core Router, no litellm) streams a 5,000-token
Markdown answer (prose, lists, code fences) at 500 tokens a second, one token per chunk, into the
real app running headless (App.run_test, which composes and renders every frame but discards the
output). Meanwhile:

* a 20 ms interval timer records how late it fires (event-loop scheduling lag: what a user feels
  as stutter);
* every 250 ms a keystroke is queued the way the terminal driver queues one, and the time until
  the character is in the prompt is recorded.

Usage:  python benchmarks/bench_ui_stream.py [--tokens 5000] [--rate 500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "ui")]


def answer_tokens(n: int) -> list[str]:
    """n tokens of varied Markdown, each a word or a bit of syntax, as a model would stream it."""
    blocks = [
        "Here is a long answer with **bold**, *italics* and `inline code` in a paragraph that goes on for a while "
        "so that it wraps over several lines of the terminal. ",
        "\n\n- a list item with a few words\n- another item, slightly longer than the first one\n\n",
        "\n\n```python\ndef fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n```\n\n",
        "\n\n## A heading\n\nAnd a paragraph after it, explaining the code above in plain words. ",
    ]
    tokens: list[str] = []
    i = 0
    while len(tokens) < n:
        text = blocks[i % len(blocks)]
        i += 1
        # Whitespace-led word pieces, roughly how BPE tokens split English and code.
        piece = ""
        for ch in text:
            if ch in " \n" and piece:
                tokens.append(piece)
                piece = ""
            piece += ch
        if piece:
            tokens.append(piece)
    return tokens[:n]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def key_to_prompt(app, prompt) -> tuple[float, float]:  # noqa: ANN001
    """Seconds from queuing one key as a terminal driver does until it is in the prompt (pilot.press
    would also wait for the app to go idle, which is not what a user waits for), twice over:

    * landed: until the prompt's edit that inserts it has been applied, stamped inside the edit;
    * seen: until this task, polling every millisecond, sees the prompt's text changed. It also
      counts whatever the loop runs after the edit and before the poll comes round (mostly the
      repaint the edit asked for), so it is an upper bound.
    """
    from textual import events

    before = prompt.text
    landed: list[float] = []
    edit = prompt.edit

    def stamped(e):  # noqa: ANN001, ANN202
        result = edit(e)
        landed.append(time.perf_counter())
        return result

    prompt.edit = stamped
    try:
        k0 = time.perf_counter()
        key = events.Key("x", "x")
        key.set_sender(app)
        app._driver.send_message(key)
        while prompt.text == before:
            if time.perf_counter() - k0 > 10:
                raise RuntimeError(f"a key sent to the app never reached the prompt (focus: {app.focused!r})")
            await asyncio.sleep(0.001)
        seen = time.perf_counter()
    finally:
        del prompt.edit  # the class's method again
    return landed[0] - k0, seen - k0


async def run(n_tokens: int, rate: float) -> dict:
    from fakes import ScriptedService

    from skillchat.ui.app import SkillchatApp

    tokens = answer_tokens(n_tokens)
    svc = ScriptedService(chunks=tokens, delay=1.0 / rate)
    app = SkillchatApp(service_factory=lambda cfg, demo: svc)
    lags: list[float] = []
    keys: list[tuple[float, float]] = []
    interval = 0.02

    async with app.run_test(size=(100, 30)) as pilot:
        while app.providers != "ready":
            await pilot.pause(0.05)
        prompt = app.chat.prompt
        prompt.focus()
        prompt.insert("Write me something long")
        await pilot.press("enter")
        while app.chat.transcript.last_turn() is None or app.chat.transcript.last_turn().status != "streaming":
            await pilot.pause(0.005)
        turn = app.chat.transcript.last_turn()

        expected = [time.perf_counter() + interval]

        def tick() -> None:
            now = time.perf_counter()
            lags.append(max(0.0, now - expected[0]))
            expected[0] = now + interval

        timer = app.set_interval(interval, tick)
        t0 = time.perf_counter()
        while turn.status == "streaming":
            await asyncio.sleep(0.25)
            keys.append(await key_to_prompt(app, prompt))
        stream_s = time.perf_counter() - t0
        # Keep measuring through the end of the turn (last flush, stats, rating buttons appear).
        await asyncio.sleep(0.5)
        timer.stop()
        ok = turn.text == "".join(tokens)
        first, last = svc.chunk_times[0], svc.chunk_times[-1]
    return {
        "tokens": n_tokens,
        "target_rate": rate,
        "achieved_rate": (len(tokens) - 1) / (last - first),
        "stream_s": stream_s,
        "text_complete": ok,
        "lag_ms": [x * 1000 for x in lags],
        "key_ms": [landed * 1000 for landed, _ in keys],
        "key_seen_ms": [seen * 1000 for _, seen in keys],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=500.0, help="tokens per second")
    args = ap.parse_args()
    r = asyncio.run(run(args.tokens, args.rate))
    lag, key = r["lag_ms"], r["key_ms"]
    print(f"streamed {r['tokens']:,} tokens at {r['achieved_rate']:.0f} tok/s (target {r['target_rate']:.0f}) "
          f"in {r['stream_s']:.1f} s; full text rendered: {r['text_complete']}")
    print(f"timer lag (20 ms timer, {len(lag)} ticks): median {statistics.median(lag):.1f} ms, "
          f"p95 {pct(lag, 95):.1f} ms, p99 {pct(lag, 99):.1f} ms, max {max(lag):.1f} ms")
    for label, ms in (("in the editor", key), ("seen there by a 1 ms poll", r["key_seen_ms"])):
        print(f"key {label} ({len(ms)} presses during the stream): median {statistics.median(ms):.1f} ms, "
              f"p95 {pct(ms, 95):.1f} ms, p99 {pct(ms, 99):.1f} ms, max {max(ms):.1f} ms")


if __name__ == "__main__":
    main()
