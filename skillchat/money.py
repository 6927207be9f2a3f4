"""Dollar amounts as text, in a module that imports nothing, so quick commands like
`skillchat spend` need not load the routing core. skillchat.render re-exports it."""

from __future__ import annotations


def usd(x: float) -> str:
    if x == 0:
        return "$0"
    if x != x or x in (float("inf"), float("-inf")):
        return "n/a"  # an estimate that could not be made (too little data)
    if x < 0:
        return "-" + usd(-x)  # a difference: a saving
    if x < 0.000005:
        return "<$0.00001"  # a few tokens of a cheap model: more digits would only be noise
    if x < 0.01:
        return f"${x:.5f}".rstrip("0")
    return f"${x:.4f}" if x < 1 else f"${x:,.2f}"
