"""`skillchat ask "question"`: one routed turn from the shell.

On a terminal the answer streams to stdout as it arrives; when stdout is a file or a pipe, only the
answer that finished is written there, whole (an agent that fails half-way leaves no text above the
fallback's answer; a turn that never finishes writes nothing, and what arrived is kept in the
database). Everything about the answer, the routing line, fallbacks and the turn id to rate it by,
goes to stderr. Exit status: 0 answered, 1 no agent could answer,
2 refused (budget, no usable agent) or bad input. SIGTERM and SIGHUP stop it like Ctrl+C: what
arrived of the answer is kept (exit status 128 + the signal's number).

What is printed is cleaned of terminal escape sequences and control characters (an answer could
otherwise set the clipboard or the window title, or clear the screen); the stored answer is exact.
"""

from __future__ import annotations

import argparse
import sys

from skillchat.commands import row_id

# What ask prints on stderr about a turn: a provider's error (an HTML page, say) is cut to
# MAX_ERROR characters, any whole line to MAX_LINE.
MAX_ERROR, MAX_LINE = 500, 1000


def _lam(text: str) -> float:
    from skillchat.config import lambda_arg  # imported here: `skillchat --help` stays fast

    return lambda_arg(text)


def _seed(text: str) -> int:
    from skillchat.config import whole_arg
    from skillchat.errors import INT64_MAX

    return whole_arg(-INT64_MAX - 1, INT64_MAX)(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="?", default="-", help="the question; '-' or nothing reads it from stdin")
    p.add_argument("--demo", action="store_true", help="scripted demo agents: no provider, no key, no cost")
    p.add_argument("--model", "-m", dest="pin", metavar="AGENT", help="answer with this agent instead of routing")
    p.add_argument("--handbook", "-H", metavar="NAME", help="handbook NAME or NAME@VERSION (default: the active one)")
    p.add_argument("--lambda", "-l", dest="lam", type=_lam, metavar="X", help="cost weight for this turn, 0 to 10")
    p.add_argument("--conversation", "-c", type=row_id, metavar="ID", help="continue this conversation")
    p.add_argument("--greedy", action="store_true", help="pick the best expected score instead of sampling")
    p.add_argument("--seed", type=_seed, help="seed the exploration draw")
    p.add_argument("--quiet", "-q", action="store_true", help="only the answer: nothing on stderr unless it fails")


def run(args: argparse.Namespace) -> int:
    import asyncio

    text, bad = question(args.text)
    if not text.strip():
        print("skillchat: nothing to ask (give the question as an argument or on stdin)", file=sys.stderr)
        return 2
    if bad and not args.quiet:
        print(f"skillchat: the question is not valid UTF-8: {bad} byte{'s' if bad != 1 else ''} that could not be "
              "read became \ufffd (U+FFFD); the rest is asked as it is", file=sys.stderr, flush=True)
    return asyncio.run(_ask(args, text))


def question(arg: str) -> tuple[str, int]:
    """The question from the argument (or stdin for '-'), and how many of its bytes were not UTF-8.

    Bytes that are not UTF-8 (a file in another encoding, a binary paste) each become U+FFFD
    rather than failing the turn: the rest of the question is asked and kept, as typed. They are
    read as lone surrogates first (argv always arrives that way), which could not be stored.
    """
    import os
    import re

    if arg == "-":
        stream = getattr(sys.stdin, "buffer", None)
        text = stream.read().decode("utf-8", "surrogateescape") if stream is not None else sys.stdin.read()
    else:
        text = arg
        if re.search("[\udc80-\udcff]", text):  # undecodable argv bytes: back to bytes, read as UTF-8
            text = os.fsencode(text).decode("utf-8", "surrogateescape")
    text, bad = re.subn("[\ud800-\udfff]", "\ufffd", text)
    return text, bad


