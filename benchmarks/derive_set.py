"""Carve a new replay set out of one: some of its categories, some of its models.

    .venv/bin/python benchmarks/derive_set.py ../shared/benchdata/routerbench /tmp/sets/two-tasks \
        --categories arc-challenge,mbpp
    .venv/bin/python benchmarks/derive_set.py ../shared/benchdata/mmlupro /tmp/sets/half --sample-models 0.5

The defaults were chosen on the validation folds of two sets; a set with another mix of tasks, or
without the model that dominates, shows whether they hold elsewhere (the README's "Sets the
defaults were not chosen on"). Queries keep their split; the result is checked like any set (one
line naming the problem, exit 2) before it appears, and an existing folder is never written into.
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skillchat.bench import data  # noqa: E402
from skillchat.text_safety import os_reason, shown  # noqa: E402


def _names(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def derive(
    src: Path,
    dst: Path,
    *,
    categories: list[str] | None = None,
    drop_models: list[str] | None = None,
    sample_models: float | None = None,
    seed: int = 0,
) -> data.ReplaySet:
    """Write the derived set to `dst` (which must not exist) and return it, loaded and checked."""
    rs = data.load(src)  # the source is checked first: a bad one is its own error, not the result's
    if dst.exists():
        raise data.ReplaySetError(dst, "already exists: give a new folder (nothing is written into an existing one)")
    known = sorted({q.category for q in rs.queries})
    unknown = [c for c in categories or [] if c not in known]
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise data.ReplaySetError(src / "queries.csv", f"no category {names} (it has: {', '.join(known)})")
    models = list(rs.models)
    for m in drop_models or []:
        if m not in models:
            raise data.ReplaySetError(src / "outcomes.csv", f"no model {m!r} to drop (it has: {', '.join(rs.models)})")
        models.remove(m)
    if sample_models is not None:
        if not 0 < sample_models <= 1:
            raise data.ReplaySetError(src, f"--sample-models must be a share in (0, 1], got {sample_models:g}")
        models = sorted(random.Random(f"models:{seed}").sample(models, max(2, round(len(models) * sample_models))))
    keep_q = {q.qid for q in rs.queries if not categories or q.category in categories}
    keep_m = set(models)

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}."))
    try:
        _filter(src / "queries.csv", tmp / "queries.csv", lambda row: row["qid"] in keep_q)
        _filter(src / "outcomes.csv", tmp / "outcomes.csv", lambda row: row["qid"] in keep_q and row["model"] in keep_m)
        try:
            data.load(tmp)
        except data.ReplaySetError as e:  # e.g. a category with no test query: name the request, not the temp folder
            raise data.ReplaySetError(dst, f"the derived set would not be a valid replay set: {e.problem}") from None
        tmp.rename(dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return data.load(dst)


def _filter(src: Path, dst: Path, keep) -> None:  # type: ignore[no-untyped-def]
    with open(src, newline="", encoding="utf-8") as fin, open(dst, "w", newline="", encoding="utf-8") as fout:
        reader = csv.DictReader(fin)
        writer = csv.DictWriter(fout, fieldnames=list(reader.fieldnames or []))
        writer.writeheader()
        writer.writerows(row for row in reader if keep(row))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="a replay-set folder")
    ap.add_argument("dst", type=Path, help="the new folder (must not exist)")
    ap.add_argument("--categories", help="keep only these categories (comma-separated)")
    ap.add_argument("--drop-models", help="leave these models out (comma-separated)")
    ap.add_argument("--sample-models", type=float, help="keep a seeded share of the models (at least two)")
    ap.add_argument("--seed", type=int, default=0, help="seed of --sample-models")
    a = ap.parse_args(argv)
    try:
        rs = derive(a.src, a.dst, categories=_names(a.categories) or None, drop_models=_names(a.drop_models),
                    sample_models=a.sample_models, seed=a.seed)
    except data.ReplaySetError as e:
        print(f"derive_set: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a folder that cannot be made or written: no traceback
        print(f"derive_set: {shown(a.dst, 200)}: {os_reason(e)}", file=sys.stderr)
        return 2
    print(f"{a.dst}: {len(rs.train)} train / {len(rs.test)} test queries, {len(rs.models)} models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
