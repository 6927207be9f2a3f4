"""What skillchat runs as its local model's server process: llama.cpp's OpenAI-compatible server,
which ends the moment its stdin reaches end of file.

skillchat holds the only write end of that pipe, and the kernel closes it whenever skillchat ends,
by exit, signal, crash or kill -9, so the server can never be left running on its own.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading


def _exit_when_parent_goes() -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)  # at once: the server's own shutdown would wait for open connections


def main() -> None:
    threading.Thread(target=_exit_when_parent_goes, name="parent-watch", daemon=True).start()
    sys.argv = ["llama_cpp.server", *sys.argv[1:]]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
