"""Small synthetic replay sets for the bench tests: latent task types with their own vocabularies."""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

VOCAB = {
    "math": "integral derivative matrix equation polynomial theorem algebra calculus vector eigenvalue limit proof".split(),
    "poem": "poem verse rhyme stanza sonnet metaphor haiku lyric ballad imagery meter couplet".split(),
    "code": "python function loop compiler variable recursion array pointer debug syntax class module".split(),
}
FILLER = "please tell explain about some question answer quick short detail".split()

# model -> (score probability per task type, cost per call)
SPECIALISTS: dict[str, tuple[Mapping[str, float], float]] = {
    "alpha": ({"math": 0.9, "poem": 0.15, "code": 0.15}, 0.001),
    "beta": ({"math": 0.15, "poem": 0.9, "code": 0.15}, 0.001),
    "gamma": ({"math": 0.15, "poem": 0.15, "code": 0.9}, 0.001),
}
GENERALIST = {"big": ({"math": 0.8, "poem": 0.8, "code": 0.8}, 0.02)}


def write_set(
    folder: Path,
    *,
    models: Mapping[str, tuple[Mapping[str, float], float]] = SPECIALISTS,
    n_train: int = 240,
    n_test: int = 120,
    seed: int = 0,
    tokens: bool = True,
) -> Path:
    """Write queries.csv and outcomes.csv; task types are equally frequent in both splits."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    types = sorted(VOCAB)
    rows = []
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            t = types[i % len(types)]
            words = rng.choices(VOCAB[t], k=rng.randint(5, 9)) + rng.choices(FILLER, k=3)
            rng.shuffle(words)
            rows.append((f"{split[:2]}{i}", " ".join(words), t, split))
    rng.shuffle(rows)
    with open(folder / "queries.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["qid", "text", "category", "split"])
        w.writerows(rows)
    with open(folder / "outcomes.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["qid", "model", "score", "cost_usd", "prompt_tokens", "completion_tokens"])
        for qid, _, t, _ in rows:
            for m, (p, cost) in models.items():
                score = 1 if rng.random() < p[t] else 0
                c = cost * rng.uniform(0.8, 1.2)
                w.writerow([qid, m, score, f"{c:.8f}", 20 if tokens else "", 50 if tokens else ""])
    return folder


def shuffle_test_outcomes(src: Path, dst: Path, seed: int = 0) -> Path:
    """A copy whose TEST outcome rows are permuted across test queries (train rows untouched)."""
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "queries.csv").write_bytes((src / "queries.csv").read_bytes())
    with open(src / "queries.csv", newline="", encoding="utf-8") as fh:
        test = [r["qid"] for r in csv.DictReader(fh) if r["split"] == "test"]
    with open(src / "outcomes.csv", newline="", encoding="utf-8") as fh:
        rd = csv.reader(fh)
        header = next(rd)
        rows = list(rd)
    perm = test[:]
    random.Random(seed).shuffle(perm)
    mapping = dict(zip(test, perm, strict=True))
    by_q: dict[str, list[list[str]]] = {}
    for r in rows:
        by_q.setdefault(r[0], []).append(r)
    out = []
    for r in rows:
        if r[0] in mapping:
            src_row = next(x for x in by_q[mapping[r[0]]] if x[1] == r[1])
            out.append([r[0], *src_row[1:]])
        else:
            out.append(r)
    with open(dst / "outcomes.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(out)
    return dst


def edit_csv(path: Path, fn) -> None:  # type: ignore[no-untyped-def]
    """Rewrite a CSV through fn(header, rows) -> (header, rows)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rd = csv.reader(fh)
        header = next(rd)
        rows = list(rd)
    header, rows = fn(header, rows)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def models_of(spec: Sequence[Mapping[str, tuple[Mapping[str, float], float]]]) -> dict[str, tuple[Mapping[str, float], float]]:
    out: dict[str, tuple[Mapping[str, float], float]] = {}
    for s in spec:
        out.update(s)
    return out
