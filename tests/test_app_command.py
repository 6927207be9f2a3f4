"""`skillchat` with no command: the launcher of the chat app."""

from __future__ import annotations

import argparse
import sys

import pytest

from skillchat import paths
from skillchat.commands import app as app_command


def test_a_broken_import_in_the_app_is_a_crash_with_its_trace_not_a_polite_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "skillchat.ui.app", None)  # importing it now raises ImportError
    with pytest.raises(ImportError):
        app_command.run(argparse.Namespace())


def test_the_launcher_gives_the_app_its_prompt_history_file(monkeypatch):
    import skillchat.ui.app as ui_app

    seen = {}
    monkeypatch.setattr(ui_app, "run_app", lambda args, **kw: seen.update(kw) or 0)
    assert app_command.run(argparse.Namespace()) == 0
    assert seen == {"history_file": paths.prompt_history_file()}
