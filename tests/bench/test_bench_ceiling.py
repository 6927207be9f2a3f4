"""benchmarks/bench_ceiling.py: the learned router taught every model's outcome, next to the references."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from skillchat.bench import data, runner

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_ceiling", Path(__file__).parents[2] / "benchmarks" / "bench_ceiling.py")
assert _spec and _spec.loader
bench_ceiling = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_ceiling)


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Path:
    return synth.write_set(tmp_path_factory.mktemp("set") / "s", models={**synth.SPECIALISTS, **synth.GENERALIST})


def test_rating_every_model_gives_each_one_every_train_query(replay):
    rs = data.load(replay)
    t = runner.untaught(rs, 0)
    bench_ceiling.rate_every_model(t, rs)
    for agent in t.model_of:
        succ, fail = t.learner.hb.evidence.agent(agent)
        assert succ + fail == pytest.approx(len(rs.train))


def test_told_every_outcome_without_margins_the_router_reaches_the_per_category_reference(replay):
    # Each task type has its own cheap specialist: whoever knows every outcome routes every
    # question to it, at a few percent of the generalist's cost.
    rows = bench_ceiling.one((str(replay), 0))
    assert len(rows) == len(bench_ceiling.ROWS)
    assert all(len(r) == len(bench_ceiling.SHARES) for r in rows)
    no_margins, per_category = rows[2], rows[3]
    assert no_margins[0] is not None and per_category[0] is not None
    assert no_margins[0] == pytest.approx(per_category[0], abs=0.03)
    assert no_margins[0] > 0.8
    assert rows[0][0] is not None and rows[0][0] < no_margins[0]  # one rating a query knows less


def test_a_bad_set_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_ceiling.py", str(tmp_path / "missing")])
    with pytest.raises(SystemExit) as e:
        bench_ceiling.main()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("bench_ceiling: ") and err.count("\n") == 1
