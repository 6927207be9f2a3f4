"""`skillchat route "text"`: the routing decision for a message, without calling any model."""

from __future__ import annotations

import argparse
import json
import random


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="the message to route")
    p.add_argument("--handbook", "-H", metavar="NAME", help="handbook name, NAME@VERSION or a JSON file (default: the active one)")
    p.add_argument("--lambda", "-l", dest="lam", type=float, metavar="X", help="cost weight: 0 ignores cost, 1 weighs it heavily")
    p.add_argument("--greedy", action="store_true", help="pick the best expected score instead of sampling")
    p.add_argument("--seed", type=int, help="seed the exploration draw, for a reproducible choice")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")


def run(args: argparse.Namespace) -> int:
    from skillchat import config, handbooks
    from skillchat.core import Message, Router
    from skillchat.pricing import LitellmPriceBook
    from skillchat.tokens import TiktokenCounter

    cfg = config.load()
    hb = handbooks.load(args.handbook or cfg.handbook)
    lam = cfg.lam if args.lam is None else args.lam
    router = Router(hb, token_counter=TiktokenCounter(), prices=LitellmPriceBook())
    decision = router.route(
        [Message("user", args.text)],
        lam=lam,
        policy="greedy" if args.greedy or not cfg.explore else "thompson",
        rng=random.Random(args.seed),
    )
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2))
        return 0
    from rich.console import Console

    from skillchat.render import decision_table

    Console().print(decision_table(decision, hb))
    return 0
