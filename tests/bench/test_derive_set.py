"""benchmarks/derive_set.py: a replay set carved from another by categories and models."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from skillchat.bench import data

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402

_spec = importlib.util.spec_from_file_location("derive_set", Path(__file__).parents[2] / "benchmarks" / "derive_set.py")
assert _spec and _spec.loader
derive_set = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(derive_set)

BOTH = {**synth.SPECIALISTS, **synth.GENERALIST}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return synth.write_set(tmp_path_factory.mktemp("src") / "src", models=BOTH, n_train=30, n_test=15)


def test_categories_and_dropped_models_leave_a_valid_set_of_the_rest(source, tmp_path, capsys):
    dst = tmp_path / "two"
    assert derive_set.main([str(source), str(dst), "--categories", "math,code", "--drop-models", "big"]) == 0
    rs = data.load(dst)
    src = data.load(source)
    assert {q.category for q in rs.queries} == {"math", "code"}
    assert rs.models == tuple(m for m in src.models if m != "big")
    kept = [q for q in src.queries if q.category in ("math", "code")]
    assert [(q.qid, q.split) for q in rs.queries] == [(q.qid, q.split) for q in kept]  # splits kept, order kept
    # every outcome is the source's own
    full, src_full = data.FullInformation(rs), data.FullInformation(src)
    for q in rs.train:
        assert full.row(q.qid) == tuple(o for m, o in zip(src.models, src_full.row(q.qid), strict=True) if m != "big")
    assert f"{len(rs.train)} train / {len(rs.test)} test queries, 3 models" in capsys.readouterr().out


def test_a_sampled_share_of_the_models_is_seeded(source, tmp_path):
    a = derive_set.derive(source, tmp_path / "a", sample_models=0.5, seed=3)
    b = derive_set.derive(source, tmp_path / "b", sample_models=0.5, seed=3)
    assert a.models == b.models and len(a.models) == 2
    assert len(derive_set.derive(source, tmp_path / "c", sample_models=0.01).models) == 2  # a router needs two


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--categories", "poetry"], "no category 'poetry' (it has: code, math, poem)"),
        (["--drop-models", "nobody"], "no model 'nobody' to drop"),
        (["--drop-models", "alpha,beta,gamma"], "would not be a valid replay set"),
        (["--sample-models", "1.5"], "--sample-models must be a share in (0, 1]"),
    ],
)
def test_a_bad_request_is_one_line_and_exit_2_and_writes_nothing(source, tmp_path, capsys, args, problem):
    dst = tmp_path / "out"
    assert derive_set.main([str(source), str(dst), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("derive_set: ") and problem in err and err.count("\n") == 1
    assert not dst.exists() and list(tmp_path.iterdir()) == []  # no half-made folder either


def test_an_existing_folder_is_never_written_into(source, tmp_path, capsys):
    dst = tmp_path / "taken"
    dst.mkdir()
    (dst / "notes.txt").write_text("mine")
    assert derive_set.main([str(source), str(dst)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in dst.iterdir()] == ["notes.txt"]


def test_a_bad_source_is_named(tmp_path, capsys):
    assert derive_set.main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "missing: no such folder" in capsys.readouterr().err
