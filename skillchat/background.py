"""Blocking work that skillchat awaits but must never wait for on its way out.

asyncio.to_thread runs work on the event loop's default executor, and asyncio.run joins that
executor's threads before it returns, with no time limit. So quitting while the local model's
server was starting (up to a minute until it answers) or while litellm was importing (seconds)
restored the terminal and then kept the process alive until that work was done. Work run here
is on a daemon thread instead: the exit does not wait for it, and what it held (the server
process) is stopped by the service's close.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def in_daemon_thread(fn: Callable[[], T], name: str) -> T:
    """`await asyncio.to_thread(fn)`, save that the thread is a daemon nobody joins."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # the awaiting task was cancelled
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]  # None only with an error

    def run() -> None:
        try:
            result, error = fn(), None
        except BaseException as e:  # handed to the awaiting task, as to_thread does
            result, error = None, e
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future
