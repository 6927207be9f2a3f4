"""bench --seeds / --jobs / --shuffle-test, the summary block and its figures."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skillchat.bench import data, report, runner, seeds
from skillchat.bench.data import Result
from skillchat.bench.runner import BenchOptions, BenchResult, Point
from skillchat.cli import main

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402

FAST = ["--quiet", "--no-relearn", "--no-per-lambda"]


@pytest.fixture(scope="module")
def mixed_set(tmp_path_factory) -> Path:
    """Three cheap specialists and a dear generalist: the text says which specialist to call."""
    return synth.write_set(
        tmp_path_factory.mktemp("mixed") / "mixed", models=synth.models_of([synth.SPECIALISTS, synth.GENERALIST]), seed=1
    )


# Sharp specialists and a mediocre, dear generalist: routing by the text gains a lot over the best
# single model (the generalist), so the gain stands far above noise before the shuffle.
SHARP = {
    "alpha": ({"math": 0.95, "poem": 0.1, "code": 0.1}, 0.001),
    "beta": ({"math": 0.1, "poem": 0.95, "code": 0.1}, 0.001),
    "gamma": ({"math": 0.1, "poem": 0.1, "code": 0.95}, 0.001),
    "big": ({"math": 0.6, "poem": 0.6, "code": 0.6}, 0.02),
}


@pytest.fixture(scope="module")
def sharp_set(tmp_path_factory) -> Path:
    return synth.write_set(tmp_path_factory.mktemp("sharp") / "sharp", models=SHARP, n_train=300, n_test=300, seed=2)


def _bench_json(path: Path, tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / f"r{len(list(tmp_path.iterdir()))}.json"
    assert main(["bench", str(path), *FAST, "--json", str(out), *args]) == 0
    return json.loads(out.read_text())


def _leaves(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    else:
        yield path, node


def _get(node: Any, path: tuple) -> Any:
    for p in path:
        if isinstance(node, dict):
            node = node.get(p, 0 if "counts" in path else None)
        else:
            node = node[p]
    return node


# --- several seeds ----------------------------------------------------------------------------


def test_seeds_report_means_of_the_per_seed_runs_with_intervals(mixed_set, tmp_path, capsys):
    doc = _bench_json(mixed_set, tmp_path, "--seeds", "3", "--jobs", "2")
    assert doc["seeds"] == [0, 1, 2]
    assert len(doc["per_seed"]) == 3
    assert [d["seed"] for d in doc["per_seed"]] == [0, 1, 2]
    # Every key of one seed's JSON is still there, with the same type of value where it does not vary.
    single = _bench_json(mixed_set, tmp_path, "--seed", "1")
    assert set(single) - {"intervals"} <= set(doc)
    assert isinstance(doc["router"], list) and isinstance(doc["summary"]["router_at_100pct"], float)
    # Each per-seed entry is exactly that seed's single run.
    for k in ("seeds", "per_seed", "intervals", report.TIMING_KEY):
        single.pop(k)
    assert doc["per_seed"][1] == single

    varying = 0
    checked = 0
    for path, value in _leaves({k: v for k, v in doc.items() if k not in ("seeds", "per_seed", "intervals", report.TIMING_KEY)}):
        if path == ("seed",) or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        vals = [_get(d, path) for d in doc["per_seed"]]
        nums = [v for v in vals if v is not None]
        assert value == pytest.approx(sum(nums) / len(nums)), path
        iv = seeds.lookup(doc["intervals"], *path)
        assert iv is not None, path
        assert iv.lo <= value <= iv.hi, path
        checked += 1
        if len(set(nums)) > 1:
            varying += 1
            assert iv.half_width > 0, path
            sd = math.sqrt(sum((v - iv.mean) ** 2 for v in nums) / (len(nums) - 1))
            assert iv.half_width == pytest.approx(seeds.t975(len(nums) - 1) * sd / math.sqrt(len(nums))), path
    assert checked > 100 and varying > 5  # the router's figures do move between seeds on this set

    assert "mean ± 95% interval over 3 seeds" in capsys.readouterr().out  # --json FILE: the text report as well

def test_text_report_of_several_seeds(mixed_set, capsys):
    assert main(["bench", str(mixed_set), *FAST, "--seeds", "3", "--no-plot"]) == 0
    text = capsys.readouterr().out
    head = text.split("\n\n")[1]
    assert head.startswith("Summary") and "mean ± 95% interval over 3 seeds" in head
    assert "±" in head and "router, best at <= 100% cost" in head and "at 30% cost" in head and "at 50% cost" in head
    assert "while teaching" in head and "ratings to 95% of the final score" in head
    assert "seeds 0..2" in text and "Per seed" in text


def test_results_do_not_depend_on_the_job_count(mixed_set, tmp_path):
    one = _bench_json(mixed_set, tmp_path, "--seed", "4", "--seeds", "3", "--jobs", "1")
    two = _bench_json(mixed_set, tmp_path, "--seed", "4", "--seeds", "3", "--jobs", "2")
    assert one["seeds"] == [4, 5, 6]
    assert one.pop(report.TIMING_KEY)["jobs"] == 1
    assert two.pop(report.TIMING_KEY)["jobs"] == 2
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)


def test_one_seed_has_no_interval_and_itself_as_per_seed(mixed_set, tmp_path):
    doc = _bench_json(mixed_set, tmp_path, "--seed", "2")
    assert doc["seeds"] == [2] and doc["intervals"] is None
    assert list(doc)[-1] == report.TIMING_KEY
    per = doc["per_seed"]
    assert len(per) == 1
    rest = {k: v for k, v in doc.items() if k not in ("seeds", "per_seed", "intervals", report.TIMING_KEY)}
    assert per[0] == rest


def test_aggregate_rules():
    docs = [
        {"seed": 0, "n": 5, "x": 1.0, "top": "a", "counts": {"a": 2}, "opt": None, "ls": [1, 2]},
        {"seed": 1, "n": 5, "x": 2.0, "top": "b", "counts": {"a": 1, "b": 3}, "opt": 4.0, "ls": [3, 2]},
        {"seed": 2, "n": 5, "x": 6.0, "top": "b", "counts": {"b": 1}, "opt": None, "ls": [5, 2]},
    ]
    mean, ivs = seeds.aggregate(docs)
    assert mean["seed"] == 0 and "seed" not in ivs
    assert mean["n"] == 5 and isinstance(mean["n"], int) and ivs["n"]["half_width"] == 0
    assert mean["x"] == 3.0
    sd = math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2)
    assert ivs["x"]["half_width"] == pytest.approx(4.303 * sd / math.sqrt(3))
    assert ivs["x"]["lo"] < 3.0 < ivs["x"]["hi"]
    assert mean["top"] == "b"
    assert mean["counts"] == {"a": 1.0, "b": pytest.approx(4 / 3)}  # a model not picked in a seed counts 0 there
    assert mean["opt"] == 4.0 and ivs["opt"]["n"] == 1  # None (e.g. out of range) is left out, and said so
    assert mean["ls"] == [3.0, 2]


def test_t_quantiles():
    assert seeds.t975(1) == 12.706 and seeds.t975(4) == 2.776
    assert 2.042 > seeds.t975(35) > 2.021
    assert seeds.t975(1000) == pytest.approx(1.9623, abs=2e-4)
    iv = seeds.interval([0.70, 0.72, 0.71, 0.69, 0.73])
    assert iv.mean == pytest.approx(0.71)
    assert iv.half_width == pytest.approx(2.776 * math.sqrt(0.00025) / math.sqrt(5))
    assert seeds.interval([0.5]).half_width == 0


# --- the summary ------------------------------------------------------------------------------


def _result(score: float, cost: float, top: str = "m") -> Result:
    return Result(score, cost, 1.0, top, {top: 1})


def _bench_result(**kw: Any) -> BenchResult:
    """A BenchResult with only what the summary reads; any other field is None."""
    fields = {f.name: None for f in dataclasses.fields(BenchResult)}
    fields.update(options=BenchOptions(), ratings_at={}, compared_turns=0)  # no comparisons: turns are ratings
    fields.update(kw)
    return BenchResult(**fields)


def test_summary_figures_by_hand():
    ref = 0.01  # the best single model's test cost: shares below are cost / 0.01
    res = _bench_result(
        best_single=("big", _result(0.8, ref, "big")),
        # shares 10%, 30%, 80%, 120%: a concave frontier
        router=[Point(lam, _result(s, c)) for lam, (s, c) in zip((1.0, 0.3, 0.1, 0.0),
                                                                 ((0.5, 0.001), (0.7, 0.003), (0.85, 0.008), (0.9, 0.012)),
                                                                 strict=True)],
        knn=[Point(0.1, _result(0.75, 0.004))],  # 40%: nothing to read at 30%
        per_category=[Point(0.5, _result(0.6, 0.002)), Point(0.0, _result(0.8, 0.006))],  # 20%, 60%
        experienced=_result(0.7, 0.005),
        best_single_on_train=_result(0.78, 0.01, "big"),
        learning_curve=[(50, _result(0.5, 0.0)), (100, _result(0.8, 0.0)), (200, _result(0.82, 0.0))],
        singles=[("big", _result(0.8, ref, "big")), ("small", _result(0.5, 0.001, "small"))],
    )
    sm = report.summary(res)
    assert sm["best_single"] == {"model": "big", "score": 0.8, "cost": 0.01}
    assert sm["router_at_100pct"] == pytest.approx(0.85 + 0.05 * 0.2 / 0.4)  # on the 80%-120% segment
    assert sm["gain_at_100pct"] == pytest.approx(0.875 - 0.8)
    assert sm["cheapest_cost_share"] == pytest.approx(0.1)
    assert sm["cheapest_single_share"] == pytest.approx(0.1)
    at30, at50 = sm["score_at_cost"]
    assert at30["cost_share"] == 0.3 and at50["cost_share"] == 0.5
    assert at30["router"] == pytest.approx(0.7) and at50["router"] == pytest.approx(0.7 + 0.15 * 0.2 / 0.5)
    assert at30["knn"] is None and at50["knn"] == pytest.approx(0.75)
    assert at30["per_category"] == pytest.approx(0.65) and at50["per_category"] == pytest.approx(0.75)
    assert sm["experienced"] == {"score": 0.7, "cost": 0.005, "cost_share": pytest.approx(0.5)}
    assert sm["best_single_on_train"] == {"model": "big", "score": 0.78, "cost": 0.01}
    assert sm["experienced_gain"] == pytest.approx(-0.08)
    assert sm["ratings_to_95pct"] == 100  # 0.95 * 0.82 = 0.779: reached at 100

    text = "\n".join(report.render_summary({"summary": sm}))
    assert "router, best at <= 100% cost: 0.875 (vs best single: +0.075)" in text
    assert "cheapest point: 10.0% of the cost (reaches <= 10%)" in text
    assert "at 30% cost: router 0.700, kNN (full info) -, per-category (labels, full info) 0.650" in text
    assert "score 0.700 at 50.0% of the best single model's cost" in text
    assert "(big): 0.780; teaching vs it: -0.080" in text
    assert "ratings to 95% of the final score: 100" in text


def test_summary_without_teaching_figures_shows_dashes():
    res = _bench_result(best_single=("big", _result(0.8, 0.01, "big")), router=[Point(0.0, _result(0.9, 0.02))],
                        knn=[], per_category=[], learning_curve=[])
    sm = report.summary(res)
    assert sm["router_at_100pct"] is None and sm["gain_at_100pct"] is None  # its cheapest point is at 200%
    assert sm["experienced"] is None and sm["best_single_on_train"] is None and sm["ratings_to_95pct"] is None
    text = "\n".join(report.render_summary({"summary": sm}))
    assert "router, best at <= 100% cost: - " in text and "does not reach 10%" in text
    assert "cheapest model costs" not in text  # no single models to say it with
    assert "while teaching (the answers rated on the train split): -" in text
    assert "best single model on the same train queries: -" in text


def test_summary_says_when_no_model_is_cheap_enough_to_reach_10_percent():
    # No router can go below its cheapest model: the summary says so next to the router's figure.
    res = _bench_result(best_single=("big", _result(0.8, 0.01, "big")), router=[Point(9.0, _result(0.6, 0.003))],
                        knn=[], per_category=[], learning_curve=[],
                        singles=[("big", _result(0.8, 0.01, "big")), ("mid", _result(0.6, 0.0025, "mid"))])
    sm = report.summary(res)
    assert sm["cheapest_single_share"] == pytest.approx(0.25)
    text = "\n".join(report.render_summary({"summary": sm}))
    assert "cheapest point: 30.0% of the cost (does not reach 10%; the cheapest model costs 25.0%)" in text


def test_summary_is_at_the_top_of_one_seeds_report_and_in_its_json(mixed_set, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["bench", str(mixed_set), *FAST, "--no-plot", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.split("\n\n")[1].startswith("Summary (test split")
    doc = json.loads(out.read_text())
    res = runner.run(data.load(mixed_set), runner.BenchOptions(relearn=False, per_lambda=False))
    assert doc["summary"] == json.loads(json.dumps(report.summary(res)))
    assert f"router, best at <= 100% cost: {doc['summary']['router_at_100pct']:.3f}" in text


# --- the shuffle test -------------------------------------------------------------------------


def test_shuffled_keeps_outcomes_and_moves_texts_within_each_split(mixed_set):
    rs = data.load(mixed_set)
    sh = rs.shuffled(3)
    assert [(q.qid, q.split) for q in sh.queries] == [(q.qid, q.split) for q in rs.queries]
    assert sh._outcomes is rs._outcomes and sh.models == rs.models
    for split in ("train", "test"):
        before = [q for q in rs.queries if q.split == split]
        after = [q for q in sh.queries if q.split == split]
        assert sorted((q.text, q.category) for q in before) == sorted((q.text, q.category) for q in after)
        moved = sum(a.text != b.text for a, b in zip(before, after, strict=True))
        assert moved > 0.8 * len(before)
    assert [q.text for q in rs.shuffled(3).queries] == [q.text for q in sh.queries]
    assert [q.text for q in rs.shuffled(4).queries] != [q.text for q in sh.queries]
    # Whatever routes by model only scores the same: no outcome moved.
    before, after = data.TestScorer(rs), data.TestScorer(sh)
    for m in rs.models:
        assert before.single(m) == after.single(m)


def test_shuffle_test_removes_the_routers_gain(sharp_set, tmp_path, capsys):
    honest = _bench_json(sharp_set, tmp_path, "--seeds", "2")
    assert "shuffle_test" not in honest
    # The text predicts the best model here, so the router beats the best single model by a margin...
    assert honest["summary"]["gain_at_100pct"] > 0.15
    # ...which the verdict, applied to the unshuffled set, flags: the check can fail.
    assert not report.shuffle_verdict(honest)["passed"]

    shuffled = _bench_json(sharp_set, tmp_path, "--seeds", "2", "--shuffle-test")
    v = shuffled["shuffle_test"]
    assert v["passed"] and "no gain, as expected" in v["verdict"]
    assert v["gain_at_100pct"] <= v["tolerance"] < honest["summary"]["gain_at_100pct"]
    assert shuffled["dataset"].endswith("-shuffled")
    # The best single model scores the same: the outcomes did not move, only the texts.
    assert shuffled["best_single"] == honest["best_single"]
    capsys.readouterr()

    assert main(["bench", str(sharp_set), *FAST, "--no-plot", "--shuffle-test"]) == 0
    text = capsys.readouterr().out
    assert "shuffle test (texts permuted among queries, outcomes kept)" in text and "no gain, as expected" in text


def test_shuffle_verdict_warns_beyond_noise():
    doc = {"n_test": 1000, "seeds": [0],
           "summary": {"best_single": {"score": 0.7}, "router_at_100pct": 0.76, "gain_at_100pct": 0.06}}
    v = report.shuffle_verdict(doc)
    assert not v["passed"] and v["verdict"].startswith("WARNING")
    assert v["tolerance"] == pytest.approx(2 * math.sqrt(0.21 / 1000))
    doc["summary"].update(router_at_100pct=0.71, gain_at_100pct=0.01)
    assert report.shuffle_verdict(doc)["passed"]
    # With several seeds, a gain inside the seeds' interval is noise too.
    interval = {"mean": 0.04, "lo": -0.01, "hi": 0.09, "half_width": 0.05, "n": 3}
    doc.update(seeds=[0, 1, 2], intervals={"summary": {"gain_at_100pct": interval}})
    doc["summary"].update(router_at_100pct=0.74, gain_at_100pct=0.04)
    assert report.shuffle_verdict(doc)["passed"]
