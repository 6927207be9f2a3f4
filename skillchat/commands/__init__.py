"""One module per command: `add_arguments(parser)` and `run(args) -> exit status`."""

from __future__ import annotations

import argparse

MAX_ID = 2**63 - 1  # SQLite's largest integer


def row_id(text: str) -> int:
    """argparse type for a turn or conversation id: a whole number SQLite can hold, else a usage error."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_ID:
        from skillchat.text_safety import shown

        raise argparse.ArgumentTypeError(f"expected an id (a whole number from 1), got {shown(repr(text), 40)}")
    return value
