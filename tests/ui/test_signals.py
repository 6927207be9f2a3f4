"""SIGTERM and SIGHUP in the app: the answer being written stops as with esc (what arrived is
logged, with its cost), then the app quits with 128 + the signal number."""

from __future__ import annotations

import os
import signal

import pytest
from app_driver import SIZE, db_rows, make_app, ready, start_a_long_answer, wait_for

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
async def test_a_signal_stops_the_answer_like_escape_and_quits(tmp_path, sig):
    app = make_app(tmp_path, chunk_delay_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await start_a_long_answer(pilot)
        app.stop_for_signal(sig)
        await wait_for(pilot, lambda: app.return_code is not None, what="the app to quit")
        rows = db_rows(app, "SELECT status, error, assistant_message_id IS NOT NULL FROM turns")
    assert rows == [("cancelled", f"interrupted by {signal.Signals(sig).name}", 1)]
    assert app.return_code == 128 + sig


async def test_the_app_routes_real_signals_to_the_stop(tmp_path, monkeypatch):
    from skillchat.ui.app import SkillchatApp

    got = []
    monkeypatch.setattr(SkillchatApp, "stop_for_signal", lambda self, signum: got.append(signum))
    app = make_app(tmp_path)
    app._handle_signals = True
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app._stopper is not None and app._stopper._loop is not None
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(pilot, lambda: got == [signal.SIGHUP], what="the handler")
        app._stopper.uninstall()
