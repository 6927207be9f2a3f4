"""The replay benchmark on small synthetic sets: output, determinism, honesty, quality, errors."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from skillchat.bench import data, report, runner
from skillchat.bench.progress import Progress
from skillchat.cli import main

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402

FAST = runner.BenchOptions(relearn=False, per_lambda=False)
REQUIRED = ("dataset", "models", "n_train", "n_test", "ratings_used", "best_single", "router", "baselines", "learning_curve")


@pytest.fixture(scope="module")
def spec_set(tmp_path_factory) -> Path:
    """Three specialists with equal cost: each is good at one task type, bad at the other two."""
    return synth.write_set(tmp_path_factory.mktemp("spec") / "spec")


@pytest.fixture(scope="module")
def mixed_set(tmp_path_factory) -> Path:
    """The specialists plus an expensive generalist that is good at everything."""
    return synth.write_set(
        tmp_path_factory.mktemp("mixed") / "mixed", models=synth.models_of([synth.SPECIALISTS, synth.GENERALIST]), seed=1
    )


def _run(path: Path, **kw) -> runner.BenchResult:  # type: ignore[no-untyped-def]
    import dataclasses

    return runner.run(data.load(path), dataclasses.replace(FAST, **kw))


# --- output ------------------------------------------------------------------------------------


def test_cli_writes_tables_and_json(mixed_set, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["bench", str(mixed_set), "--json", str(out), "--quiet", "--no-relearn"]) == 0
    text = capsys.readouterr().out
    assert "Learned router on the test split" in text and "Baselines on the test split" in text
    assert "Score vs cost" in text and "Learning curve" in text
    doc = json.loads(out.read_text())
    for key in REQUIRED:
        assert key in doc
    assert doc["n_train"] == 240 and doc["n_test"] == 120
    assert doc["ratings_used"] == doc["n_train"]
    assert set(doc["best_single"]) >= {"model", "score", "cost"}
    assert doc["best_single"]["model"] == "big"
    assert [r["lambda"] for r in doc["router"]] == sorted(r["lambda"] for r in doc["router"])
    for r in doc["router"]:
        assert set(r) >= {"lambda", "score", "cost", "top_share"}
    names = [b["name"] for b in doc["baselines"]]
    for m in ("alpha", "beta", "gamma", "big"):
        assert f"single: {m}" in names
    assert any("random" in n for n in names) and any("cheapest" in n for n in names)
    assert any("oracle" in n for n in names)
    # A baseline that reads the category column says so; full-information baselines say so.
    assert all("uses category labels" in n for n in names if "category" in n)
    assert all("full info" in n for n in names if n.startswith(("kNN", "per-category", "oracle")))
    assert [c["ratings"] for c in doc["learning_curve"]] == [50, 71, 100, 141, 200, 240]
    # One router learned per lambda as well, on its own replay of the train split.
    assert [r["lambda"] for r in doc["router_per_lambda"]] == [r["lambda"] for r in doc["router"]]
    assert "learned at this lambda" in text


def test_models_subset(mixed_set):
    res = runner.run(data.load(mixed_set).restrict(["alpha", "big"]), FAST)
    assert res.models == ["alpha", "big"]
    assert {b["model"] for b in res.baselines if b.get("kind") == "single"} == {"alpha", "big"}


def test_unknown_model_is_an_error(mixed_set, capsys):
    assert main(["bench", str(mixed_set), "--models", "alpha,nope", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "outcomes.csv" in err and "'nope'" in err and "Traceback" not in err


def test_same_seed_same_json_and_another_seed_differs(spec_set):
    a = report.to_json(_run(spec_set, seed=3))
    b = report.to_json(_run(spec_set, seed=3))
    c = report.to_json(_run(spec_set, seed=4))
    for d in (a, b, c):
        d.pop(report.TIMING_KEY)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.dumps(a, sort_keys=True) != json.dumps(c, sort_keys=True)


def test_progress_is_line_based_when_not_a_terminal(spec_set):
    buf = io.StringIO()
    runner.run(data.load(spec_set), runner.BenchOptions(relearn=False), Progress(buf))
    lines = buf.getvalue().splitlines()
    assert lines and all(line.startswith("bench: ") for line in lines)
    assert "\r" not in buf.getvalue()


# --- honesty ----------------------------------------------------------------------------------


def test_router_learns_only_from_train_ratings(spec_set, monkeypatch):
    revealed: list[tuple[str, str]] = []
    original = data.Environment.reveal

    def spy(self, qid, model):  # type: ignore[no-untyped-def]
        revealed.append((qid, model))
        return original(self, qid, model)

    monkeypatch.setattr(data.Environment, "reveal", spy)
    rs = data.load(spec_set)
    res = runner.run(rs, FAST)
    train = {q.qid for q in rs.train}
    assert len(revealed) == res.ratings_used == len(train)
    assert {q for q, _ in revealed} == train  # one rating per train query, none from test
    with pytest.raises(PermissionError):
        data.Environment(rs).reveal(rs.test[0].qid, rs.models[0])


def test_taught_learns_what_run_learns(mixed_set):
    # The diagnostics in benchmarks/ look inside `taught`; they must be looking at the bench's router.
    rs = data.load(mixed_set)
    res = _run(mixed_set, seed=3)
    t = runner.taught(rs, 3)
    assert sorted(t.learner.hb.evidence.cells()) == sorted(res.handbook.evidence.cells())
    assert [(r.turn_id, r.agent_id, r.score) for r in t.log] == [(r.turn_id, r.agent_id, r.score) for r in res.ratings_log]
    assert [r.text for r in t.log] == [q.text for q in t.order]  # one rating per query, in replay order
    assert sorted(q.qid for q in t.order) == sorted(q.qid for q in rs.train)
    assert set(t.model_of.values()) == set(rs.models)


def test_shuffled_test_outcomes_leave_the_router_at_chance(spec_set, tmp_path):
    shuffled = synth.shuffle_test_outcomes(spec_set, tmp_path / "shuffled", seed=5)
    honest = _run(spec_set, per_lambda=True)
    broken = _run(shuffled, per_lambda=True)
    # Same train split, so the same learned routers; only the test outcomes lost their link to the text.
    for p in broken.router + broken.router_per_lambda:
        assert abs(p.result.score - broken.random.score) < 0.08, (p.lam, p.result.score, broken.random.score)
    # Up to lambda 1: beyond it (the sweep now reaches 10) cost weighs so much that, with these
    # equal-cost specialists, the few-percent cost differences decide instead of competence.
    honest_points = [p for p in honest.router + honest.router_per_lambda if p.lam <= 1.0]
    assert len(honest_points) >= 20
    for p in honest_points:
        assert p.result.score > honest.random.score + 0.3, p.lam


# --- quality ----------------------------------------------------------------------------------


def test_router_beats_every_single_model_when_it_must(mixed_set):
    res = _run(mixed_set)
    at = {p.lam: p.result for p in res.router}[0.1]
    big = dict(res.singles)["big"]
    for model, r in res.singles:
        assert at.score > r.score, model
    assert at.cost < big.cost
    # Cost-adjusted quality at the same lambda, cost normalised by the dearest model's cost.
    top = max(r.cost for _, r in res.singles)
    assert all(at.score - 0.1 * at.cost / top > r.score - 0.1 * r.cost / top for _, r in res.singles)
    assert runner.ratings_to_reach(res.learning_curve) is not None


def test_handbook_and_both_skill_sources_run(mixed_set):
    for source in ("handbook", "both"):
        res = _run(mixed_set, skills=source, curve_start=0, baselines=False)
        assert res.ratings_used == 240
        assert "code.write_program" in res.handbook.skills
        assert all(a.prior.mean == 0.5 and a.price is None for a in res.handbook.agents.values())


def test_label_skills_read_each_query_as_its_category(spec_set):
    rs = data.load(spec_set)
    res = _run(spec_set, skills="labels", baselines=True, curve_start=0)
    category = {q.text: q.category for q in rs.train}
    labels = {c: f"c-{c}.task" for c in category.values()}
    assert set(res.handbook.skills) == {*labels.values(), "other.general"}
    assert res.ratings_log and all(t.skills == {labels[category[t.text]]: 1.0} for t in res.ratings_log)
    # Read right, the three specialists (one task type each, same price) are routed as the
    # per-category reference routes them, give or take the few turns still being explored.
    cat = next(p for p in res.per_category if p.lam == 0.0).result.score
    assert res.router[0].result.score >= cat - 0.05
    assert res.relearn_note == "relearn: skipped (--no-relearn)"
    assert _run(spec_set, skills="labels", relearn=True, curve_start=0, baselines=False).relearn_note.endswith(
        "(the category labels are the skills)"
    )


def test_cli_runs_with_label_skills_and_says_it_is_a_diagnostic(spec_set, capsys):
    assert main(["bench", str(spec_set), "--skills", "labels", "--quiet", "--no-relearn", "--no-per-lambda"]) == 0
    assert "the category labels, read from each query: a diagnostic" in capsys.readouterr().out


def test_label_skills_are_unique_valid_ids_whatever_the_labels():
    from skillchat.bench.skills import label_skills

    ids = label_skills(["Math", "math", "C++ / code", "", "other"])
    assert len(set(ids.values())) == 5
    assert ids["Math"] != ids["math"] and ids["C++ / code"] == "c-c-code.task" and ids[""] == "c-x.task"


# --- relearn integration ----------------------------------------------------------------------


def test_relearn_not_available(spec_set, monkeypatch):
    monkeypatch.setitem(sys.modules, "skillchat.core.relearn", None)  # import raises ImportError
    res = _run(spec_set, relearn=True)
    assert res.relearn_note.startswith("relearn: not available")
    assert res.router_relearn is None
    assert report.to_json(res)["router_relearn"] is None


def test_periodic_relearn_runs_side_by_side(spec_set, monkeypatch):
    import types

    from skillchat.core.learning import apply_rating

    calls: list[int] = []

    def fake_relearn(base, turns, **options):  # type: ignore[no-untyped-def]
        calls.append(len(turns))
        hb = base.structure_copy()
        for t in turns:
            apply_rating(hb, t.agent_id, t.skills, t.score)
            hb.record_cost(t.agent_id, t.mode, t.prompt_tokens or 0, t.completion_tokens or 0, t.cost_usd or 0.0)
        return types.SimpleNamespace(handbook=hb)

    monkeypatch.setitem(sys.modules, "skillchat.core.relearn", types.SimpleNamespace(relearn=fake_relearn))
    res = _run(spec_set, relearn=True, relearn_every=60)
    assert calls == [60, 120, 180]  # never with the last rating: that one is applied online
    assert res.router_relearn is not None and len(res.router_relearn) == len(res.router)
    assert "periodic, every 60 ratings" in res.relearn_note
    # Rebuilding from the log reproduces the online evidence, so both routers agree here.
    assert [p.result.score for p in res.router_relearn] == pytest.approx([p.result.score for p in res.router])
    assert "w/ relearn" in report.render(res)


# --- malformed sets ---------------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in ("queries.csv", "outcomes.csv"):
        (dst / f).write_bytes((src / f).read_bytes())
    return dst


def _drop_column(col):  # type: ignore[no-untyped-def]
    def fn(header, rows):  # type: ignore[no-untyped-def]
        i = header.index(col)
        return header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in rows]

    return fn


def _set_cell(col, value, row=0):  # type: ignore[no-untyped-def]
    def fn(header, rows):  # type: ignore[no-untyped-def]
        rows[row][header.index(col)] = value
        return header, rows

    return fn


@pytest.mark.parametrize(
    "name, file, edit, expected",
    [
        ("missing file", "outcomes.csv", "delete", "outcomes.csv: no such file"),
        ("missing column", "queries.csv", _drop_column("split"), "queries.csv: line 1: missing column(s) split"),
        ("missing score column", "outcomes.csv", _drop_column("score"), "outcomes.csv: line 1: missing column(s) score"),
        ("not dense", "outcomes.csv", lambda h, r: (h, r[:-1]), "outcomes.csv: not a dense matrix"),
        ("score above 1", "outcomes.csv", _set_cell("score", "1.5"), "outcomes.csv: line 2: score 1.5 is outside [0, 1]"),
        ("score not a number", "outcomes.csv", _set_cell("score", "yes"), "outcomes.csv: line 2: score 'yes' is not a number"),
        ("negative cost", "outcomes.csv", _set_cell("cost_usd", "-1"), "outcomes.csv: line 2: cost_usd -1 is outside"),
        ("unknown split", "queries.csv", _set_cell("split", "dev"), "queries.csv: line 2: unknown split 'dev'"),
        ("duplicate row", "outcomes.csv", lambda h, r: (h, r + [r[0]]), "a second row for"),
        ("unknown qid", "outcomes.csv", _set_cell("qid", "zzz"), "qid 'zzz' is not in queries.csv"),
    ],
)
def test_malformed_sets_are_reported_without_traceback(spec_set, tmp_path, capsys, name, file, edit, expected):
    d = _copy(spec_set, tmp_path / "bad")
    if edit == "delete":
        (d / file).unlink()
    else:
        synth.edit_csv(d / file, edit)
    with pytest.raises(data.ReplaySetError) as e:
        data.load(d)
    assert expected in str(e.value)
    assert str(d / file) in str(e.value)
    assert main(["bench", str(d), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_missing_folder_and_no_test_split(tmp_path, spec_set):
    with pytest.raises(data.ReplaySetError, match="no such folder"):
        data.load(tmp_path / "nowhere")
    d = _copy(spec_set, tmp_path / "notest")
    synth.edit_csv(d / "queries.csv", lambda h, rows: (h, [r[:3] + ["train"] for r in rows]))
    with pytest.raises(data.ReplaySetError, match="no test queries"):
        data.load(d)


def test_empty_token_columns_are_fine(tmp_path):
    d = synth.write_set(tmp_path / "notokens", n_train=60, n_test=30, tokens=False)
    res = _run(d, curve_start=0, baselines=False)
    assert res.ratings_used == 60


def test_skills_are_learned_from_train_texts_only(tmp_path):
    d = synth.write_set(tmp_path / "leak", n_train=90, n_test=30)
    # Give every TEST text words that no train text has: no skill may know them.
    synth.edit_csv(
        d / "queries.csv",
        lambda h, rows: (h, [r[:1] + [r[1] + " zebra giraffe okapi"] + r[2:] if r[3] == "test" else r for r in rows]),
    )
    res = _run(d, curve_start=0, baselines=False)
    for s in res.handbook.skills.values():
        assert not {"zebra", "giraffe", "okapi"} & set(s.signature or {}), s.id
        assert not any("zebra" in e for e in s.examples)


def test_json_does_not_depend_on_the_hash_seed(spec_set, tmp_path):
    import os
    import subprocess

    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"h{hash_seed}.json"
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        subprocess.run(
            [sys.executable, "-m", "skillchat", "bench", str(spec_set), "--quiet", "--no-relearn", "--json", str(out)],
            check=True, env=env, capture_output=True, cwd=Path(__file__).resolve().parents[2],
        )
        doc = json.loads(out.read_text())
        doc.pop(report.TIMING_KEY)
        outs.append(json.dumps(doc, sort_keys=True))
    assert outs[0] == outs[1]


def test_report_figures_never_read_minus_zero():
    from skillchat.bench.report import _num, _opt

    assert [_num(-0.0001, "+.3f"), _num(-0.0001, ".3f"), _num(-0.0004, ".1%"), _opt(-0.002, "+.3f")] == \
        ["+0.000", "0.000", "0.0%", "-0.002"]
