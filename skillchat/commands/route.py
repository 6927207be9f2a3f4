"""`skillchat route`: the routing decision for a message, a conversation or a batch, without calling any model.

    skillchat route "text"                     one message
    skillchat route --conversation FILE.json   one conversation ({"messages": [...]} or a bare list)
    skillchat route --batch FILE.jsonl --json  one conversation a line in, one decision a line out

A conversation is routed as its last user turn given everything before it: messages after the last
user message (its answer, say) are left out, since the router never saw them when that turn came.

A batch is read and checked whole before anything is routed, so a bad line (exit 2, one message
naming the file and line on stderr) leaves stdout empty: a script never gets half a batch that
looks complete. Decisions are then printed in input order and flushed one line at a time.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from skillchat.errors import SkillchatError

if TYPE_CHECKING:
    from skillchat.core.ports import Message

ROLES = ("user", "assistant", "system")


class InputError(SkillchatError):
    """A conversation or batch file that cannot be routed; the message names the file and where."""


def _lam(text: str) -> float:
    from skillchat.config import lambda_arg  # imported here: `skillchat --help` stays fast

    return lambda_arg(text)


def _seed(text: str) -> int:
    from skillchat.config import whole_arg
    from skillchat.errors import INT64_MAX

    return whole_arg(-INT64_MAX - 1, INT64_MAX)(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("Give exactly one of TEXT, --conversation or --batch. A conversation is routed as its last user "
                "turn. A batch is checked whole before anything is routed: a bad line is reported with its line "
                "number (exit 2) and nothing is printed.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("text", nargs="?", help="the message to route")
    what.add_argument("--conversation", "-c", metavar="FILE",
                      help='route the last user turn of a conversation: {"messages": [{"role", "content"}, ...]} '
                           "or a bare list of messages ('-' reads stdin)")
    what.add_argument("--batch", "-b", metavar="FILE",
                      help="route one conversation per line of a JSONL file ('-' reads stdin): one decision a line, in order")
    p.add_argument("--handbook", "-H", metavar="NAME",
                   help="handbook name, NAME@VERSION or a JSON file (default: the active one)")
    p.add_argument("--lambda", "-l", dest="lam", type=_lam, metavar="X",
                   help="cost weight, 0 to 10: 0 ignores cost, 1 weighs it heavily")
    p.add_argument("--greedy", action="store_true", help="pick the best expected score instead of sampling")
    p.add_argument("--seed", type=_seed,
                   help="seed the exploration draw (one generator for a whole batch), for reproducible choices")
    p.add_argument("--json", action="store_true", help="print the decision as JSON (with --batch: one compact line each)")
    p.add_argument("--demo", action="store_true",
                   help="route as the app in demo mode: with the demo's ratings too, and every agent eligible")


# --- reading conversations -------------------------------------------------------------------

def _name(source: str) -> str:
    from skillchat.text_safety import shown

    return "<stdin>" if source == "-" else shown(source, 200)


def _read(source: str) -> str:
    """The whole file (or stdin for '-') as text; unreadable input is an InputError naming it."""
    from skillchat.text_safety import os_reason

    name = _name(source)
    try:
        if source == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(source, "rb") as f:
                data = f.read()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a file") from None
    except OSError as e:
        raise InputError(f"{name}: cannot read it ({os_reason(e)})") from None
    try:
        # utf-8-sig: a byte-order mark some editors write is not part of the JSON.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(f"{name}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})") from None


def _loads(text: str, where: str, *, one_line: bool = False) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        at = f"column {e.colno}" if one_line else f"line {e.lineno}, column {e.colno}"
        raise InputError(f"{where}: not valid JSON: {e.msg} at {at}") from None
    except ValueError:  # int() refuses to read more than 4300 digits
        raise InputError(f"{where}: not valid JSON: a number too long to read") from None
    except RecursionError:
        # json's parser recurses once per nesting level; 200,000 '[' exhaust the stack.
        raise InputError(f"{where}: not valid input: nested too deeply") from None


def _messages(raw: Any, where: str, path: str) -> list[Message]:
    """Checked messages of one conversation, up to and including its last user message.

    `where` names the file (and line); `path` is the JSON path of the list, for the messages.
    """
    from skillchat.core.ports import Message

    if not isinstance(raw, list):
        raise InputError(f"{where}: {path}: expected a list of messages, got {_kind(raw)}")
    if not raw:
        raise InputError(f"{where}: {path}: no messages")
    out = []
    for i, m in enumerate(raw):
        at = f"{path}[{i}]"
        if not isinstance(m, dict):
            raise InputError(f'{where}: {at}: expected a message {{"role": ..., "content": ...}}, got {_kind(m)}')
        for key in ("role", "content"):
            if key not in m:
                raise InputError(f"{where}: {at}: missing {key!r}")
        role, content = m["role"], m["content"]
        if role not in ROLES:
            raise InputError(f"{where}: {at}.role: unknown role {_short(role)} (expected user, assistant or system)")
        if not isinstance(content, str):
            raise InputError(f"{where}: {at}.content: expected a string, got {_kind(content)}")
        out.append(Message(role, content))
    last_user = max((i for i, m in enumerate(out) if m.role == "user"), default=None)
    if last_user is None:
        raise InputError(f"{where}: {path}: no user message to route")
    if not out[last_user].content.strip():
        raise InputError(f"{where}: {path}[{last_user}].content: the last user message is empty")
    return out[: last_user + 1]


def _conversation(raw: Any, where: str, *, bare_list: bool) -> list[Message]:
    if bare_list and isinstance(raw, list):
        return _messages(raw, where, "$")
    if not isinstance(raw, dict):
        expected = 'an object {"messages": [...]} or a list of messages' if bare_list else 'an object {"messages": [...]}'
        raise InputError(f"{where}: expected {expected}, got {_kind(raw)}")
    if "messages" not in raw:
        raise InputError(f'{where}: missing "messages"')
    return _messages(raw["messages"], where, "$.messages")


def _kind(v: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(v), "a number" if isinstance(v, (int, float)) else type(v).__name__)


def _short(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False) if not isinstance(v, (dict, list)) else _kind(v)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class _Item:
    line: int
    messages: list[Message]


def read_batch(source: str) -> list[_Item]:
    """Every conversation of a JSONL batch, checked; the first bad line is an InputError naming it."""
    name = _name(source)
    items = []
    # Not splitlines(): it also splits at U+2028 and friends, which JSON strings may hold raw.
    for n, line in enumerate(_read(source).split("\n"), 1):
        if not line.strip():
            continue
        where = f"{name}:{n}"
        items.append(_Item(n, _conversation(_loads(line, where, one_line=True), where, bare_list=False)))
    return items


def read_conversation(source: str) -> list[Message]:
    name = _name(source)
    return _conversation(_loads(_read(source), name), name, bare_list=True)


# --- routing and printing --------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    from skillchat import config

    # Input first: a bad file is reported before the handbook or tokenizer is loaded.
    if args.batch is not None:
        batch = read_batch(args.batch)
    elif args.conversation is not None:
        messages = read_conversation(args.conversation)
    cfg = config.load()
    hb, exclude = _usable_handbook(cfg, args.handbook, demo=args.demo)
    route = _router(hb, lam=cfg.lam if args.lam is None else args.lam,
                    policy="greedy" if args.greedy else config.explore_policy(cfg.explore),
                    rng=random.Random(args.seed), exclude=exclude)

    if args.batch is not None:
        name = _name(args.batch)
        lines = _batch_lines(batch, route, name, hb, as_json=args.json)
        for text in lines:
            print(text, flush=True)
        return 0

    from skillchat.core.ports import Message

    where = _name(args.conversation)
    decision = route(messages, where) if args.text is None else route([Message("user", args.text)], None)
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2))
        return 0
    from rich.console import Console

    from skillchat.render import decision_table

    Console().print(decision_table(decision, hb))
    return 0


def _usable_handbook(cfg: Any, ref: str | None, *, demo: bool = False) -> tuple[Any, dict[str, str]]:
    """The handbook with the config's own agents, and the agents that cannot be called here (with
    why), as the app sees them. With none usable the app runs demo agents, so all stay eligible.

    Without `ref`, the app's handbook: the active version with the ratings given since it was
    saved (the real ones; with `demo`, the demo's too, as the app in demo mode)."""
    from skillchat import handbooks
    from skillchat.providers.detect import detect
    from skillchat.providers.pool import build_pool, with_config_agents

    if ref is not None:
        hb = with_config_agents(handbooks.load(ref), cfg)
    else:
        hb = _app_handbook(cfg, demo=demo)
    if cfg.demo or demo:
        return hb, {}
    pool = build_pool(hb, cfg, detect())
    return hb, (pool.why_not(hb.agents) if pool.usable else {})


def _app_handbook(cfg: Any, *, demo: bool) -> Any:
    from skillchat import handbooks, paths, relearning
    from skillchat.providers.pool import with_config_agents
    from skillchat.store import TraceStore

    if not paths.database_file().exists():  # nothing logged yet: no need to create the database
        return with_config_agents(handbooks.load(cfg.handbook), cfg)
    store = TraceStore.open()
    try:
        hb = relearning.online_handbook(handbooks.active_ref(cfg.handbook, store), cfg, store, include_demo=demo)
        real, demo_rated = store.rating_counts(hb.name)
    finally:
        store.close()
    if demo:
        print(f"skillchat: demo: routing with {hb.ref} and its {real + demo_rated:,} ratings, demo ones included",
              file=sys.stderr)
    elif demo_rated and not real:
        print(f"skillchat: no rated turns of yours yet; the {demo_rated:,} rated demo turns count only in demo mode "
              "(skillchat route --demo routes with them)", file=sys.stderr)
    return hb


def _router(hb: Any, *, lam: float, policy: str, rng: random.Random, exclude: dict[str, str]) -> Any:
    """route(messages, where) -> RoutingDecision with the app's router and one shared generator."""
    from skillchat.core.router import NoEligibleAgent
    from skillchat.pricing import LitellmPriceBook
    from skillchat.routing import build_router
    from skillchat.tokens import TiktokenCounter

    router = build_router(hb, token_counter=TiktokenCounter(), prices=LitellmPriceBook())

    def route(messages: list[Message], where: str | None) -> Any:
        try:
            return router.route(messages, lam=lam, policy=policy, rng=rng, exclude=exclude)
        except NoEligibleAgent as e:
            raise InputError(f"{where}: {e}" if where else str(e)) from None

    return route


def _batch_lines(batch: list[_Item], route: Any, name: str, hb: Any, *, as_json: bool) -> Iterator[str]:
    if as_json:
        for item in batch:
            yield json.dumps(route(item.messages, f"{name}:{item.line}").to_dict())
        return
    from skillchat.render import batch_header, batch_row

    yield batch_header(hb)
    for item in batch:
        yield batch_row(item.line, route(item.messages, f"{name}:{item.line}"), hb)
