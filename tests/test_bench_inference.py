"""benchmarks/bench_inference.py: bad input is one clear line and exit 2, never a traceback."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_inference.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_inference", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_inference", mod)  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_a_folder_without_replay_sets_is_a_clear_error(bench, tmp_path, capsys):
    assert bench.main([str(tmp_path)]) == 2
    assert "no replay-set folders" in capsys.readouterr().err


def test_missing_columns_name_the_file(bench, tmp_path, capsys):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "queries.csv").write_text("qid,body\n1,hello\n", encoding="utf-8")
    assert bench.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "queries.csv" in err and "missing column" in err


def test_runs_on_a_small_set_and_skips_unknown_categories(bench, tmp_path, capsys):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "queries.csv").write_text(
        'qid,text,category,split\n1,"Write a function to reverse a string.",mbpp,train\n'
        '2,"What is 15% of 240?",math,test\n3,"hello",no-such-category,train\n',
        encoding="utf-8",
    )
    assert bench.main([str(tmp_path), "--per-category", "5"]) == 0
    out = capsys.readouterr().out
    assert "set/no-such-category (1)" in out and "OVERALL" in out


def test_wilson_interval(bench):
    lo, hi = bench.wilson(9, 10)
    assert 0.59 < lo < 0.6 and 0.98 < hi < 0.99
    assert bench.wilson(0, 0) == (0.0, 1.0)
