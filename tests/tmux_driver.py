"""Drive `python -m skillchat` in a real terminal: a tmux session on its own socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from itertools import count
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_sessions = count()


class Tmux:
    def __init__(self, name: str) -> None:
        # A socket of its own per session, never reused: a server told to quit by the previous
        # test's kill-server may still hold a shared socket, and a new session that connects to it
        # dies with "server exited unexpectedly".
        self.socket = f"{name}-{os.getpid()}-{next(_sessions)}"

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

    def start(self, cwd: Path, home: Path, *args: str, size: tuple[int, int] = (100, 30),
              extra_env: Mapping[str, str] | None = None) -> None:
        """The app as a user starts it from `cwd` (exec: the pane's process is the app, so a test can
        signal it), with a clean environment; the pane stays after the app exits, so a crash leaves
        its traceback on screen. `extra_env` adds to that environment."""
        env = {
            "SKILLCHAT_HOME": str(home),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "TERM": "xterm-256color",
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(cwd),
            # The checkout may not be installed into the venv.
            "PYTHONPATH": str(REPO),
            **(extra_env or {}),
        }
        exports = " ".join(f"{k}={v!r}" for k, v in env.items())
        self("new-session", "-d", "-s", "app", "-x", str(size[0]), "-y", str(size[1]),
             f"cd {str(cwd)!r} && exec env -i {exports} {sys.executable} -m skillchat {' '.join(args)}".rstrip())
        self("set-option", "-t", "app", "remain-on-exit", "on")

    def pane_pid(self) -> int:
        return int(self("display-message", "-p", "-t", "app", "#{pane_pid}").strip())

    def wait_exit(self, timeout: float = 20.0) -> str:
        """Wait until the app's process has ended and tmux shows its pane dead; the screen then.

        tmux built with libutempter (Debian's, Ubuntu's) can miss the SIGCHLD of a pane's process:
        on the pane's end of file it runs utempter's helper, which swaps in a SIGCHLD handler of its
        own, and a child that ends meanwhile stays a zombie that tmux never reaps, so the pane is never
        marked dead (tmux/tmux#311, #4559). An exited app then looked like one that would not exit.
        A zombie has exited: a SIGCHLD tells tmux to reap it, as its maintainer advises."""
        pid = self.pane_pid()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if "Pane is dead" in screen:
                return screen
            if exited(pid):
                os.kill(int(self("display-message", "-p", "#{pid}").strip()), signal.SIGCHLD)
            time.sleep(0.1)
        state = "has exited, but tmux did not mark its pane dead" if exited(pid) else "is still running"
        raise AssertionError(f"the app (pid {pid}) {state} {timeout:g} s after it was asked to quit; "
                             f"the screen was:\n{self.screen()}")

    def stop(self, timeout: float = 10.0) -> None:
        """End the server and wait until it has, so no test leaves one behind."""
        server = self("display-message", "-p", "#{pid}", check=False).strip()
        self("kill-server", check=False)
        deadline = time.monotonic() + timeout
        while server.isdigit() and not exited(int(server)) and time.monotonic() < deadline:
            time.sleep(0.05)


def exited(pid: int) -> bool:
    """Whether process `pid` has ended, including as a zombie its parent has not reaped yet
    (os.kill(pid, 0) still succeeds on those). Linux's /proc; elsewhere only a reaped process counts."""
    if os.path.isdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                # "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ")".
                return f.read().rpartition(b")")[2].split()[0] in (b"Z", b"X")
        except FileNotFoundError:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def local_servers(home: Path) -> list[int]:
    """The local model's server processes of the app started with SKILLCHAT_HOME `home`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if b"skillchat.providers.local_child" in cmd and f"SKILLCHAT_HOME={home}".encode() in env:
            found.append(int(pid))
    return found
