"""`skillchat ask "question"`: one routed turn from the shell.

The answer streams to stdout (so it can be piped); everything about it, the routing line, fallbacks
and the turn id to rate it by, goes to stderr. Exit status: 0 answered, 1 no agent could answer,
2 refused (budget, no usable agent) or bad input. SIGTERM and SIGHUP stop it like Ctrl+C: what
arrived of the answer is kept (exit status 128 + the signal's number).
"""

from __future__ import annotations

import argparse
import sys


def _lam(text: str) -> float:
    from skillchat.config import lambda_arg  # imported here: `skillchat --help` stays fast

    return lambda_arg(text)


def _id(text: str) -> int:
    from skillchat.config import whole_arg
    from skillchat.errors import INT64_MAX

    return whole_arg(1, INT64_MAX)(text)


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
    p.add_argument("--conversation", "-c", type=_id, metavar="ID", help="continue this conversation")
    p.add_argument("--greedy", action="store_true", help="pick the best expected score instead of sampling")
    p.add_argument("--seed", type=_seed, help="seed the exploration draw")
    p.add_argument("--quiet", "-q", action="store_true", help="only the answer: nothing on stderr unless it fails")


def run(args: argparse.Namespace) -> int:
    import asyncio

    text = sys.stdin.read() if args.text == "-" else args.text
    if not text.strip():
        print("skillchat: nothing to ask (give the question as an argument or on stdin)", file=sys.stderr)
        return 2
    return asyncio.run(_ask(args, text))


async def _ask(args: argparse.Namespace, text: str) -> int:
    import asyncio
    import contextlib
    import random

    from skillchat import config, stopping
    from skillchat.events import AgentFailed, TokenChunk, TurnFailed, TurnFinished, TurnStarted
    from skillchat.render import decision_line, usd
    from skillchat.service import ChatService

    cfg = config.load()
    demo = True if args.demo else cfg.demo  # never fall into demo silently when a script asks a question
    svc = ChatService.create(cfg, demo=demo, rng=random.Random(args.seed),
                             chunk_delay_s=None if sys.stdout.isatty() else 0.0)
    err = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
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
        await svc.load_providers()
        status = 1
        streamed = False  # text of the current attempt is on stdout
        async with contextlib.aclosing(svc.run_turn(args.conversation, text)) as events:
            async for ev in events:
                if isinstance(ev, TurnStarted):
                    err(("[demo] " if ev.demo else "") + decision_line(ev.decision, svc.handbook))
                elif isinstance(ev, TokenChunk):
                    sys.stdout.write(ev.text)
                    sys.stdout.flush()
                    streamed = True
                elif isinstance(ev, AgentFailed):
                    then = f"; trying {ev.next_agent}, whose answer starts afresh" if ev.next_agent else ""
                    if streamed:  # end the cut-off text's line; the next answer starts on its own
                        print(file=sys.stdout, flush=True)
                        streamed = False
                    print(f"skillchat: {ev.agent_id} failed ({ev.kind}): {ev.error}{then}", file=sys.stderr, flush=True)
                elif isinstance(ev, TurnFinished):
                    if not ev.text.endswith("\n"):
                        sys.stdout.write("\n")
                    sys.stdout.flush()
                    if ev.note:
                        err(f"skillchat: {ev.note}")
                    if ev.budget_warning:
                        print(f"skillchat: budget: {ev.budget_warning}", file=sys.stderr)
                    ttft = f", first token {ev.ttft_s:.2f} s" if ev.ttft_s is not None else ""
                    err(f"turn {ev.turn_id}: {ev.agent_id}, {ev.prompt_tokens}+{ev.completion_tokens} tokens, "
                        f"{usd(ev.cost_usd)}{'' if ev.cost_known else '?'}, {ev.latency_s:.2f} s{ttft}"
                        f"{' (demo)' if svc.demo else ''}. Rate it: skillchat rate {ev.turn_id} up|down")
                    status = 0
                elif isinstance(ev, TurnFailed):
                    print(f"skillchat: {ev.error}", file=sys.stderr)
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
