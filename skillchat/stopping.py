"""SIGTERM and SIGHUP stop skillchat the way Ctrl+C does: the turn in flight is cancelled, so what
arrived of the answer and what it cost are written before the process exits (with 128 + the signal
number, as a shell reports a process the signal ended).

The first signal asks politely; a second one of the same kind while skillchat is still stopping
(say the database stays locked) ends the process at once, as the signal would have. Even then, or
after `kill -9`, the turn is not lost: it saved its progress while it streamed, and the next start
closes it as interrupted with that.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

# SIGHUP: the terminal went away (the window was closed, the ssh session dropped).
SIGNALS: tuple[signal.Signals, ...] = tuple(
    s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)


def name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signum: int) -> int:
    return 128 + int(signum)


class Stopper:
    """Routes SIGTERM and SIGHUP to `on_stop(signum)` on a running event loop (main thread only)."""

    def __init__(self, on_stop: Callable[[int], None]) -> None:
        self.on_stop = on_stop
        self.signum: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> Stopper:
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            try:
                loop.add_signal_handler(sig, self._received, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such support
                continue
            self._loop = loop
        return self

    def uninstall(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            for sig in SIGNALS:
                try:
                    self._loop.remove_signal_handler(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
        self._loop = None

    def _received(self, signum: int) -> None:
        if self.signum is not None:  # asked twice: stop now, the way the signal would have
            self.uninstall()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        self.on_stop(signum)
