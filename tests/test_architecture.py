"""The layering rules, checked by machine rather than by review."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).parent.parent / "skillchat"
STDLIB = set(sys.stdlib_module_names)
HEAVY = ("textual", "litellm", "sqlite_utils", "rich", "tiktoken", "platformdirs", "openai", "httpx")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((PKG / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_only_the_standard_library(path):
    for name in imports_of(path):
        top = name.split(".")[0]
        allowed = top in STDLIB or name.startswith("skillchat.core") or name == "skillchat.errors"
        assert allowed, f"{path.name} imports {name}: the routing core must stay pure"


def run_and_list_modules(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


def test_importing_the_core_loads_nothing_heavy():
    loaded = run_and_list_modules("import skillchat.core")
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_help_loads_no_ui_or_provider_code():
    loaded = run_and_list_modules(
        "from skillchat.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_only_paths_knows_about_platformdirs():
    users = [p.relative_to(PKG) for p in PKG.rglob("*.py") if "platformdirs" in {n.split(".")[0] for n in imports_of(p)}]
    assert users == [Path("paths.py")]


def test_ui_does_not_touch_providers_or_the_database_directly():
    ui = PKG / "ui"
    if not ui.exists():
        pytest.skip("no UI package in this checkout")
    for path in ui.rglob("*.py"):
        for name in imports_of(path):
            top = name.split(".")[0]
            assert top not in ("litellm", "sqlite_utils", "sqlite3"), f"{path} imports {name}"
            assert not name.startswith(("skillchat.store", "skillchat.providers")), f"{path} imports {name}"
