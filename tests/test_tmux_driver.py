"""The tmux driver's own check that an app has exited: a zombie counts, whoever has not reaped it.

tmux can miss the SIGCHLD of a pane's process and leave it a zombie (see Tmux.wait_exit); the
end-to-end tests then took an app that had exited for one that hung. A real unreaped child here.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest
from tmux_driver import Tmux, exited

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a zombie is told apart through /proc")


def test_a_zombie_has_exited_though_it_still_answers_signals():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while not exited(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(pid, 0)  # no ProcessLookupError: the pid is still there, unreaped
        assert exited(pid)
    finally:
        os.waitpid(pid, 0)
    assert exited(pid)


def test_a_running_process_has_not_exited():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # until the test closes its end
        os._exit(0)
    os.close(r)
    try:
        assert not exited(pid)
    finally:
        os.close(w)
        os.waitpid(pid, 0)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_each_session_has_its_own_socket_and_stop_ends_its_server():
    # Sessions that shared a socket raced: one test's server, still quitting, was reached by the
    # next test's new-session, which died with "server exited unexpectedly" (CI, stop 24).
    first, second = Tmux("driver"), Tmux("driver")
    assert first.socket != second.socket
    first("new-session", "-d", "-s", "app", "sleep 60")
    server = int(first("display-message", "-p", "#{pid}").strip())
    first.stop()
    assert exited(server)
