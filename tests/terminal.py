"""A pseudo-terminal to stand for the user's terminal as a child process's stdout.

`skillchat ask` streams its answer live only when stdout is a terminal (to a file or a pipe it writes
the finished answer whole), so tests of what streams give it one of these. The terminal is raw: no
newline becomes CRLF, and the bytes read are the bytes written.
"""

from __future__ import annotations

import os
import pty
import threading
import time
import tty


class Terminal:
    """Pass `slave` as a Popen's stdout, then `opened()`; `out` grows as the child writes."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.out = b""
        self.first_at: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)

    def opened(self) -> Terminal:
        """The child has the slave end: close ours (so the child's exit ends the reading) and read."""
        os.close(self.slave)
        self._reader.start()
        return self

    def _read(self) -> None:
        while True:
            try:
                piece = os.read(self.master, 4096)
            except OSError:  # EIO: every process holding the slave end has closed it
                return
            if not piece:
                return
            if self.first_at is None:
                self.first_at = time.monotonic()
            self.out += piece

    def text(self, timeout: float = 10.0) -> str:
        """All the child wrote, once it has closed the terminal."""
        self._reader.join(timeout)
        os.close(self.master)
        return self.out.decode()


def interruptible() -> None:
    """preexec_fn for a child the test will Ctrl+C: SIGINT at its default, as under a terminal.

    A test run started in the background by a shell without job control inherits SIGINT ignored,
    and so would the child (Python then never raises KeyboardInterrupt): the test would be testing
    how it was launched, not skillchat."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
