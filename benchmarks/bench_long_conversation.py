"""A long conversation in the app: opening it, scrolling it, streaming into it, and memory.

A real trace database (SQLite, under a temporary SKILLCHAT_HOME) is seeded with one conversation
of N turns through the store's own write functions (message, routed turn start with a real core
decision, finish with the answer and usage, a rating on every third turn). Answers mix prose,
lists, code blocks and tables, 1-4 KB each. The real app then runs headless (App.run_test, which
lays out and renders every frame but discards the output) over the real ChatService in demo mode:

* open: `/history` → resume, timed from the call until the app is idle with the last turn laid
  out, `--opens` times;
* scroll: page-up from the bottom `--pages` times (earlier turns load as the top is reached),
  each step timed until the app is idle again, with a 20 ms timer's lag recorded throughout;
* stream: `--streams` more turns, one after another, whose demo answer (through litellm's
  mock_response, the real streaming path) is a long Markdown answer, while a 20 ms timer records
  its lag and a keystroke is queued every 250 ms the way the terminal driver queues one (time
  until the character is in the prompt, and until a task polling every millisecond sees it
  there: see bench_ui_stream.key_to_prompt), samples pooled over the turns, the screen layouts
  counted (through Textual's layout signal), the timer's lag from each answer's end to half a
  second after it measured apart, the timer's worst lag from Enter to each answer's first token,
  and Python's full garbage collections timed; then the same measures
  with the app idle, as a baseline for what the machine's load alone costs;
* memory: `--add` more turns sent one after another, the process's resident memory and the
  number of widgets on the chat screen sampled every 10 turns.

Usage:  python benchmarks/bench_long_conversation.py [--turns 500] [--opens 5] [--pages 120]
                                                      [--tokens 3000] [--streams 3] [--add 40] [--baseline-s 40]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "ui")]

from bench_ui_stream import key_to_prompt, pct  # noqa: E402  (benchmarks/, the script's own folder)

PROSE = ("The trade-off here is between latency and throughput: batching amortises the fixed cost of each call, "
         "but every item then waits for the slowest one in its batch. ")
CODE = ("```python\ndef merge(a, b):\n    out, i, j = [], 0, 0\n    while i < len(a) and j < len(b):\n"
        "        if a[i] <= b[j]:\n            out.append(a[i]); i += 1\n        else:\n"
        "            out.append(b[j]); j += 1\n    return out + a[i:] + b[j:]\n```\n\n")
TABLE = ("| option | latency | cost | notes |\n|---|---|---|---|\n| batch of 1 | 40 ms | $0.010 | simplest |\n"
         "| batch of 8 | 95 ms | $0.004 | good default |\n| batch of 64 | 610 ms | $0.002 | only offline |\n\n")
QUESTIONS = ["How should I batch these requests?", "Write a merge function for sorted lists",
             "Compare the three options in a table", "Explain the result in plain words",
             "What is the derivative of x^2 sin x?", "Fix this KeyError in my script"]


def long_answer(i: int, size: int) -> str:
    """About `size` characters of Markdown, varied by i: headings, prose, lists, code and tables."""
    parts = [f"## Part {i}\n\n"]
    k = i
    while sum(map(len, parts)) < size:
        k += 1
        choice = k % 4
        if choice == 0:
            parts.append(PROSE * (1 + k % 3) + "\n\n")
        elif choice == 1:
            parts.append(CODE)
        elif choice == 2:
            parts.append(TABLE)
        else:
            parts.append("- first, measure where the time goes\n- then change one thing\n- and measure again\n\n")
    return "".join(parts).rstrip() + "\n"


def seed(store, n_turns: int) -> int:  # noqa: ANN001
    """One demo conversation of n_turns, written as the service writes a turn."""
    from skillchat import handbooks
    from skillchat.core import Message, Router
    from skillchat.events import Attempt

    router = Router(handbooks.load("general"))
    rng = random.Random(3)
    cid = store.new_conversation(demo=True)
    for i in range(n_turns):
        q = QUESTIONS[i % len(QUESTIONS)] + f" (#{i + 1})"
        d = router.route([Message("user", q)], rng=rng)
        mid = store.add_message(cid, "user", q)
        tid = store.start_turn(cid, mid, d, demo=True)
        store.finish_turn(tid, "answered", attempts=[Attempt(d.chosen, d.winner.model, True, latency_s=1.2)],
                          agent_id=d.chosen, model=d.winner.model, text=long_answer(i, 1000 + (i * 337) % 3000),
                          prompt_tokens=300 + i, completion_tokens=600, cost_usd=0.002, cost_known=True,
                          latency_s=1.2, ttft_s=0.3)
        if i % 3 == 0:
            store.rate(tid, 1.0 if i % 2 else 0.0)
    return cid


def summary(label: str, ms: list[float]) -> str:
    if not ms:
        return f"{label}: no samples"
    return (f"{label} (n={len(ms)}): median {statistics.median(ms):.1f} ms, p95 {pct(ms, 95):.1f} ms, "
            f"p99 {pct(ms, 99):.1f} ms, max {max(ms):.1f} ms")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class LagMeter:
    """A 20 ms interval timer on the app's loop, recording how late each tick fires."""

    def __init__(self, app, interval: float = 0.02, during=lambda: True) -> None:  # noqa: ANN001
        self.app, self.interval, self.lags = app, interval, []
        self.during, self.after = during, []  # ticks once during() is false go to after
        self._expected = 0.0
        self._timer = None

    def __enter__(self) -> LagMeter:
        self._expected = time.perf_counter() + self.interval
        self._timer = self.app.set_interval(self.interval, self._tick)
        return self

    def _tick(self) -> None:
        now = time.perf_counter()
        (self.lags if self.during() else self.after).append(max(0.0, now - self._expected) * 1000)
        self._expected = now + self.interval

    def __exit__(self, *exc: object) -> None:
        self._timer.stop()


