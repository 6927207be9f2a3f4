"""Reading a user's file whole: only a regular file, and no bigger than a limit.

Opening a FIFO for reading waits for a writer, forever; a device never ends; a file of tens of
megabytes takes the TOML or JSON parser, and what then shows or rewrites it, minutes and gigabytes.
So a file is opened without waiting, refused unless it is a regular file, and refused when it is
larger than its limit. Refusals are OSErrors whose text says why, so every reader's "cannot read
it (...)" message names the problem and, for size, the limit.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MB = 1_000_000
# A config is a few kilobytes; a handbook learned from 100,000 ratings is about 0.3 MB, the larger
# shipped one 0.1 MB.
MAX_CONFIG_BYTES = 1 * MB
MAX_HANDBOOK_BYTES = 20 * MB

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def size_text(n: int) -> str:
    return f"{n / MB:,.1f} MB" if n >= MB else f"{n:,} bytes"


def read_text(path: Path, limit: int, what: str) -> str:
    """The UTF-8 text of the regular file at `path`, if it holds at most `limit` bytes.

    `what` names the kind of file in the message ("a config file"). Raises FileNotFoundError when
    there is none, OSError when it cannot be read or is refused, UnicodeDecodeError for bad UTF-8.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise OSError(errno.EINVAL, f"it is {kind}, not a regular file")
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"it is {size_text(st.st_size)}; {what} may be at most {size_text(limit)}")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)  # it may have grown since fstat
    finally:
        os.close(fd)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"it is over {size_text(limit)}; {what} may be at most {size_text(limit)}")
    return data.decode("utf-8")
