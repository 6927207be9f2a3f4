"""benchmarks/bench_inference.py: bad input is one clear line and exit 2, never a traceback."""

import importlib.util
import json
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


def test_the_fresh_files_are_reported_as_held_out(bench, tmp_path, capsys):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "queries.csv").write_text('qid,text,category,split\n1,"What is 15% of 240?",math,test\n',
                                                  encoding="utf-8")
    out_json = tmp_path / "out.json"
    assert bench.main([str(tmp_path), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "Fresh requests, all held out" in out and "Fresh conversations, all held out" in out
    doc = json.loads(out_json.read_text())
    fresh = doc["fresh_requests"]["OVERALL"]
    assert fresh["tune"]["n"] == 0 and fresh["held-out"]["n"] >= 150
    assert doc["fresh_conversations"]["OVERALL"]["held-out"]["n"] >= 40
    assert "held-out-not-in-handbook" in doc["requests"]["OVERALL"]


def test_repeats_of_handbook_examples_are_found(bench):
    from skillchat import handbooks

    ex = bench.Examples(handbooks.load("general"))
    some = next(iter(handbooks.load("general").skills.values())).examples[0]
    assert ex.repeats(some) and ex.repeats(some.upper() + "  ")
    assert not ex.repeats("Tell me about the mating habits of the lesser spotted zorb.")


def test_no_evaluation_request_repeats_a_handbook_example(bench):
    """The handbook's examples are written for it, never copied from the data it is measured on: a
    held-out figure on a repeated example would measure memory."""
    from skillchat import handbooks

    ex = bench.Examples(handbooks.load("general"))
    repeats = []
    for name in ("requests.jsonl", "conversations.jsonl", "fresh_requests.jsonl", "fresh_conversations.jsonl"):
        for it in bench.load_own_items(bench.DATA / name):
            if ex.repeats(it.messages[-1].content):
                repeats.append((name, it.id, it.messages[-1].content))
    assert repeats == []
