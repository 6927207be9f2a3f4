"""Atomic file writes: a crash or a full disk never leaves a half-written file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step. A symlink stays a link: its target is what gets
    replaced (a config kept in a dotfiles repo), and a symlink loop is an OSError (ELOOP)."""
    path = _target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _target(path: Path) -> Path:
    # os.replace onto a link would put a regular file where the link was; the temp file must also
    # live in the target's folder, or the rename would cross file systems.
    try:
        return Path(os.path.realpath(path, strict=True))  # ELOOP for a loop
    except FileNotFoundError:  # a new file, or a link to one not made yet: follow it as far as it goes
        return Path(os.path.realpath(path))
