"""`bench --explore gentle`: the simulated user teaches with /explore gentle instead of plain Thompson sampling."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from skillchat.bench import data, runner
from skillchat.cli import main
from skillchat.core.router import GENTLE_SHARE

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402

FAST = runner.BenchOptions(relearn=False, per_lambda=False, baselines=False, curve_start=0)


@pytest.fixture(scope="module")
def mixed_set(tmp_path_factory) -> Path:
    return synth.write_set(
        tmp_path_factory.mktemp("mixed") / "mixed", models=synth.models_of([synth.SPECIALISTS, synth.GENERALIST]), seed=1
    )


def test_gentle_teaching_strays_from_the_best_expected_model_on_at_most_a_quarter_of_turns(mixed_set):
    rs = data.load(mixed_set)
    plain = runner.run(rs, FAST)
    gentle = runner.run(rs, dataclasses.replace(FAST, train_policy="gentle"))

    def away(res: runner.BenchResult) -> list[float]:
        # Each logged turn keeps every agent's probability; the best expected agent is the likeliest one.
        return [1.0 - max(t.probabilities.values()) for t in res.ratings_log]

    assert {t.policy for t in gentle.ratings_log} == {"gentle"}
    assert max(away(gentle)) <= GENTLE_SHARE + 1e-9
    assert max(away(plain)) > GENTLE_SHARE  # plain Thompson sampling does stray further early on
    assert sum(away(gentle)) < sum(away(plain))


def test_cli_flag_names_the_teaching_policy(mixed_set, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["bench", str(mixed_set), "--explore", "gentle", "--json", str(out), "--quiet", "--no-relearn",
                 "--no-per-lambda", "--no-plot"]) == 0
    assert "gentle Thompson sampling (at most 1 turn in 4 away from the best expected model)" in capsys.readouterr().out
    assert json.loads(out.read_text())["policy"] == {"train": "gentle", "test": "greedy"}
    with pytest.raises(SystemExit) as e:
        main(["bench", str(mixed_set), "--explore", "sometimes"])
    assert e.value.code == 2