async def run(args: argparse.Namespace) -> None:
    from conftest import demo_factory

    from skillchat.config import Config
    from skillchat.providers import demo as demo_script
    from skillchat.store import TraceStore
    from skillchat.ui.app import SkillchatApp

    store = TraceStore.open()
    t0 = time.perf_counter()
    cid = seed(store, args.turns)
    store.close()
    print(f"seeded a conversation of {args.turns} turns through the store in {time.perf_counter() - t0:.1f} s")

    # The streamed answers: long Markdown instead of the demo's few lines (still through litellm).
    streamed = long_answer(10_001, args.tokens * 4)
    demo_script.answer = lambda hb, decision, agent_id, question: streamed
    chunk_delay = 1.0 / (args.rate / 0.75)  # litellm's mock chunks are 3 characters, ~0.75 tokens

    app = SkillchatApp(Config(), demo=True, service_factory=demo_factory(chunk_delay_s=chunk_delay))
    async with app.run_test(size=(100, 30)) as pilot:
        while app.service is None or app.providers == "loading":
            await pilot.pause(0.05)
        chat = app.chat
        gc.collect()
        rss_before = rss_mb()

        # --- open ---------------------------------------------------------------------------
        opens: list[float] = []
        for _ in range(args.opens):
            await chat.new_conversation()
            await pilot.pause()
            t0 = time.perf_counter()
            await app.resume(cid)
            # Wait until every answer is laid out (drawn, unless the reading thread drew it).
            while any(t.text and not t.query_one(".answer").size.height for t in chat.transcript.turns()):
                await pilot.pause(0.001)
            await pilot.pause()
            last = chat.transcript.last_turn()
            assert last is not None and last.region.height > 0, "the last turn is not on screen"
            opens.append((time.perf_counter() - t0) * 1000)
        widgets = len(list(chat.walk_children()))
        print(summary(f"open the {args.turns}-turn conversation", opens) + f"; {widgets:,} widgets mounted, "
              f"{len(chat.transcript.turns())} answers")

        # --- scroll -------------------------------------------------------------------------
        steps: list[float] = []
        transcript = chat.transcript
        with LagMeter(app) as lag:
            for _ in range(args.pages):
                t0 = time.perf_counter()
                transcript.scroll_page_up(animate=False)
                await pilot.pause()
                steps.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(0.03)
        reached = len(transcript.turns())
        print(summary(f"page up x{args.pages}", steps) + f"; {reached} answers mounted after it")
        print(summary("  timer lag while scrolling", lag.lags))

        # --- stream -------------------------------------------------------------------------
        prompt = chat.prompt

        async def type_while(going) -> tuple[list[float], list[float]]:  # noqa: ANN001
            """A key queued every 250 ms as the terminal driver queues one: ms until it is in the prompt,
            and until a 1 ms poll sees it there (see key_to_prompt)."""
            landed: list[float] = []
            seen: list[float] = []
            while going():
                await asyncio.sleep(0.25)
                if going():
                    in_prompt, polled = await key_to_prompt(app, prompt)
                    landed.append(in_prompt * 1000)
                    seen.append(polled * 1000)
            return landed, seen

        # Several answers, one after another, their samples pooled: a p99 of one answer's ~80 keys is
        # its second-slowest key.
        keys, keys_seen, lags, end_lags, stream_s, complete = [], [], [], [], 0.0, 0
        start_stalls: list[float] = []  # per answer: the timer's worst lag from Enter to the first token
        layouts = [0]  # screen layouts while streaming: each arranges every mounted widget
        streaming = [False]
        full_gc: dict[bool, list[float]] = {True: [], False: []}  # ms of each full collection, by streaming or not
        gc_started = [0.0]

        def gc_timed(phase: str, info: dict) -> None:
            if info["generation"] == 2:
                if phase == "start":
                    gc_started[0] = time.perf_counter()
                else:
                    full_gc[streaming[0]].append((time.perf_counter() - gc_started[0]) * 1000)

        gc.callbacks.append(gc_timed)
        app.screen.screen_layout_refresh_signal.subscribe(
            chat, lambda screen: layouts.__setitem__(0, layouts[0] + streaming[0]), immediate=True)
        for _ in range(args.streams):
            transcript.scroll_end(animate=False)
            await pilot.pause()
            prompt.focus()
            prompt.clear()
            prompt.insert("Write me something long")
            previous = transcript.last_turn()
            # The first message after opening counts the whole conversation's tokens for routing.
            with LagMeter(app) as starting:
                await pilot.press("enter")
                while transcript.last_turn() is previous or transcript.last_turn().status != "streaming":
                    await pilot.pause(0.005)
            start_stalls.append(max(starting.lags, default=0.0))
            turn = transcript.last_turn()
            t0 = time.perf_counter()
            streaming[0] = True
            # The moment the answer ends, not when the key loop next looks: what runs then is the end's.
            chat.watch(turn, "status", lambda status: streaming.__setitem__(0, status == "streaming"), init=False)
            with LagMeter(app, during=lambda: streaming[0]) as lag:
                landed, seen = await type_while(lambda turn=turn: turn.status == "streaming")
                keys += landed
                keys_seen += seen
                stream_s += time.perf_counter() - t0
                await asyncio.sleep(0.5)  # the end of the turn: last flush, stats, rating buttons
            lags += lag.lags
            end_lags += lag.after
            await pilot.pause()
            complete += turn.text == streamed and turn.status == "done"
        print(f"streamed {args.streams} answers of {len(streamed):,} characters (~{args.tokens:,} tokens, "
              f"{args.streams * len(streamed) / stream_s:.0f} chars/s) in {stream_s:.1f} s; "
              f"final text complete: {complete} of {args.streams}; {layouts[0] / args.streams:.0f} screen layouts "
              f"per answer")
        gc.callbacks.remove(gc_timed)
        print("  timer's worst lag from Enter to the first token, per answer (the first is the first message "
              "after opening): " + ", ".join(f"{ms:.0f} ms" for ms in start_stalls))
        print(summary("  timer lag while streaming", lags))
        print(summary("  key to prompt while streaming", keys))
        print(summary("  key seen in the prompt by a 1 ms poll while streaming", keys_seen))
        print(summary("  timer lag from each answer's end to 0.5 s after it", end_lags))
        for during, label in ((True, "while streaming"), (False, "after the answers")):
            ms = full_gc[during]
            print(f"  full garbage collections {label}: {len(ms)}" + (f", {max(ms):.0f} ms the longest" if ms else ""))
        # The same app doing nothing but taking keys, for as long, on the machine as loaded now: what
        # the machine alone costs (a shared machine delays any process now and then).
        await asyncio.sleep(1.0)
        idle_until = time.perf_counter() + min(stream_s, args.baseline_s)
        with LagMeter(app) as idle_lag:
            idle_keys, idle_seen = await type_while(lambda: time.perf_counter() < idle_until)
        print(summary("  baseline, the app idle: timer lag", idle_lag.lags))
        print(summary("  baseline, the app idle: key to prompt", idle_keys))
        print(summary("  baseline, the app idle: key seen by a 1 ms poll", idle_seen))
        print(f"  streaming / idle p99: timer lag {pct(lags, 99) / max(pct(idle_lag.lags, 99), 0.1):.1f}x, "
              f"key {pct(keys, 99) / max(pct(idle_keys, 99), 0.1):.1f}x; load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")

        # --- memory -------------------------------------------------------------------------
        prompt.clear()
        app.service.chunk_delay_s = 0.0
        gc.collect()
        samples = [(0, rss_mb(), len(list(chat.walk_children())))]
        for i in range(1, args.add + 1):
            prompt.insert(f"One more question #{i}")
            previous = transcript.last_turn()
            await pilot.press("enter")
            while transcript.last_turn() is previous or chat.busy:
                await pilot.pause(0.01)
            if i % 10 == 0:
                await pilot.pause()
                gc.collect()
                samples.append((i, rss_mb(), len(list(chat.walk_children()))))
        print(f"memory as turns are added (RSS at start-up, before opening: {rss_before:.0f} MB):")
        for i, mb, w in samples:
            print(f"  +{i:>3} turns: RSS {mb:6.1f} MB, {w:,} widgets on the chat screen")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=500)
    ap.add_argument("--opens", type=int, default=5)
    ap.add_argument("--pages", type=int, default=120, help="page-ups from the bottom")
    ap.add_argument("--tokens", type=int, default=3000, help="length of the streamed answer")
    ap.add_argument("--rate", type=float, default=200.0, help="tokens per second while streaming")
    ap.add_argument("--streams", type=int, default=3, help="answers streamed one after another, samples pooled")
    ap.add_argument("--add", type=int, default=40, help="turns added one by one for the memory figure")
    ap.add_argument("--baseline-s", type=float, default=40.0, help="seconds of the idle baseline after streaming")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["SKILLCHAT_HOME"] = home
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
