"""benchmarks/bench_cells.py: what teaching left each model with, and where the router then sends each category."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_cells", Path(__file__).parents[2] / "benchmarks" / "bench_cells.py")
assert _spec and _spec.loader
bench_cells = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_cells)


def test_the_report_counts_every_rating_and_shows_the_specialists_taking_over(tmp_path):
    # Each task type has a cheap specialist and one dear generalist is good at all of them.
    replay = synth.write_set(tmp_path / "s", models={**synth.SPECIALISTS, **synth.GENERALIST})
    lines = bench_cells.one((str(replay), 0)).splitlines()
    assert lines[0] == "seed 0"
    at = {title: i for i, title in enumerate(lines) if not title.startswith("    ")}
    rated = lines[at["  rated while teaching (ratings/mean score):"] + 1:at[next(t for t in at if "competence" in t)]]
    assert sorted(ln.split(":")[0].strip() for ln in rated) == sorted(synth.VOCAB)
    # every train query was rated once
    assert sum(int(tok.split("/")[0]) for ln in rated for tok in ln.split(": ", 1)[1].split() if "/" in tok) == 240
    competence = [ln for ln in lines if ln.startswith("    ") and "±" in ln]
    assert len(competence) == len(synth.VOCAB)
    routes = lines[at["  greedy routes on the test split:"] + 1:]
    assert [ln.split(":")[0].split()[1] for ln in routes] == [str(lam) for lam in bench_cells.LAMBDAS]
    # at a high cost weight each task type's 40 test queries go to its own specialist
    specialist = {"math": "alpha", "poem": "beta", "code": "gamma"}
    for part in routes[-1].split(" | ")[1:]:
        category, sends = part.split(": ", 1)
        assert sends == f"{specialist[category]} 40"


def test_a_bad_set_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_cells.py", str(tmp_path / "missing")])
    with pytest.raises(SystemExit) as e:
        bench_cells.main()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("bench_cells: ") and err.count("\n") == 1
