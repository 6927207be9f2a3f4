"""The test suite's own layout rules (pytest imports test folders without packages, by file name)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parent
MODULES = sorted(p for p in TESTS.rglob("*.py") if "__snapshots__" not in p.parts)


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_test_imports_conftest():
    # Two folders have a conftest.py; "conftest" names whichever pytest loaded last, so
    # `from conftest import REPO` failed when tests/ui was collected first. Fixtures are fixtures.
    users = [p.relative_to(TESTS) for p in MODULES if p.name != "conftest.py" and "conftest" in imported_modules(p)]
    assert users == []


def test_a_module_named_like_a_test_holds_tests_and_helpers_are_not_named_like_tests():
    for p in MODULES:
        tree = ast.parse(p.read_text())
        has_tests = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")
                        for n in tree.body)
        assert has_tests == p.name.startswith("test_"), p.relative_to(TESTS)


def test_module_names_are_unique_across_folders():
    # Without packages, two test_x.py in different folders collide in sys.modules.
    twice = [name for name, n in Counter(p.name for p in MODULES if p.name != "conftest.py").items() if n > 1]
    assert twice == []
