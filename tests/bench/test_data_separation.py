"""The bench never lets the test split leak into learning, tuning or the full-information baselines."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from skillchat.bench import baselines, data, runner
from tests.bench.synth import write_set


@pytest.fixture(scope="module")
def rs(tmp_path_factory: pytest.TempPathFactory) -> data.ReplaySet:
    return data.load(write_set(tmp_path_factory.mktemp("set"), n_train=120, n_test=60))


def test_holdout_is_made_of_train_queries_only(rs: data.ReplaySet) -> None:
    val = rs.holdout(0.25, seed=3)
    test_qids = {q.qid for q in rs.test}
    train_qids = {q.qid for q in rs.train}
    assert {q.qid for q in val.queries} == train_qids
    assert not test_qids & {q.qid for q in val.queries}
    # A quarter of train plays the test split; the rest stays train; the two do not overlap.
    assert len(val.test) == 30 and len(val.train) == 90
    assert not {q.qid for q in val.test} & {q.qid for q in val.train}
    assert set(val._outcomes) == train_qids


def test_holdout_depends_on_its_seed_only(rs: data.ReplaySet) -> None:
    a, b, c = rs.holdout(0.25, 1), rs.holdout(0.25, 1), rs.holdout(0.25, 2)
    assert [q.qid for q in a.test] == [q.qid for q in b.test]
    assert {q.qid for q in a.test} != {q.qid for q in c.test}


def test_full_information_sees_train_rows_only(rs: data.ReplaySet) -> None:
    full = data.FullInformation(rs)
    assert [q.qid for q in full.queries] == [q.qid for q in rs.train]
    with pytest.raises(KeyError):
        full.row(rs.test[0].qid)
    # The default means are over the train rows, computed here by hand.
    k = len(rs.models)
    by_hand = [0.0] * k
    for q in rs.train:
        for j, o in enumerate(rs._outcomes[q.qid]):
            by_hand[j] += o.score / len(rs.train)
    assert [s for s, _ in full.means()] == pytest.approx(by_hand)


def _planted(folder: Path) -> Path:
    """One category where train says 'a' is best and a much larger test split says 'b' is."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [(f"tr{i}", f"question {i} about rivers", "geo", "train") for i in range(10)]
    rows += [(f"te{i}", f"which rivers cross country {i}", "geo", "test") for i in range(200)]
    with open(folder / "queries.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["qid", "text", "category", "split"])
        w.writerows(rows)
    with open(folder / "outcomes.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["qid", "model", "score", "cost_usd", "prompt_tokens", "completion_tokens"])
        for qid, _, _, split in rows:
            a_wins = split == "train"
            w.writerow([qid, "a", int(a_wins), "0.001", "", ""])
            w.writerow([qid, "b", int(not a_wins), "0.001", "", ""])
    return folder


def test_full_information_baselines_learn_from_train_only(tmp_path: Path) -> None:
    rs = data.load(_planted(tmp_path / "planted"))
    full = data.FullInformation(rs)
    # Had the 200 test rows been counted, 'b' would win everywhere.
    assert set(baselines.per_category(full, rs.test, [0.0])[0.0]) == {"a"}
    assert set(baselines.KNN(full, k=5).route(rs.test, [0.0])[0.0]) == {"a"}
    assert baselines.best_single(full) == "a"


def test_the_router_learns_from_train_queries_only(tmp_path: Path) -> None:
    rs = data.load(_planted(tmp_path / "planted"))
    res = runner.run(rs, runner.BenchOptions(relearn=False, per_lambda=False, curve_start=0, lambdas=(0.0,)))
    rated = {t.text for t in res.ratings_log}
    assert rated and rated <= {q.text for q in rs.train}
    assert res.ratings_used == len(rs.train)


def _write(folder: Path, rows: list[tuple[str, str]], outcomes: dict[str, list[tuple[str, float, float]]]) -> Path:
    """A set from (qid, split) rows and, per qid, (model, score, cost) outcomes."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "queries.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["qid", "text", "category", "split"])
        w.writerows((qid, f"question {qid}", "c", split) for qid, split in rows)
    with open(folder / "outcomes.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["qid", "model", "score", "cost_usd", "prompt_tokens", "completion_tokens"])
        for qid, _ in rows:
            w.writerows((qid, m, s, c, "", "") for m, s, c in outcomes[qid])
    return folder


def test_the_bench_holds_out_a_quarter_of_train_with_seed_0_by_default(rs: data.ReplaySet) -> None:
    expected = rs.holdout(0.25, seed=0)
    for val in (rs.holdout(), runner.holdout(rs)):
        assert [(q.qid, q.split) for q in val.queries] == [(q.qid, q.split) for q in expected.queries]
    assert len(expected.test) == len(rs.train) // 4


def test_a_tiny_train_split_still_keeps_train_queries_beside_its_validation_query(tmp_path: Path) -> None:
    rows = [("q1", "train"), ("q2", "train"), ("q3", "train"), ("t1", "test")]
    outs = {qid: [("a", 1, 0.001), ("b", 0, 0.002)] for qid, _ in rows}
    val = data.load(_write(tmp_path / "tiny", rows, outs)).holdout(0.25, seed=0)
    assert len(val.test) == 1 and len(val.train) == 2


def test_full_information_means_are_per_model_score_and_cost_over_the_asked_queries(tmp_path: Path) -> None:
    rows = [("q1", "train"), ("q2", "train"), ("t1", "test")]
    outs = {
        "q1": [("a", 1, 0.010), ("b", 0, 0.001)],
        "q2": [("a", 0.5, 0.030), ("b", 1, 0.003)],
        "t1": [("a", 0, 9.0), ("b", 0, 9.0)],
    }
    full = data.FullInformation(data.load(_write(tmp_path / "s", rows, outs)))
    assert full.means() == pytest.approx([(0.75, 0.020), (0.5, 0.002)])
    assert full.means(["q2"]) == pytest.approx([(0.5, 0.030), (1.0, 0.003)])
    assert full.means([]) == [(0.0, 0.0), (0.0, 0.0)]


def test_the_test_scorer_reports_mean_score_cost_and_who_was_used(tmp_path: Path) -> None:
    rows = [("q1", "train"), ("t1", "test"), ("t2", "test"), ("t3", "test")]
    outs = {
        "q1": [("a", 1, 5.0), ("b", 1, 5.0)],  # a train row: never in a test figure
        "t1": [("a", 1, 0.010), ("b", 1, 0.002)],
        "t2": [("a", 1, 0.010), ("b", 0, 0.002)],
        "t3": [("a", 0, 0.010), ("b", 0.5, 0.004)],
    }
    scorer = data.TestScorer(data.load(_write(tmp_path / "s", rows, outs)))
    assert len(scorer) == 3
    r = scorer.score(["b", "a", "b"])
    assert (r.score, r.cost) == pytest.approx((2.5 / 3, 0.016 / 3))
    assert (r.top_model, r.top_share, dict(r.counts)) == ("b", pytest.approx(2 / 3), {"a": 1, "b": 2})
    a = scorer.single("a")
    assert (a.score, a.cost, a.top_model, a.top_share) == pytest.approx((2 / 3, 0.010, "a", 1.0))
    rnd = scorer.random_expectation()
    assert (rnd.score, rnd.cost, rnd.top_share) == pytest.approx((3.5 / 6, 0.038 / 6, 0.5))
    # The oracle takes each query's best score, and among the models reaching it the cheapest.
    best = scorer.oracle()
    assert (best.score, best.cost) == pytest.approx((2.5 / 3, 0.016 / 3))
    assert (best.top_model, best.top_share, dict(best.counts)) == ("b", pytest.approx(2 / 3), {"a": 1, "b": 2})
    with pytest.raises(ValueError, match="expected 3 choices, got 2"):
        scorer.score(["a", "b"])


def test_the_shuffle_moves_texts_within_each_split_and_never_across(rs: data.ReplaySet) -> None:
    sh = rs.shuffled(seed=1)
    assert sh.name == rs.name + "-shuffled"
    assert [(q.qid, q.split) for q in sh.queries] == [(q.qid, q.split) for q in rs.queries]
    for split in ("train", "test"):
        before = sorted((q.text, q.category) for q in rs.queries if q.split == split)
        assert sorted((q.text, q.category) for q in sh.queries if q.split == split) == before
    assert sum(a.text != b.text for a, b in zip(rs.queries, sh.queries, strict=True)) > len(rs.queries) // 2
    assert sh._outcomes == rs._outcomes


def test_restricting_the_models_keeps_their_outcomes_in_the_order_asked(rs: data.ReplaySet) -> None:
    first, second = rs.models[0], rs.models[1]
    sub = rs.restrict([second, first])
    assert sub.models == (second, first)
    qid = rs.queries[0].qid
    assert sub._outcomes[qid] == (rs._outcomes[qid][1], rs._outcomes[qid][0])
    with pytest.raises(data.ReplaySetError, match="at least two models"):
        rs.restrict([first])
    with pytest.raises(data.ReplaySetError, match="twice"):
        rs.restrict([first, first])
