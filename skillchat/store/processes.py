"""Which process wrote a row, and whether it still runs: running turns and budget holds are owned
by a process, and a dead owner's rows must be closed or released by whoever starts next.

A pid alone is not enough (pids are reused), so the owner is also named by its start time, read
from /proc where there is one.
"""

from __future__ import annotations

import os
import socket

HOST = socket.gethostname()
_me: tuple[int, str | None] | None = None


def proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of process `pid`, from /proc; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()  # the command name may hold spaces and parentheses
    return (fields[0], fields[19]) if len(fields) > 19 else None


def me() -> tuple[int, str | None]:
    """(pid, start time) of this process, recomputed in a forked child."""
    global _me
    pid = os.getpid()
    if _me is None or _me[0] != pid:
        info = proc_stat(pid)
        _me = (pid, info[1] if info else None)
    return _me


def pid_alive(pid: int, start: str | None) -> bool | None:
    """Whether process `pid` of this host, started at `start` (if known), still runs; None when it
    cannot be told (no safe probe on this system, or an unexpected error)."""
    if os.name != "posix":
        return None  # on Windows os.kill(pid, 0) would terminate the process
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process runs under that pid: compare start times below
    except OSError:
        return None
    info = proc_stat(pid)
    if info is not None:
        state, started = info
        if state in ("Z", "X"):  # killed, not yet reaped
            return False
        if start and started != start:  # the pid was reused by a newer process
            return False
    return True
