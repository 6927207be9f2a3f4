"""Bad replay sets and bad bench options, through the CLI: one line naming the file (and line), exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from skillchat.cli import main

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402


@pytest.fixture(scope="module")
def good_set(tmp_path_factory) -> Path:
    return synth.write_set(tmp_path_factory.mktemp("good") / "good", n_train=30, n_test=15)


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in ("queries.csv", "outcomes.csv"):
        (dst / f).write_bytes((src / f).read_bytes())
    return dst


def _cell(col, value, row=0):  # type: ignore[no-untyped-def]
    def fn(header, rows):  # type: ignore[no-untyped-def]
        rows[row][header.index(col)] = value
        return header, rows

    return fn


def _one_model(header, rows):  # type: ignore[no-untyped-def]
    first = rows[0][1]
    return header, [r for r in rows if r[1] == first]


def _dup_query(header, rows):  # type: ignore[no-untyped-def]
    return header, rows + [rows[3]]  # line 5 again, as the last line


def _dup_outcome(header, rows):  # type: ignore[no-untyped-def]
    return header, rows[:7] + [rows[2]] + rows[7:]  # line 4 again, on line 9


def _bad_utf8(path: Path) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b",", b"\xff\xfe,", 1)  # line 5
    path.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize(
    "file, edit, expected",
    [
        ("outcomes.csv", _one_model, "only one model ("),
        ("outcomes.csv", _cell("score", "nan", 4), "line 6: score 'nan' is not a finite number"),
        ("outcomes.csv", _cell("score", "NaN", 0), "line 2: score 'NaN' is not a finite number"),
        ("outcomes.csv", _cell("cost_usd", "inf", 1), "line 3: cost_usd 'inf' is not a finite number"),
        ("outcomes.csv", _cell("prompt_tokens", "inf", 2), "line 4: prompt_tokens 'inf' is not a finite number"),
        ("outcomes.csv", _cell("completion_tokens", "nan", 3), "line 5: completion_tokens 'nan' is not a finite number"),
        ("outcomes.csv", _cell("completion_tokens", "-inf", 3), "line 5: completion_tokens '-inf' is not a finite number"),
        ("queries.csv", _dup_query, "duplicate qid"),
        ("outcomes.csv", _dup_outcome, "line 9: a second row for"),
        ("queries.csv", _cell("split", "validation", 2), "line 4: unknown split 'validation'"),
        ("queries.csv", _cell("split", "", 2), "line 4: unknown split ''"),
        ("outcomes.csv", _bad_utf8, "line 5: not valid UTF-8"),
        ("queries.csv", _bad_utf8, "line 5: not valid UTF-8"),
        ("queries.csv", lambda h, r: ([c for c in h if c != "text"], [x[:1] + x[2:] for x in r]),
         "line 1: missing column(s) text"),
    ],
)
def test_bad_replay_set_is_one_line_naming_file_and_line(good_set, tmp_path, capsys, file, edit, expected):
    d = _copy(good_set, tmp_path / "bad")
    if edit is _bad_utf8:
        _bad_utf8(d / file)
    else:
        synth.edit_csv(d / file, edit)
    assert main(["bench", str(d), "--quiet", "--no-relearn", "--no-per-lambda"]) == 2
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert "\n" not in err, err
    assert "Traceback" not in cap.err and cap.out == ""
    assert err.startswith(f"skillchat: {d / file}: "), err
    assert expected in err, err


def _only_train(header, rows):  # type: ignore[no-untyped-def]
    return header, [r[:3] + ["train"] for r in rows]


def _short_row(header, rows):  # type: ignore[no-untyped-def]
    return header, rows[:1] + [rows[1][:2]] + rows[2:]  # line 3 cut to two fields


@pytest.mark.parametrize(
    "file, edit, expected",
    [
        ("outcomes.csv", _cell("score", "1.5", 0), "line 2: score 1.5 is outside [0, 1]"),
        ("outcomes.csv", _cell("score", "-0.5", 1), "line 3: score -0.5 is outside [0, 1]"),
        ("outcomes.csv", _cell("prompt_tokens", "-3", 2), "line 4: prompt_tokens -3 is outside >= 0"),
        ("outcomes.csv", _cell("cost_usd", "abc", 0), "line 2: cost_usd 'abc' is not a number"),
        ("outcomes.csv", lambda h, r: (h, r[1:]), "not a dense matrix: 1 (query, model) pair(s) have no row, for example query "),
        ("outcomes.csv", _short_row, "line 3: 2 fields, expected at least 6"),
        ("queries.csv", _only_train, "no test queries (a replay set needs both splits)"),
        ("queries.csv", lambda h, r: (h, []), "no queries"),
    ],
)
def test_more_bad_replay_sets_are_one_line_naming_the_file(good_set, tmp_path, capsys, file, edit, expected):
    d = _copy(good_set, tmp_path / "bad")
    synth.edit_csv(d / file, edit)
    assert main(["bench", str(d), "--quiet", "--no-relearn", "--no-per-lambda"]) == 2
    cap = capsys.readouterr()
    assert cap.err.startswith(f"skillchat: {d / file}: {expected}") and cap.err.count("\n") == 1, cap.err
    assert cap.out == ""


def test_an_empty_file_names_the_header_it_needs_and_a_file_is_not_a_folder(good_set, tmp_path, capsys):
    d = _copy(good_set, tmp_path / "empty")
    (d / "queries.csv").write_bytes(b"")
    assert main(["bench", str(d), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"skillchat: {d / 'queries.csv'}: empty file (expected a header: qid,text,category,split)"
    assert main(["bench", str(d / "outcomes.csv"), "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == f"skillchat: {d / 'outcomes.csv'}: not a folder"


def test_zero_tokens_are_a_valid_count(good_set, tmp_path):
    from skillchat.bench import data

    d = _copy(good_set, tmp_path / "zero")
    synth.edit_csv(d / "outcomes.csv", _cell("prompt_tokens", "0", 0))
    rs = data.load(d)
    assert len(rs.models) >= 2


def test_models_naming_an_unknown_model(good_set, capsys):
    assert main(["bench", str(good_set), "--models", "alpha,nope", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"skillchat: {good_set / 'outcomes.csv'}: unknown model(s) 'nope' (the set has: ")
    assert err.count("\n") == 1


def test_the_duplicate_lines_are_both_named(good_set, tmp_path, capsys):
    d = _copy(good_set, tmp_path / "dupq")
    synth.edit_csv(d / "queries.csv", _dup_query)
    n_lines = len((d / "queries.csv").read_text().splitlines())
    assert main(["bench", str(d), "--quiet"]) == 2
    assert f"line {n_lines}: duplicate qid" in capsys.readouterr().err
    d = _copy(good_set, tmp_path / "dupo")
    synth.edit_csv(d / "outcomes.csv", _dup_outcome)
    assert main(["bench", str(d), "--quiet"]) == 2
    assert "(first on line 4)" in capsys.readouterr().err


def test_one_model_names_the_outcomes_file(good_set, tmp_path, capsys):
    d = _copy(good_set, tmp_path / "one")
    synth.edit_csv(d / "outcomes.csv", _one_model)
    assert main(["bench", str(d), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{d / 'outcomes.csv'}: only one model ('alpha') in the set: a router needs at least two" in err


def test_empty_folder_names_the_missing_file(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["bench", str(tmp_path / "empty"), "--quiet"]) == 2
    cap = capsys.readouterr()
    assert cap.err.strip() == f"skillchat: {tmp_path / 'empty' / 'queries.csv'}: no such file"


def test_models_naming_one_model(good_set, capsys):
    assert main(["bench", str(good_set), "--models", "beta", "--quiet"]) == 2
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and cap.err.count("\n") == 1
    assert "outcomes.csv" in cap.err and "'beta'" in cap.err and "a router needs at least two models" in cap.err


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--seeds", "0"], "argument --seeds: expected a whole number ≥ 1 and ≤ 10000, got 0"),
        (["--seeds", "-2"], "argument --seeds: expected a whole number ≥ 1 and ≤ 10000, got -2"),
        (["--seeds", "two"], "argument --seeds: expected a whole number ≥ 1 and ≤ 10000, got 'two'"),
        (["--seeds", "1e12"], "argument --seeds: expected a whole number ≥ 1 and ≤ 10000, got 1e12"),
        (["--jobs", "0"], "argument --jobs: expected a whole number ≥ 1 and ≤ 1024, got 0"),
        (["--knn", "0"], "argument --knn: expected a whole number ≥ 1 and ≤ 1000000, got 0"),
        (["--modes", "nan"], "argument --modes: expected a whole number ≥ 1 and ≤ 1000000, got nan"),
        (["--seed", "1.5"], "argument --seed: expected a whole number ≥ -9223372036854775808 and ≤ 9223372036854775807, got 1.5"),
    ],
)
def test_bad_seed_and_job_counts_are_usage_errors(good_set, capsys, args, expected):
    with pytest.raises(SystemExit) as e:
        main(["bench", str(good_set), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
