"""Hermetic tests: every test gets its own SKILLCHAT_HOME, and nothing may reach the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from openai_server import openai_server  # noqa: F401  (the loopback server fixture, for every test that names it)

# Before anything imports litellm: never fetch its price list.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent
# Tests take these as fixtures, never by `from conftest import`: tests/ui has a conftest.py too, and
# which module the name "conftest" means depends on the order pytest collected the folders in.


@pytest.fixture(autouse=True)
def skillchat_home(tmp_path, monkeypatch):
    home = tmp_path / "skillchat-home"
    monkeypatch.setenv("SKILLCHAT_HOME", str(home))
    # The embedded local model starts a real server: only the tests written for it let it in.
    monkeypatch.setenv("SKILLCHAT_LOCAL_MODEL", "off")
    for var in ("SKILLCHAT_CONFIG", "SKILLCHAT_DB", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
                "LITELLM_PROXY_URL", "LITELLM_PROXY_API_KEY", "OLLAMA_HOST"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def repo() -> Path:
    """The checkout's root folder."""
    return REPO


@pytest.fixture
def tiny_path() -> Path:
    return DATA / "tiny.json"


@pytest.fixture
def tiny(tiny_path):
    from skillchat.handbooks import load_file

    return load_file(tiny_path)
