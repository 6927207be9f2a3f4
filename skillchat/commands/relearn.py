"""`skillchat relearn`: rebuild the active handbook from your rated history, then ask before using it.

Arguments and output only: skillchat/relearning.py does the work (core/relearn.py computes).

Evidence is recomputed from the trace store (the log is the source of truth), skills may be split,
merged or discovered, the result is compared with the current handbook on your logged turns
(off-policy), and written as a new version. It becomes active only when you say so (`--yes`), or
with `--auto` when it is not estimated to be worse. Ctrl-C cancels with nothing written.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

from skillchat.money import usd


def _lam(text: str) -> float:
    from skillchat.config import lambda_arg  # imported here: `skillchat --help` stays fast

    return lambda_arg(text)


def _half_life(text: str) -> float:
    from skillchat.config import number_arg

    return number_arg(0.0, 1e6, lo_open=True)(text)  # days: past a million, ratings never age anyway


def _min_split(text: str) -> int:
    from skillchat.config import whole_arg

    return whole_arg(2, 10**9)(text)


def _seed(text: str) -> int:
    from skillchat.config import whole_arg
    from skillchat.errors import INT64_MAX

    return whole_arg(-INT64_MAX - 1, INT64_MAX)(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--handbook", "-H", metavar="REF", help="NAME or NAME@VERSION to relearn (default: the active one)")
    p.add_argument("--half-life", type=_half_life, metavar="DAYS",
                   help="let old ratings count less: a rating DAYS old counts half (follows silent model changes)")
    p.add_argument("--no-evolve", action="store_true", help="only recount evidence; never split, merge or add skills")
    p.add_argument("--min-split", type=_min_split, metavar="N", default=None,
                   help="rated turns per side an agent needs before a skill may split (default 12)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the text clustering (default 0)")
    p.add_argument("--lambda", "-l", dest="lam", type=_lam, metavar="X",
                   help="cost weight for the comparison, 0 to 10 (default: config)")
    p.add_argument("--policy", choices=("thompson", "greedy"), default="thompson",
                   help="routing policy the comparison assumes (default: thompson, as the app routes)")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--yes", "-y", action="store_true", help="activate the new version without asking")
    act.add_argument("--auto", action="store_true", help="activate it only if it is not estimated to be worse")
    act.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    act.add_argument("--demo", action="store_true",
                     help="relearn from the demo's ratings too, as /relearn in demo mode; a dry run: "
                          "demo ratings never reach a handbook file or the config")
    p.add_argument("--force", action="store_true", help="write a new version even when nothing changed")
    p.add_argument("--name-with", metavar="AGENT",
                   help="name discovered skills with this agent of the pool (costs a little; you are asked first)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")


class ProgressBar:
    """One line on stderr, redrawn in place; silent when stderr is not a terminal."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0
        self._stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if stage == self._stage and now - self._last < 0.08 and done < total:
            return
        self._stage, self._last = stage, now
        width = 30
        frac = 0.0 if total <= 0 else min(1.0, done / total)
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        self.stream.write(f"\r  {stage:<9} [{bar}] {done:>7,}/{total:<7,}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from skillchat import config, relearning
    from skillchat.core.relearn import DEFAULT_MIN_SPLIT, RelearnCancelled
    from skillchat.store import TraceStore

    cfg = config.load()
    min_split = DEFAULT_MIN_SPLIT if args.min_split is None else args.min_split
    store = TraceStore.open()
    bar = ProgressBar()
    log: Any = store
    if args.demo:
        from skillchat.service.demo import DemoLog  # the store as demo mode reads it: demo turns count, nothing is written

        log = DemoLog(store)
        args.dry_run = True
        print("skillchat: demo: relearning from the demo's ratings too; nothing will be written", file=sys.stderr)
    try:
        ref = args.handbook or relearning.active_ref(cfg, store)
        namer = None
        if args.name_with:
            namer = _llm_namer(cfg, store, ref, args, min_split)
            if namer is False:
                return 1
        try:
            outcome = relearning.run(
                cfg, log, ref=ref, half_life_days=args.half_life, evolve=not args.no_evolve, min_split=min_split,
                seed=args.seed, lam=args.lam, policy=args.policy, save=not args.dry_run, force=args.force,
                namer=namer, progress=bar, prices=_prices(),
            )
        except (KeyboardInterrupt, RelearnCancelled):
            bar.close()
            print("skillchat: relearn cancelled; nothing was written", file=sys.stderr)
            return 130
        bar.close()
        return _report(cfg, outcome, args, namer)
    finally:
        store.close()


def _prices() -> Any:
    from skillchat.pricing import LitellmPriceBook

    return LitellmPriceBook()


def _report(cfg: Any, o: Any, args: argparse.Namespace, namer: Any) -> int:
    from skillchat import relearning

    activated = None
    reason = ""
    if not o.unchanged and not args.dry_run:
        if args.yes:
            activated, reason = True, "--yes"
        elif args.auto:
            activated, reason = relearning.auto_decision(o)
        elif sys.stdin.isatty() and not args.json:
            _print_human(o, namer, None, "")
            answer = input(f"Activate {o.ref} now? [y/N] ").strip().lower()
            activated, reason = answer in ("y", "yes"), "you said so" if answer in ("y", "yes") else "you said no"
            if activated:
                relearning.activate(cfg, o.ref)
                print(f"Activated {o.ref}. `skillchat handbook rollback` goes back to {o.base.ref}.")
            else:
                print(f"Kept {o.base.ref}. `skillchat handbook use {o.ref}` activates the new version later.")
            return 0
        else:
            activated, reason = False, "not asked (no terminal); use --yes or --auto"
        if activated:
            relearning.activate(cfg, o.ref)
    if args.json:
        print(json.dumps(_as_json(o, activated, reason, namer), indent=2, default=str))
        return 0
    _print_human(o, namer, activated, reason)
    return 0


def _print_human(o: Any, namer: Any, activated: bool | None, reason: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from skillchat import relearning
    from skillchat.text_safety import plain

    con = Console(highlight=False, soft_wrap=True)
    k = o.counts
    if o.unchanged:
        con.print(plain(o.summary))
        return
    con.print(f"[bold]{o.base.ref} -> {o.handbook.ref}[/]  evidence recomputed from {k.used:,} of {k.turns:,} rated turns"
              + (f", half-life {k.half_life_days:g} days ({k.observations:,.1f} effective)" if k.half_life_days else ""))
    counted = [(n, getattr(k, n)) for n in ("replaced", "unknown_agent", "no_skill", "retagged", "pinned")]
    extra = [f"{n.replace('_', ' ')} {v:,}" for n, v in counted if v]
    if extra:
        con.print("  " + ", ".join(extra), style="dim")
    if k.costs_kept:
        con.print("  no logged usage: cost statistics kept from the base version", style="dim")
    if o.changes:
        t = Table(title="skill changes", title_justify="left", box=None, pad_edge=False)
        t.add_column("change")
        t.add_column("skills", overflow="fold")
        t.add_column("why", overflow="fold")
        for c in o.changes:
            what = ", ".join(c.created) if c.created else ", ".join(c.skills)
            if c.kind == "merge":
                what = f"{c.skills[1]} -> {c.skills[0]}"
            t.add_row(c.kind, plain(what), plain(c.rationale))  # names may come from a model
        con.print(t)
    else:
        con.print("No skill was split, merged or discovered.", style="dim")
    if namer is not None and getattr(namer, "calls", None):
        con.print(f"Named {namer.calls} skill(s) with a model for {usd(namer.cost_usd)}.", style="dim")
    e = o.evaluation
    if e is not None:
        from skillchat.core.ope import signed

        t = Table(title=f"estimated on your logged turns ({e.policy} routing, lambda {e.lam:g})", title_justify="left",
                  box=None, pad_edge=False)
        for col, just in (("", "left"), ("current", "right"), ("new", "right"), ("change", "right")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        if e.candidate.n:
            t.add_row("satisfaction (doubly robust)", f"{e.current.dr.value:.3f}", f"{e.candidate.dr.value:.3f}",
                      f"{signed(e.delta.value)} [dim](95% CI {signed(e.delta.low)} to {signed(e.delta.high)})[/]")
            t.add_row("satisfaction (self-normalised IPS)", f"{e.current.snips.value:.3f}", f"{e.candidate.snips.value:.3f}",
                      f"{signed(e.candidate.snips.value - e.current.snips.value)}")
            if math.isfinite(e.delta_cost.value):
                t.add_row("cost per turn (doubly robust)", usd(e.current.cost_dr.value), usd(e.candidate.cost_dr.value),
                          ("+" if e.delta_cost.value > 0 else "") + usd(e.delta_cost.value))
            t.add_row("effective sample / logged turns", f"{e.current.ess:,.0f}", f"{e.candidate.ess:,.0f}",
                      f"of {e.candidate.n:,}")
            con.print(t)
        else:
            con.print("Estimated effect: " + relearning.evaluation_text(e))
        if e.skipped:
            con.print("  left out: " + ", ".join(f"{v:,} {k}" for k, v in e.skipped.items()), style="dim")
        same = relearning.same_as_now(o)
        if same:
            con.print(same, style="yellow")
    if o.path is not None:
        con.print(plain(f"Saved {o.handbook.ref} to {o.path}"))
    elif not o.unchanged:
        con.print("Dry run: nothing was written.", style="yellow")
    if activated is True:
        con.print(f"[bold green]Activated {o.ref}[/] ({reason}). `skillchat handbook rollback` goes back to {o.base.ref}.")
    elif activated is False:
        con.print(f"Kept {o.base.ref} ({reason}). `skillchat handbook use {o.ref}` activates the new version.")


def _as_json(o: Any, activated: bool | None, reason: str, namer: Any) -> dict[str, Any]:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return clean({
        "from": o.base.ref,
        "to": o.handbook.ref,
        "unchanged": o.unchanged,
        "path": str(o.path) if o.path else None,
        "counts": o.counts.to_dict(),
        "changes": [c.to_dict() for c in o.changes],
        "evaluation": o.evaluation.to_dict() if o.evaluation is not None else None,
        "activated": activated,
        "reason": reason,
        "summary": o.summary,
        "naming_cost_usd": getattr(namer, "cost_usd", None),
    })


def _llm_namer(cfg: Any, store: Any, ref: str, args: argparse.Namespace, min_split: int) -> Any:
    """An LLMNamer backed by one agent of the pool, after showing its cost and asking."""
    import asyncio

    from skillchat import relearning
    from skillchat.core.ports import Message
    from skillchat.providers.detect import detect
    from skillchat.providers.litellm_client import CallStats, LitellmProvider
    from skillchat.providers.pool import build_pool, with_config_agents
    from skillchat.text_safety import clean
    from skillchat.tokens import TiktokenCounter

    hb = with_config_agents(relearning.load_base(ref, cfg), cfg)
    if args.name_with not in hb.agents:
        print(f"skillchat: no agent {args.name_with!r} in {hb.ref} (have: {', '.join(hb.agents)})", file=sys.stderr)
        return False
    pool = build_pool(hb, cfg, detect(None, probe=True))
    ep = pool.endpoints.get(args.name_with)
    if ep is None:
        print(f"skillchat: {args.name_with} cannot be called here (no key, server or proxy for it)", file=sys.stderr)
        return False
    n = relearning.count_discoveries(cfg, store, ref, half_life_days=args.half_life, evolve=not args.no_evolve,
                                     min_split=min_split, seed=args.seed)
    if n == 0:
        print("No new skill would be discovered, so nothing needs naming.", file=sys.stderr)
        return None
    agent = hb.agents[args.name_with]
    price = agent.price or _prices().price(agent.model)
    counter = TiktokenCounter()
    prompt_tokens = counter.count([Message("user", relearning.NAMING_PROMPT + " x" * 400)])
    each = (prompt_tokens * price.input + 120 * price.output) if price is not None else float("nan")
    cost = "unknown price" if price is None else f"about ${each * n:.5f} in all"
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"skillchat: naming {n} skill(s) with {clean(agent.name)} costs {cost}; rerun with --yes to allow it",
                  file=sys.stderr)
            return False
        answer = input(f"Name {n} new skill(s) with {clean(agent.name)}: {n} call(s), {cost}. Allow? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            return None
    provider = LitellmProvider(timeout_s=cfg.timeout_s, token_counter=counter)

    def complete(prompt: str) -> tuple[str, float]:
        stats = CallStats()

        async def go() -> None:
            async for _ in provider.stream(ep, [Message("user", prompt)], stats):
                pass

        asyncio.run(go())
        return stats.text, stats.cost_usd

    return relearning.LLMNamer(complete)
