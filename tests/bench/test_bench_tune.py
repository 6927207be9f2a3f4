"""benchmarks/bench_tune.py: choosing defaults on validation folds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("bench_tune", Path(__file__).parents[2] / "benchmarks" / "bench_tune.py")
assert _spec and _spec.loader
bench_tune = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_tune)


def test_a_bad_set_is_one_line_and_exit_2_before_any_worker_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_tune.py", str(tmp_path / "missing"), "", "--folds", "1"])
    monkeypatch.setattr(bench_tune.mp, "Pool", lambda *a: pytest.fail("a worker pool was started"))
    with pytest.raises(SystemExit) as e:
        bench_tune.main()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("bench_tune: ") and err.count("\n") == 1
