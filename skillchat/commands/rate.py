"""`skillchat rate TURN_ID up|down|clear`: rate an answer later; a new rating replaces the old one.

Only the trace store is touched (fast, no provider code): the app and the next `ask` apply the
rating to the handbook when they start, from the log.
"""

from __future__ import annotations

import argparse

from skillchat.commands import row_id

VALUES = {"up": 1.0, "down": 0.0, "+": 1.0, "-": 0.0, "clear": None, "none": None}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("turn_id", type=row_id, help="the turn id `skillchat ask` printed")
    p.add_argument("value", choices=sorted(VALUES), metavar="up|down|clear", help="thumbs up, thumbs down, or remove")


def run(args: argparse.Namespace) -> int:
    from skillchat.store import TraceStore

    store = TraceStore.open()
    try:
        value = VALUES[args.value]
        old, _ = store.rate(args.turn_id, value, source="cli")
        turn = store.turn(args.turn_id)
        word = {1.0: "up", 0.0: "down", None: "unrated"}
        was = "" if old is None else f" (was {word.get(old, f'{old:.2f}')})"
        who = f" ({turn.agent_id}, {turn.mode})" if turn is not None else ""
        print(f"turn {args.turn_id}{who}: {word.get(value, value)}{was}")
    finally:
        store.close()
    return 0
