"""Keys as a real terminal sends them, under tmux: what Pilot cannot show (issue 12, items 3 and 4).

tmux delivers `send-keys "text" Enter` as one write, and alt+enter as ESC CR; both used to send
or run the wrong thing.
"""

from __future__ import annotations

import time

from test_terminal import Tmux, pytestmark, tmux  # noqa: F401  (the fixture, and skip without tmux)


def prompt_line(t: Tmux) -> str:
    """The text in the prompt box: the line between its top and bottom borders."""
    lines = t.screen().splitlines()
    top = max(i for i, line in enumerate(lines) if line.lstrip().startswith("╭"))
    return lines[top + 1].strip(" │")


def wait_prompt(t: Tmux, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if prompt_line(t).startswith(text):
            return
        time.sleep(0.1)
    raise AssertionError(f"the prompt never read {text!r}; the screen was:\n{t.screen()}")


def test_keys_as_a_terminal_sends_them(tmux):  # noqa: F811  (the fixture imported above)
    tmux.wait_for("models ready", timeout=45)

    # alt+enter arrives as ESC CR: a new line, not a sent message.
    tmux("send-keys", "-t", "app", "first line", "M-Enter", "second line")
    screen = tmux.wait_for("second line")
    lines = [line.strip(" │") for line in screen.splitlines()]
    assert lines.index("second line") == lines.index("first line") + 1, screen  # both in the prompt box
    time.sleep(1)
    assert "Demo answer from" not in tmux.screen()
    tmux("send-keys", "-t", "app", *["BSpace"] * 25)
    wait_prompt(tmux, "Message, or /")

    # One write, text and Enter: the command typed runs, and the prompt is left empty.
    tmux("send-keys", "-t", "app", "/handbook use coding", "Enter")
    tmux.wait_for("Routing with handbook coding")
    tmux("send-keys", "-t", "app", "/handbook use general", "Enter")
    tmux.wait_for("Routing with handbook general")
    wait_prompt(tmux, "Message, or /")

    # Typed at 10 ms a key: /history runs, and the next command does not join it.
    for ch in "/history":
        tmux("send-keys", "-t", "app", "-l", ch)
        time.sleep(0.01)
    tmux("send-keys", "-t", "app", "Enter")
    tmux.wait_for("esc Close")
    tmux("send-keys", "-t", "app", "Escape")
    deadline = time.monotonic() + 10
    while "esc Close" in tmux.screen() and time.monotonic() < deadline:  # then no ESC + "/" makes alt+/
        time.sleep(0.1)
    wait_prompt(tmux, "Message, or /")
    for ch in "/frobnicate":
        tmux("send-keys", "-t", "app", "-l", ch)
        time.sleep(0.01)
    tmux("send-keys", "-t", "app", "Enter")
    tmux.wait_for("unknown command /frobnicate")
