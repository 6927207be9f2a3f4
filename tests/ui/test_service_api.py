"""The UI↔service boundary: the real ChatService and the UI tests' stand-in both implement
ChatServiceAPI, checked by signature at run time and, where mypy is installed, statically."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import ScriptedService

from skillchat.service import ChatService
from skillchat.service_api import ChatServiceAPI

MEMBERS = sorted(n for n in dir(ChatServiceAPI) if not n.startswith("_"))
METHODS = [n for n in MEMBERS if inspect.isfunction(getattr(ChatServiceAPI, n))]
FIELDS = sorted(set(ChatServiceAPI.__annotations__) | {n for n in MEMBERS if n not in METHODS})


def signature_problems(cls: type, name: str) -> list[str]:
    """How `cls.name` fails to accept every call the protocol allows (same parameter names and kinds,
    in order; anything more must be optional)."""
    want = list(inspect.signature(getattr(ChatServiceAPI, name)).parameters.values())
    impl = getattr(cls, name)
    have = list(inspect.signature(impl).parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in have) and any(p.kind is p.VAR_KEYWORD for p in have):
        return []  # takes anything
    problems = []
    for i, p in enumerate(want):
        if i >= len(have) or have[i].name != p.name or have[i].kind != p.kind:
            problems.append(f"{cls.__name__}.{name}: parameter {i} should be {p}")
        elif p.default is not p.empty and have[i].default is p.empty:
            problems.append(f"{cls.__name__}.{name}: {p.name} must be optional")
    for extra in have[len(want):]:
        if extra.default is extra.empty and extra.kind not in (extra.VAR_POSITIONAL, extra.VAR_KEYWORD):
            problems.append(f"{cls.__name__}.{name}: {extra.name} is required but the UI never passes it")
    if inspect.iscoroutinefunction(getattr(ChatServiceAPI, name)) != inspect.iscoroutinefunction(impl):
        problems.append(f"{cls.__name__}.{name}: async in one and not the other")
    return problems


@pytest.fixture
def real_service():
    svc = ChatService.create(demo=True, probe=False, env={})
    yield svc
    svc.close()


def test_the_real_service_and_the_stand_in_are_chat_services(real_service):
    assert isinstance(real_service, ChatServiceAPI)
    assert isinstance(ScriptedService(), ChatServiceAPI)


@pytest.mark.parametrize("cls", [ChatService, ScriptedService], ids=lambda c: c.__name__)
def test_every_method_accepts_what_the_ui_may_pass(cls):
    assert [p for name in METHODS for p in signature_problems(cls, name)] == []


def test_the_check_sees_a_missing_member_and_a_changed_signature():
    class Wrong(ScriptedService):
        def rate(self, turn: int, rating: str) -> None:  # renamed and no longer optional
            pass

    del_me = type("Missing", (), {n: getattr(ScriptedService, n) for n in METHODS if n != "export"})
    assert not isinstance(del_me(), ChatServiceAPI)
    assert signature_problems(Wrong, "rate") != []
    assert "handbook" in FIELDS and "run_turn" in METHODS


def test_mypy_agrees(tmp_path):
    pytest.importorskip("mypy")
    here = Path(__file__).parent
    check = tmp_path / "check_service_api.py"
    check.write_text(
        "from fakes import ScriptedService\n"
        "from skillchat.service import ChatService\n"
        "from skillchat.service_api import ChatServiceAPI\n\n"
        "def real(s: ChatService) -> ChatServiceAPI:\n    return s\n\n"
        "def scripted(s: ScriptedService) -> ChatServiceAPI:\n    return s\n"
    )
    # Errors elsewhere in the package are another check's business: only this file's count here.
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports", "--no-incremental",
         str(check)],
        capture_output=True, text=True, env={"MYPYPATH": str(here), "PATH": ""}, cwd=here.parent.parent,
    )
    assert out.returncode == 0, out.stdout + out.stderr
