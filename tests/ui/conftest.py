"""UI test fixtures. The helpers that make and drive the app are in app_driver.py: import them from
there (a test that imports `conftest` gets whichever conftest.py pytest loaded last)."""

from __future__ import annotations

import pytest

# Tests written before app_driver.py import these from conftest; new ones import app_driver.
from app_driver import (  # noqa: F401
    SIZE,
    db_rows,
    demo_factory,
    make_app,
    plain,
    ready,
    send,
    start_a_long_answer,
    wait_for,
)


@pytest.fixture(autouse=True)
def steady_screen(monkeypatch):
    """Latencies would change every run; a snapshot must not."""
    from skillchat.ui import format as fmt

    monkeypatch.setattr(fmt, "seconds", lambda x: "1.0 s" if x is not None else "?")


def pytest_configure(config):
    # litellm's import makes pydantic warn about its own types; nothing a UI test can act on.
    config.addinivalue_line("filterwarnings", "ignore:Item 'summary' on TypedDict:UserWarning")
    config.addinivalue_line("filterwarnings", "ignore:Accessing the 'model_:DeprecationWarning")
