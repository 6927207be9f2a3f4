"""benchmarks/bench_tune.py: choosing defaults on validation folds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402

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


def test_first_fold_runs_further_folds_not_the_same_ones_again(tmp_path, monkeypatch, capsys):
    replay = synth.write_set(tmp_path / "s")
    asked: list[int] = []

    def fake_one(job):  # type: ignore[no-untyped-def]
        # Fold f scores f / 100 below the best single model, so each printed fold names its job.
        _, config, fold, _ = job
        asked.append(fold)
        top = 0.8 - fold / 100
        out = {"router": [0.5] * (len(bench_tune.SHARES) - 1) + [top], "router_mean": 0.6, "lam0": top,
               "best_single": 0.8, "r95": 50, "teach": 0.7, "teach_cost": 0.4, "seconds": 0.0}
        return config, fold, out

    class SerialPool:
        def __init__(self, jobs):  # type: ignore[no-untyped-def]
            pass

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *exc):  # type: ignore[no-untyped-def]
            return False

        def map(self, fn, jobs):  # type: ignore[no-untyped-def]
            return [fake_one(j) for j in jobs]

    monkeypatch.setattr(bench_tune.mp, "Pool", SerialPool)
    monkeypatch.setattr(sys, "argv", ["bench_tune.py", str(replay), "", "--folds", "3", "--first-fold", "5"])
    bench_tune.main()
    assert asked == [5, 6, 7]
    assert "by fold: -0.050 -0.060 -0.070" in capsys.readouterr().out
