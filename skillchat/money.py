"""Dollar amounts as text. The same rule as skillchat.render.usd (tests keep them equal), in a
module that imports nothing, so quick commands like `skillchat spend` need not load the core."""

from __future__ import annotations


def usd(x: float) -> str:
    if x == 0:
        return "$0"
    if x < 0.01:
        return f"${x:.5f}".rstrip("0")
    return f"${x:.4f}" if x < 1 else f"${x:,.2f}"