async def _ask(args: argparse.Namespace, text: str) -> int:
    import asyncio
    import contextlib
    import random

    from skillchat import config, stopping
    from skillchat.events import AgentFailed, TokenChunk, TurnFailed, TurnFinished, TurnStarted
    from skillchat.render import decision_line, usd
    from skillchat.service import ChatService
    from skillchat.text_safety import StreamCleaner, clean, one_line

    cfg = config.load()
    demo = True if args.demo else cfg.demo  # never fall into demo silently when a script asks a question
    svc = ChatService.create(cfg, demo=demo, rng=random.Random(args.seed),
                             chunk_delay_s=None if sys.stdout.isatty() else 0.0)

    # Answers and errors come from outside: what reaches the terminal is cleaned of escape
    # sequences (the stored answer keeps them), and provider errors are cut to one short line.
    answer = StreamCleaner()
    live = sys.stdout.isatty()
    at_line_start = True

    def out(text: str) -> None:
        nonlocal at_line_start
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
            at_line_start = text.endswith("\n")

    def say(line: str) -> None:
        print(one_line(line, MAX_LINE), file=sys.stderr, flush=True)

    err = (lambda line: None) if args.quiet else say
    stopper = _stop_on_signals(svc)
    try:
        if args.handbook:
            svc.use_handbook(args.handbook, record=False)
        if args.lam is not None:
            svc.set_lambda(args.lam)
        if args.greedy:
            svc.policy = "greedy"
        if args.pin:
            svc.pin(args.pin)
        status = 1
        streamed = False  # text of the current attempt is on stdout
        async with contextlib.aclosing(svc.run_turn(args.conversation, text)) as events:
            async for ev in events:
                if isinstance(ev, TurnStarted):
                    err(("[demo] " if ev.demo else "") + decision_line(ev.decision, svc.handbook))
                elif isinstance(ev, TokenChunk):
                    if live:  # elsewhere the answer is written whole once it has finished
                        out(answer.feed(ev.text))
                        streamed = True
                elif isinstance(ev, AgentFailed):
                    then = f"; trying {ev.next_agent}, whose answer starts afresh" if ev.next_agent else ""
                    out(answer.end())
                    if streamed:  # end the cut-off text's line; the next answer starts on its own
                        out("\n")
                        streamed = False
                    say(f"skillchat: {ev.agent_id} failed ({ev.kind}): {one_line(ev.error, MAX_ERROR)}{then}")
                elif isinstance(ev, TurnFinished):
                    out(answer.end() if live else clean(ev.text))
                    if not at_line_start:
                        out("\n")
                    if ev.note:
                        err(f"skillchat: {ev.note}")
                    if ev.budget_warning:
                        say(f"skillchat: budget: {ev.budget_warning}")
                    ttft = f", first token {ev.ttft_s:.2f} s" if ev.ttft_s is not None else ""
                    err(f"turn {ev.turn_id}: {ev.agent_id}, {ev.prompt_tokens}+{ev.completion_tokens} tokens, "
                        f"{usd(ev.cost_usd)}{'' if ev.cost_known else '?'}, {ev.latency_s:.2f} s{ttft}"
                        f"{' (demo)' if svc.demo else ''}. Rate it: skillchat rate {ev.turn_id} up|down")
                    status = 0
                elif isinstance(ev, TurnFailed):
                    out(answer.end())
                    say(f"skillchat: {one_line(ev.error, MAX_ERROR)}")
                    if ev.kind == "no_agent" and not svc.demo:
                        say("skillchat: to try skillchat without a provider key, add --demo (scripted answers)")
                    if ev.turn_id is not None:
                        err(f"turn {ev.turn_id} (your message is saved in conversation {ev.conversation_id})")
                    status = 2 if ev.kind in ("refused", "no_agent") else 1
        return status
    except asyncio.CancelledError:
        if stopper.signum is None:
            raise
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print(f"\nskillchat: stopped by {stopping.name(stopper.signum)}; what arrived of the answer is saved",
                  file=sys.stderr, flush=True)
        return stopping.exit_code(stopper.signum)
    finally:
        stopper.uninstall()
        svc.close()


def _stop_on_signals(svc):  # type: ignore[no-untyped-def]
    """SIGTERM/SIGHUP cancel this turn as Ctrl+C does (the service writes what arrived)."""
    import asyncio

    from skillchat import stopping

    task = asyncio.current_task()

    def stop(signum: int) -> None:
        svc.cancel_reason = f"interrupted by {stopping.name(signum)}"
        if task is not None:
            task.cancel()

    return stopping.Stopper(stop).install()
