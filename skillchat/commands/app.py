"""`skillchat` with no command: the chat app."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    try:
        from skillchat.ui.app import run_app
    except ImportError:  # the app is not built yet in this checkout
        print("The chat app is not available yet; try `skillchat route \"your message\"`.")
        return 1
    return run_app(args)
