"""in_daemon_thread: awaited like asyncio.to_thread, but an exit never waits for it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading

import pytest

from skillchat.background import in_daemon_thread


async def test_it_returns_the_result_and_raises_the_error_of_the_work():
    assert await in_daemon_thread(lambda: threading.current_thread().daemon, "test") is True

    def fail() -> None:
        raise ValueError("no model")

    with pytest.raises(ValueError, match="no model"):
        await in_daemon_thread(fail, "test")


async def test_work_that_ends_after_its_awaiter_was_cancelled_is_dropped():
    release = threading.Event()
    task = asyncio.ensure_future(in_daemon_thread(lambda: release.wait(5) and 1, "test"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await asyncio.sleep(0.1)  # the thread settles a cancelled future: nothing is raised or logged


def test_asyncio_run_returns_while_the_work_is_still_blocked(repo):
    # What quitting the app meant while its local model's server was starting: asyncio.run joins
    # the default executor (asyncio.to_thread's) without a time limit; this script then never ended.
    script = textwrap.dedent("""
        import asyncio, threading
        from skillchat.background import in_daemon_thread
        blocked = threading.Event()  # never set

        async def main():
            work = asyncio.ensure_future(in_daemon_thread(blocked.wait, "blocked"))
            await asyncio.sleep(0.2)
            work.cancel()

        asyncio.run(main())
        print("exited")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "exited", "")
