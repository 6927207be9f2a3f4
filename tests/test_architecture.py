"""The layering rules, checked by machine rather than by review.

Every import form counts: `import x`, `from x import y` (where y may itself be a module, as in
`from skillchat import store`), relative imports (`from .. import events`), imports inside functions
or under TYPE_CHECKING, and `importlib.import_module("literal")`. The synthetic sources at the end
prove the checker sees each form.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).parent.parent / "skillchat"
STDLIB = set(sys.stdlib_module_names)
HEAVY = ("textual", "litellm", "sqlite_utils", "rich", "tiktoken", "platformdirs", "openai", "httpx")


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return MODULES.get(module, Path()).name == "__init__.py"


def imports_in(source: str, module: str, *, package: bool | None = None, known: set[str] | None = None) -> set[str]:
    """Every module `source` (the text of `module`, a package's __init__ when `package`) imports, as
    absolute dotted names."""
    known = set(MODULES) if known is None else known
    package = _is_package(module) if package is None else package
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # `from . import x` in a package's __init__ is relative to the package itself.
                here = module.split(".") if package else module.split(".")[:-1]
                if node.level > len(here):
                    raise ValueError(f"{module}: relative import beyond the top-level package")
                base = here[: len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from skillchat import store` imports the module skillchat.store, not a name of skillchat.
            modules = {f"{target}.{a.name}" for a in node.names} & known
            found |= modules if len(modules) == len(node.names) else modules | {target}
        elif isinstance(node, ast.Call) and _is_import_call(node.func) and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


def _is_import_call(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def within(name: str, *prefixes: str) -> bool:
    """Whether module `name` is one of `prefixes` or inside one (dotted boundaries: `skillchat.store`
    is not inside `skillchat.st`)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# --- the layers ----------------------------------------------------------------------------------
# The error root and the text sanitiser are leaves every layer uses (the core included: errors is
# standard library plus text_safety, which loads Rich only inside the one function that makes Rich text).
LEAVES = ("skillchat.errors", "skillchat.text_safety")
# What the store may use: it keeps the log, so it knows core's records, the paths and its own parts;
# it must not depend on the service that writes to it (or anything above).
STORE_MAY_USE = ("skillchat.core", "skillchat.store", "skillchat.paths", "skillchat.attempts", *LEAVES)
# What the UI may not touch: it reaches handbooks, files and the log only through the service.
UI_MUST_NOT_USE = ("skillchat.store", "skillchat.providers", "skillchat.handbooks", "skillchat.paths",
                   "litellm", "sqlite_utils", "sqlite3", "platformdirs")


def violations(module: str, imported: set[str]) -> list[str]:
    out = []
    for name in sorted(imported):
        top = name.split(".")[0]
        own = top == "skillchat"
        if within(module, "skillchat.core"):
            if not (top in STDLIB or within(name, "skillchat.core", "skillchat.errors")):
                out.append(f"{module} imports {name}: the routing core uses only the standard library")
        if within(module, "skillchat.errors") and not (top in STDLIB or within(name, "skillchat.text_safety")):
            out.append(f"{module} imports {name}: the error root must stay importable by the core")
        if not within(module, "skillchat.ui", "skillchat.commands.app") and top in ("textual",):
            out.append(f"{module} imports {name}: only the UI uses textual")
        if within(module, "skillchat.store") and own and not within(name, *STORE_MAY_USE):
            out.append(f"{module} imports {name}: the store must not depend on what is built on it")
        if within(module, "skillchat.ui") and within(name, *UI_MUST_NOT_USE):
            out.append(f"{module} imports {name}: the UI goes through the service")
        if not within(module, "skillchat.paths") and top == "platformdirs":
            out.append(f"{module} imports {name}: only skillchat.paths knows about platformdirs")
    return out


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_keeps_to_its_layer(module):
    assert violations(module, imports_in(MODULES[module].read_text(), module)) == []


def _cycles() -> list[list[str]]:
    graph = {m: {i for i in imports_in(p.read_text(), m) if i in MODULES and i != m} for m, p in MODULES.items()}
    found: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return found


def test_the_core_has_no_import_cycles():
    assert [c for c in _cycles() if all(within(m, "skillchat.core") for m in c)] == []


def test_the_service_parts_build_on_each_other_without_cycles():
    # session <- outcomes, holds, lifecycle, records <- turns <- compare <- chat; lifecycle <- demo <- chat.
    assert [c for c in _cycles() if all(within(m, "skillchat.service") for m in c)] == []


# --- the checker sees every form (each of these would have passed the old, name-only check) -------
def _check(module: str, source: str, *, package: bool = False) -> list[str]:
    return violations(module, imports_in(source, module, package=package))


@pytest.mark.parametrize("source", [
    "from .. import events",
    "from ..events import Attempt",
    "from skillchat import events",
    "def f():\n    import skillchat.events",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from skillchat.events import Attempt",
    "import importlib\nimportlib.import_module('skillchat.events')",
])
def test_an_import_of_the_service_layer_from_the_core_is_caught_in_every_form(source):
    assert any("skillchat.events" in v for v in _check("skillchat.core.router", source))


@pytest.mark.parametrize("source", [
    "from skillchat import store",
    "from skillchat.store import traces",
    "import skillchat.store.traces as t",
    "from ..store import TraceStore",
    "from skillchat import handbooks",
    "from .. import paths",
    "def f():\n    from skillchat.handbooks import load_file",
])
def test_the_ui_reaching_round_the_service_is_caught(source):
    assert _check("skillchat.ui.format", source) != []


def test_relative_imports_climb_one_package_per_dot():
    assert imports_in("from ...store import traces", "skillchat.ui.widgets.turn") == {"skillchat.store.traces"}
    assert imports_in("from .turn import AssistantTurn", "skillchat.ui.widgets.transcript") == {"skillchat.ui.widgets.turn"}


def test_a_relative_import_in_a_package_init_counts_from_the_package():
    assert imports_in("from . import events", "skillchat.store", package=True, known=set()) == {"skillchat.store"}
    assert "skillchat.store.spend" in imports_in("from . import spend", "skillchat.store", package=True)
    assert "skillchat.store.spend" in imports_in("from . import spend", "skillchat.store.traces")
    assert _check("skillchat.store", "from .. import events", package=True) != []


def test_the_store_may_not_use_the_service_nor_textual():
    assert _check("skillchat.store.traces", "from skillchat.events import Attempt") != []
    assert _check("skillchat.service", "from textual.app import App") != []
    assert _check("skillchat.store.traces", "from skillchat.core.learning import RatedTurn") == []


def test_names_are_compared_on_dotted_boundaries():
    assert _check("skillchat.ui.app", "import skillchat.storefront") == []
    assert _check("skillchat.ui.app", "from skillchat.errors import SkillchatError") == []


# --- what is loaded, measured in a fresh interpreter -----------------------------------------------
def run_and_list_modules(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


def test_importing_the_core_loads_nothing_heavy():
    loaded = run_and_list_modules("import skillchat.core")
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_the_service_loads_no_ui():
    loaded = run_and_list_modules("import skillchat.service, skillchat.store.traces")
    assert not [m for m in loaded if m.split(".")[0] == "textual" or m.startswith("skillchat.ui")]


def test_help_loads_no_ui_or_provider_code():
    loaded = run_and_list_modules(
        "from skillchat.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]
