"""`bench --compare-share X`: a simulated user who compares two answers side by side on a share of train turns."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from skillchat.bench import data, report, runner
from skillchat.cli import main
from skillchat.core.compare import POLICY

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402

FAST = runner.BenchOptions(relearn=False, per_lambda=False, baselines=False)


@pytest.fixture(scope="module")
def mixed_set(tmp_path_factory) -> Path:
    return synth.write_set(
        tmp_path_factory.mktemp("mixed") / "mixed", models=synth.models_of([synth.SPECIALISTS, synth.GENERALIST]), seed=1
    )


def _run(path: Path, **kw) -> runner.BenchResult:  # type: ignore[no-untyped-def]
    import dataclasses

    return runner.run(data.load(path), dataclasses.replace(FAST, **kw))


def test_share_zero_replays_exactly_as_without_comparisons(mixed_set):
    a, b = _run(mixed_set), _run(mixed_set, compare_share=0.0)
    assert b.compared_turns == 0
    assert [(t.agent_id, t.score) for t in a.ratings_log] == [(t.agent_id, t.score) for t in b.ratings_log]
    assert report.summary(a) == report.summary(b)


def test_compared_turns_reveal_both_answers_and_log_them_as_a_pair(mixed_set):
    res = _run(mixed_set, compare_share=0.5)
    assert 0.35 * res.n_train < res.compared_turns < 0.65 * res.n_train
    pairs = [t for t in res.ratings_log if t.policy == POLICY]
    assert len(pairs) == 2 * res.compared_turns
    # Every rating is a revealed outcome, and the user paid for both answers of a compared turn.
    assert res.ratings_used == len(res.ratings_log) == res.n_train + res.compared_turns
    by_pair: dict[str, list] = {}
    for t in pairs:
        by_pair.setdefault(t.pair, []).append(t)
    assert all(len(v) == 2 and v[0].agent_id != v[1].agent_id for v in by_pair.values())
    assert all(v[0].propensity == 1.0 and 0 < v[1].propensity < 1 for v in by_pair.values())
    total_paid = sum(t.cost_usd for t in res.ratings_log)
    assert res.experienced.cost * res.n_train == pytest.approx(total_paid)
    # The checkpoints count turns; the ratings given by then include the second answers.
    assert all(res.ratings_at[n] > n for n, _ in res.learning_curve if n >= 50)


def test_comparing_teaches_faster_per_turn_and_costs_more(mixed_set):
    base, cmp = _run(mixed_set), _run(mixed_set, compare_share=1.0)
    b, c = report.summary(base), report.summary(cmp)
    assert c["compare_share"] == 1.0 and c["compared_turns"] == cmp.n_train
    assert c["experienced"]["cost"] > b["experienced"]["cost"]
    # Early in training (50 turns) the router that saw two outcomes per turn routes the test split better.
    early = lambda res: res.learning_curve[0][1].score  # noqa: E731
    assert early(cmp) >= early(base)


def test_cli_flag_reports_the_share_and_rejects_nonsense(mixed_set, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["bench", str(mixed_set), "--compare-share", "0.3", "--json", str(out), "--quiet", "--no-relearn",
                 "--no-per-lambda", "--no-plot"]) == 0
    text = capsys.readouterr().out
    assert "side by side on 30% of the train turns" in text and "turns to 95% of the final score" in text
    doc = json.loads(out.read_text())
    assert doc["summary"]["compare_share"] == 0.3 and doc["summary"]["compared_turns"] > 0
    assert doc["ratings_used"] == doc["n_train"] + doc["summary"]["compared_turns"]
    assert all({"turns", "ratings"} <= set(p) for p in doc["learning_curve"])
    for bad in ("1.5", "-0.1", "nan", "half"):
        with pytest.raises(SystemExit) as e:
            main(["bench", str(mixed_set), "--compare-share", bad])
        assert e.value.code == 2
        assert "share from 0 to 1" in capsys.readouterr().err
