"""Drive `python -m skillchat` in a real terminal: a tmux session on its own socket."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str, check: bool = True) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "app")

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "app", *keys)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} did not appear within {timeout:.0f} s; the screen was:\n{self.screen()}")

    def start(self, cwd: Path, home: Path, *args: str, size: tuple[int, int] = (100, 30)) -> None:
        """The app as a user starts it from `cwd` (exec: the pane's process is the app, so a test can
        signal it), with a clean environment; the pane stays after the app exits, so a crash leaves
        its traceback on screen."""
        env = {
            "SKILLCHAT_HOME": str(home),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "TERM": "xterm-256color",
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(cwd),
            # The checkout may not be installed into the venv.
            "PYTHONPATH": str(REPO),
        }
        exports = " ".join(f"{k}={v!r}" for k, v in env.items())
        self("new-session", "-d", "-s", "app", "-x", str(size[0]), "-y", str(size[1]),
             f"cd {str(cwd)!r} && exec env -i {exports} {sys.executable} -m skillchat {' '.join(args)}".rstrip())
        self("set-option", "-t", "app", "remain-on-exit", "on")

    def stop(self) -> None:
        self("kill-server", check=False)
