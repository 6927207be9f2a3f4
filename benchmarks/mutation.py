"""Mutation testing of the routing core and the bench's data separation (issue 13).

    nice -n 10 .venv/bin/python benchmarks/mutation.py [--module router] [--show-survivors]

Each mutant is one small change to one module's syntax tree (a comparison, arithmetic or boolean
operator flipped, a number moved by one, True and False swapped, a return value dropped, min and max
swapped). Its module's fast tests run against it in a forked child; a failing test (or a run ten times
slower than the clean one) kills it, and a mutant that every test passes "survives". Survivors are
either gaps in the tests or equivalent mutants (changes no caller can observe); read them with
--show-survivors.

Why not mutmut: its 3.3.1 wheel installs a top-level `tests` package into site-packages, which shadows
this project's `tests/` namespace (`from tests.bench.synth import ...` stops importing).

The parent imports pytest but not skillchat, so every child imports the project afresh with exactly
one module replaced, through an import hook, by its mutated tree.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.abc
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# module -> (tests that cover it quickly, functions to mutate; empty means the whole module)
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "skillchat.core.router": (["tests/core/test_router.py", "tests/core/test_reason.py", "tests/test_one_router.py"], []),
    "skillchat.core.standing": (["tests/core/test_standing.py"], []),
    "skillchat.core.competence": (["tests/core/test_competence.py", "tests/core/test_router.py"], []),
    "skillchat.core.learning": (["tests/core/test_learning.py", "tests/core/test_relearn.py"], []),
    "skillchat.core.compare": (["tests/core/test_compare_pair.py"], []),
    "skillchat.core.inference": (["tests/core/test_inference.py", "tests/core/test_inference_accuracy.py"], []),
    "skillchat.core.evidence": (["tests/core/test_evidence.py", "tests/core/test_learning.py"], []),
    "skillchat.core.relearn": (["tests/core/test_relearn.py"], []),
    "skillchat.core.handbook_format": (["tests/core/test_handbook.py", "tests/test_numbers.py", "tests/test_limits.py"], []),
    "skillchat.core.clustering": (["tests/core/test_clustering.py", "tests/core/test_evolution.py"], []),
    "skillchat.core.ope": (["tests/core/test_ope.py", "tests/core/test_ope_estimates.py"], []),
    "skillchat.core.text": (["tests/core/test_text.py", "tests/core/test_inference.py"], []),
    "skillchat.core.patterns": (["tests/core/test_patterns.py"], []),
    "skillchat.core.decision": (["tests/core/test_decision.py", "tests/core/test_router.py", "tests/core/test_reason.py"], []),
    "skillchat.core.changes": (["tests/core/test_changes.py", "tests/core/test_relearn.py", "tests/core/test_evolution.py"], []),
    "skillchat.core.taxonomy": (
        ["tests/core/test_handbook.py", "tests/core/test_competence.py", "tests/core/test_router.py"], []
    ),
    "skillchat.core.evolution": (["tests/core/test_evolution.py", "tests/core/test_relearn.py"], []),
    "skillchat.core.evolution.discover": (["tests/core/test_evolution.py", "tests/core/test_relearn.py"], []),
    "skillchat.core.evolution.merge": (["tests/core/test_evolution.py", "tests/core/test_relearn.py"], []),
    "skillchat.core.evolution.naming": (["tests/core/test_evolution.py", "tests/core/test_relearn.py"], []),
    "skillchat.core.evolution.retagging": (["tests/core/test_evolution.py", "tests/core/test_relearn.py"], []),
    "skillchat.core.evolution.split": (["tests/core/test_evolution.py", "tests/core/test_relearn.py"], []),
    "skillchat.core.evolution.stats": (["tests/core/test_evolution.py", "tests/core/test_relearn.py"], []),
    "skillchat.core.evolution.texts": (["tests/core/test_evolution.py", "tests/core/test_relearn.py"], []),
    "skillchat.bench.data": (["tests/bench/test_data_separation.py", "tests/bench/test_replay_input.py"], []),
    "skillchat.bench.runner": (["tests/bench/test_data_separation.py"], ["holdout"]),
}

_NOT_MUTATED = 98

_SWAP: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult,
    ast.And: ast.Or, ast.Or: ast.And,
}


def _variants(node: ast.AST) -> list[tuple[str, Callable[[ast.AST], ast.AST]]]:
    """The mutations of one node: (what changed, a function making the mutated node from a copy)."""
    out: list[tuple[str, Callable[[ast.AST], ast.AST]]] = []

    def swap_op(attr: str, i: int | None = None) -> None:
        ops = getattr(node, attr)
        op = ops[i] if i is not None else ops
        new = _SWAP.get(type(op))
        if new is None:
            return

        def make(n: ast.AST, attr: str = attr, i: int | None = i, new: type = new) -> ast.AST:
            if i is None:
                setattr(n, attr, new())
            else:
                getattr(n, attr)[i] = new()
            return n

        out.append((f"{type(op).__name__} -> {new.__name__}", make))

    if isinstance(node, ast.Compare):
        for i in range(len(node.ops)):
            swap_op("ops", i)
    elif isinstance(node, (ast.BinOp, ast.AugAssign)):
        swap_op("op")
    elif isinstance(node, ast.BoolOp):
        swap_op("op")
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        out.append(("not x -> x", lambda n: n.operand))  # type: ignore[attr-defined]
    elif isinstance(node, ast.Constant) and type(node.value) is bool:
        out.append((f"{node.value} -> {not node.value}", lambda n: ast.Constant(not n.value)))  # type: ignore[attr-defined]
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        out.append((f"{node.value!r} -> {node.value + 1!r}", lambda n: ast.Constant(n.value + 1)))  # type: ignore[attr-defined]
    elif isinstance(node, ast.Return) and node.value is not None and not (
        isinstance(node.value, ast.Constant) and node.value.value is None
    ):
        out.append(("return x -> return None", lambda n: ast.Return(ast.Constant(None))))
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
        other = "max" if node.func.id == "min" else "min"

        def minmax(n: ast.AST, other: str = other) -> ast.AST:
            n.func = ast.Name(other, ast.Load())  # type: ignore[attr-defined]
            return n

        out.append((f"{node.func.id} -> {other}", minmax))
    return out


def _skipped(node: ast.AST) -> bool:
    """Docstrings and the TYPE_CHECKING block hold nothing a test could observe."""
    if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
        return True
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


class _Walker(ast.NodeTransformer):
    """Numbers every mutation in a fixed pre-order walk; given a target, applies that one."""

    def __init__(self, functions: list[str], target: int | None = None) -> None:
        self.functions = functions
        self.target = target
        self.found: list[tuple[int, str]] = []  # (line, description) by mutant id
        self._inside = not functions

    def visit(self, node: ast.AST) -> ast.AST:
        if _skipped(node):
            return node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            entered = not self._inside and node.name in self.functions
            if entered:
                self._inside = True
            # Defaults are behaviour; annotations and decorators are not mutated.
            node.args.defaults = [self.visit(d) for d in node.args.defaults]
            node.args.kw_defaults = [d if d is None else self.visit(d) for d in node.args.kw_defaults]
            node.body = [self.visit(s) for s in node.body]
            if entered:
                self._inside = False
            return node
        if isinstance(node, ast.AnnAssign):
            if node.value is not None:
                node.value = self.visit(node.value)
            return node
        if self._inside:
            for desc, make in _variants(node):
                mutant_id = len(self.found)
                self.found.append((getattr(node, "lineno", 0), desc))
                if mutant_id == self.target:
                    return ast.copy_location(make(node), node)
        return self.generic_visit(node)


def _tree(module: str) -> tuple[ast.Module, Path]:
    # Found by path, not importlib.util.find_spec: that would import the parent package, and with it
    # the unmutated module, before the hook is in place.
    path = REPO / (module.replace(".", "/") + ".py")
    if not path.exists():  # a package: its __init__.py
        path = path.with_suffix("") / "__init__.py"
    return ast.parse(path.read_text(), str(path)), path


def mutants(module: str, functions: list[str]) -> list[tuple[int, str]]:
    tree, _ = _tree(module)
    walker = _Walker(functions)
    walker.visit(tree)
    return walker.found


class _Hook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, module: str, code: object, path: Path) -> None:
        self.module, self.code, self.path = module, code, path
        self.executed = False  # the mutated code ran (an import that raises is a caught mutant, too)

    def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
        if name != self.module:
            return None
        # A package needs its folder as the search path, or its submodules cannot be imported.
        search = [str(self.path.parent)] if self.path.name == "__init__.py" else None
        return importlib.util.spec_from_file_location(name, self.path, loader=self, submodule_search_locations=search)

    def create_module(self, spec):  # type: ignore[no-untyped-def]
        return None

    def exec_module(self, module):  # type: ignore[no-untyped-def]
        self.executed = True
        exec(self.code, module.__dict__)


def _child(module: str, functions: list[str], target: int | None, tests: list[str]) -> None:
    """In the forked child: import `module` mutated, run its tests, exit with pytest's status."""
    import pytest

    tree, path = _tree(module)
    if target is not None:
        tree = _Walker(functions, target).visit(copy.deepcopy(tree))
        ast.fix_missing_locations(tree)
    hook = _Hook(module, compile(tree, str(path), "exec"), path)
    sys.meta_path.insert(0, hook)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    code = pytest.main(["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *tests])
    if not hook.executed:
        os._exit(_NOT_MUTATED)  # the tests ran against the original module: a result would mean nothing
    os._exit(int(code))


def _run(module: str, functions: list[str], target: int | None, tests: list[str], timeout: float) -> str:
    pid = os.fork()
    if pid == 0:
        try:
            _child(module, functions, target, tests)
        finally:
            os._exit(99)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            if code == _NOT_MUTATED:
                raise SystemExit(f"{module}: {' '.join(tests)} did not import it through the mutation hook")
            return "survived" if code == 0 else "killed"
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.02)


@dataclass
class Outcome:
    module: str
    mutant: int
    line: int
    desc: str
    status: str


def run_module(module: str) -> Iterator[Outcome]:
    tests, functions = TARGETS[module]
    start = time.monotonic()
    if _run(module, functions, None, tests, 600) != "survived":
        raise SystemExit(f"{module}: the clean run of {' '.join(tests)} fails; fix that first")
    timeout = max(10.0, 10 * (time.monotonic() - start))
    for i, (line, desc) in enumerate(mutants(module, functions)):
        yield Outcome(module, i, line, desc, _run(module, functions, i, tests, timeout))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", action="append", help="a suffix such as router or bench.data; repeatable")
    ap.add_argument("--show-survivors", action="store_true")
    args = ap.parse_args(argv)
    os.chdir(REPO)
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import pytest  # noqa: F401  (imported once here, so every child starts with it loaded)

    chosen = [m for m in TARGETS if not args.module or any(m.endswith(s) for s in args.module)]
    print(f"mutation testing, {time.strftime('%Y-%m-%d')}")
    print(f"{'module':<28}{'mutants':>8}{'killed':>8}{'timeout':>8}{'survived':>9}")
    total = [0, 0, 0, 0]
    for module in chosen:
        outcomes = list(run_module(module))
        counts = [len(outcomes)] + [sum(o.status == s for o in outcomes) for s in ("killed", "timeout", "survived")]
        total = [a + b for a, b in zip(total, counts, strict=True)]
        print(f"{module.removeprefix('skillchat.'):<28}{counts[0]:>8}{counts[1]:>8}{counts[2]:>8}{counts[3]:>9}", flush=True)
        if args.show_survivors:
            for o in outcomes:
                if o.status == "survived":
                    print(f"    survived #{o.mutant} line {o.line}: {o.desc}", flush=True)
    print(f"{'total':<28}{total[0]:>8}{total[1]:>8}{total[2]:>8}{total[3]:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
