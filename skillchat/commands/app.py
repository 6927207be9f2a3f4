"""`skillchat` with no command: the chat app."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from skillchat import paths
    from skillchat.ui.app import run_app

    return run_app(args, history_file=paths.prompt_history_file())
