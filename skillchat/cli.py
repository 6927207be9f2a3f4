"""Command line entry point: parses arguments and hands off to one command module.

Every command module keeps heavy imports (textual, litellm, sqlite-utils, rich) inside its
`run`, so `skillchat --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from skillchat import __version__
from skillchat.errors import SkillchatError

# (command, module under skillchat.commands, one-line help)
COMMANDS: list[tuple[str, str, str]] = [
    ("route", "route", "show how a message would be routed, without calling any model"),
    ("handbook", "handbook", "list, show, validate and manage skill handbooks"),
    ("ask", "ask", "ask one question from the shell: routed, streamed to stdout, logged"),
    ("rate", "rate", "rate an answer by its turn id: up, down or clear"),
    ("relearn", "relearn", "rebuild the handbook from your rated history; asks before using the new version"),
    ("spend", "spend", "what you spent, by day, model, mode or skill, against your budgets"),
    ("doctor", "doctor", "which providers and agents skillchat can use here, and why not the others"),
    ("bench", "bench", "learn a router from ratings on a replay set of model outcomes and score it"),
]


# An error message is one line of at most this many characters, whatever the user gave: a 50 MB
# name is shown cut, never echoed whole.
MAX_ERROR = 1000


class _Parser(argparse.ArgumentParser):
    """argparse, with its error lines (which quote what was typed) made safe and short."""

    def error(self, message: str) -> NoReturn:
        from skillchat.text_safety import one_line

        super().error(one_line(message, MAX_ERROR))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="skillchat",
        description="A terminal chat assistant that routes every turn to the LLM best suited to it. "
        "Run without a command to open the chat app.",
    )
    parser.add_argument("--version", action="version", version=f"skillchat {__version__}")
    parser.add_argument("--config", metavar="FILE", help="use this config file instead of the default one")
    parser.add_argument("--demo", action="store_true",
                        help="open the app with scripted demo agents: no provider, key or network needed")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_ in COMMANDS:
        mod = importlib.import_module(f"skillchat.commands.{module}")
        p = sub.add_parser(name, help=help_, description=help_)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Set before anything can import litellm: never fetch the price list from the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        os.environ["SKILLCHAT_CONFIG"] = args.config
    try:
        if args.command is None:
            from skillchat.commands import app

            return app.run(args)
        return int(args._run(args) or 0)
    except SkillchatError as e:
        from skillchat.text_safety import one_line

        print(f"skillchat: {one_line(str(e), MAX_ERROR)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("skillchat: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
