"""Replay sets: loading, validation, and the three doors through which outcomes may be seen.

A replay set is a folder with `queries.csv` (qid,text,category,split) and `outcomes.csv`
(qid,model,score,cost_usd,prompt_tokens,completion_tokens), one outcome row for every
(query, model) pair. Loading checks all of it and raises `ReplaySetError` naming the file and the
problem.

Nothing outside this module reads the outcome matrix directly. It is reached through:

* `Environment` (the learned router's only access): reveals the outcome of ONE (train query,
  model) pair per call, as a chat user's rating would, and refuses test queries;
* `FullInformation`: the whole train matrix, for the full-information baselines, whose names say so;
* `TestScorer`: scores a routing of the test split (mean score and cost), never hands out rows.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skillchat.errors import SkillchatError
from skillchat.text_safety import os_reason, shown

QUERY_COLUMNS = ("qid", "text", "category", "split")
OUTCOME_COLUMNS = ("qid", "model", "score", "cost_usd", "prompt_tokens", "completion_tokens")
SPLITS = ("train", "test")


class ReplaySetError(SkillchatError):
    """A replay-set folder that cannot be read or does not follow the format."""

    def __init__(self, file: Path | str, problem: str) -> None:
        self.file, self.problem = str(file), problem
        super().__init__(f"{shown(file, 200)}: {problem}")


@dataclass(frozen=True, slots=True)
class Query:
    qid: str
    text: str
    category: str
    split: str


@dataclass(frozen=True, slots=True)
class Outcome:
    score: float
    cost_usd: float
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True)
class ReplaySet:
    name: str
    path: Path
    queries: tuple[Query, ...]
    models: tuple[str, ...]
    # qid -> one Outcome per model, in the order of `models`. Private by convention: use the views.
    _outcomes: Mapping[str, tuple[Outcome, ...]]

    @property
    def train(self) -> list[Query]:
        return [q for q in self.queries if q.split == "train"]

    @property
    def test(self) -> list[Query]:
        return [q for q in self.queries if q.split == "test"]

    def holdout(self, fraction: float = 0.25, seed: int = 0) -> ReplaySet:
        """A validation copy for tuning: a seeded `fraction` of the TRAIN queries play the test
        split, and the real test split is dropped before anything can see it."""
        import random
        from dataclasses import replace

        train = [q for q in self.queries if q.split == "train"]
        rng = random.Random(f"holdout:{seed}")
        val = set(rng.sample([q.qid for q in train], max(1, int(len(train) * fraction))))
        qs = tuple(replace(q, split="test" if q.qid in val else "train") for q in train)
        return ReplaySet(self.name + "-validation", self.path, qs, self.models, {q.qid: self._outcomes[q.qid] for q in qs})

    def shuffled(self, seed: int = 0) -> ReplaySet:
        """The honesty check's copy: within each split, the texts (with their categories) are
        permuted among the queries with a seeded RNG while every qid keeps its outcome row.

        The text then says nothing about which model does well, so a router that still beats the
        best single model is reading something it should not. Single models, the oracle and random
        routing score exactly as on the original set, since no outcome moves.
        """
        import random
        from dataclasses import replace

        rng = random.Random(f"shuffle:{seed}")
        moved: dict[str, Query] = {}
        for split in SPLITS:
            qs = [q for q in self.queries if q.split == split]
            donors = qs[:]
            rng.shuffle(donors)
            for q, d in zip(qs, donors, strict=True):
                moved[q.qid] = replace(q, text=d.text, category=d.category)
        return ReplaySet(
            self.name + "-shuffled", self.path, tuple(moved[q.qid] for q in self.queries), self.models, self._outcomes
        )

    def restrict(self, models: Sequence[str]) -> ReplaySet:
        """The same set with only some models (in the given order)."""
        unknown = [m for m in models if m not in self.models]
        if unknown:
            raise ReplaySetError(
                self.path / "outcomes.csv",
                f"unknown model(s) {', '.join(map(repr, unknown))} (the set has: {', '.join(self.models)})",
            )
        if len(set(models)) != len(models):
            raise ReplaySetError(self.path / "outcomes.csv", "--models lists a model twice")
        if len(models) < 2:
            raise ReplaySetError(
                self.path / "outcomes.csv",
                f"--models names only {', '.join(map(repr, models)) or 'no model'}: a router needs at least two models",
            )
        idx = [self.models.index(m) for m in models]
        outs = {q: tuple(row[i] for i in idx) for q, row in self._outcomes.items()}
        return ReplaySet(self.name, self.path, self.queries, tuple(models), outs)


def _num(value: str, *, file: Path, line: int, column: str, lo: float | None = None, hi: float | None = None) -> float:
    try:
        x = float(value)
    except ValueError:
        raise ReplaySetError(file, f"line {line}: {column} {value!r} is not a number") from None
    if not math.isfinite(x):
        raise ReplaySetError(file, f"line {line}: {column} {value!r} is not a finite number")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        rng = f"[{lo:g}, {hi:g}]" if hi is not None else f">= {lo:g}"
        raise ReplaySetError(file, f"line {line}: {column} {value} is outside {rng}")
    return x


def _tokens(value: str, *, file: Path, line: int, column: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    return int(_num(value, file=file, line=line, column=column, lo=0))


def _reader(file: Path, required: Sequence[str]) -> tuple[Any, dict[str, int]]:
    """A csv reader past a checked header, and its column index."""
    try:
        if not file.is_file():
            raise ReplaySetError(file, "no such file" if not file.exists() else "not a file")
        raw = file.read_bytes()
    except OSError as e:
        raise ReplaySetError(file, f"cannot read it ({os_reason(e)})") from None
    # Decoded up front, not while iterating, because only the whole bytes say on which line a
    # bad byte sits; a text stream fails a whole buffer later with no line to show the user.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ReplaySetError(file, f"line {line}: not valid UTF-8 (byte 0x{raw[e.start]:02x}); save the file as UTF-8") from None
    rd = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(rd)
    except StopIteration:
        raise ReplaySetError(file, "empty file (expected a header: " + ",".join(required) + ")") from None
    except csv.Error as e:
        raise ReplaySetError(file, f"line 1: not a readable CSV file ({e})") from None
    cols = {name.strip().lstrip("\ufeff"): i for i, name in enumerate(header)}
    missing = [c for c in required if c not in cols]
    if missing:
        raise ReplaySetError(file, f"line 1: missing column(s) {', '.join(missing)} (header: {','.join(header)})")
    return rd, cols


def _rows(file: Path, required: Sequence[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, the required columns in order) for every non-empty data row."""
    rd, cols = _reader(file, required)
    idx = [cols[c] for c in required]
    width = max(idx) + 1
    try:
        for row in rd:
            if not row:
                continue
            if len(row) < width:
                raise ReplaySetError(file, f"line {rd.line_num}: {len(row)} fields, expected at least {width}")
            yield rd.line_num, [row[i] for i in idx]
    except csv.Error as e:
        raise ReplaySetError(file, f"line {rd.line_num}: not a readable CSV file ({e})") from None


def load(path: Path | str) -> ReplaySet:
    """Read and validate a replay-set folder; raises ReplaySetError naming the file and the problem."""
    path = Path(path)
    try:
        if not path.is_dir():
            raise ReplaySetError(path, "no such folder" if not path.exists() else "not a folder")
    except OSError as e:  # a name too long for the file system, say
        raise ReplaySetError(path, f"cannot read it ({os_reason(e)})") from None
    qfile, ofile = path / "queries.csv", path / "outcomes.csv"
    queries = _load_queries(qfile)
    models, outcomes = _load_outcomes(ofile, {q.qid for q in queries})
    return ReplaySet(path.resolve().name, path, tuple(queries), models, outcomes)


def load_or_exit(path: Path | str, prog: str) -> ReplaySet:
    """`load` for the scripts in benchmarks/: a bad set is one line on stderr and exit status 2,
    before any worker starts (whose traceback would bury the problem)."""
    try:
        return load(path)
    except ReplaySetError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _load_queries(qfile: Path) -> list[Query]:
    out: list[Query] = []
    seen: dict[str, int] = {}
    for line, (qid, text, cat, split) in _rows(qfile, QUERY_COLUMNS):
        if not qid:
            raise ReplaySetError(qfile, f"line {line}: empty qid")
        if qid in seen:
            raise ReplaySetError(qfile, f"line {line}: duplicate qid {qid!r} (first on line {seen[qid]})")
        if split not in SPLITS:
            raise ReplaySetError(qfile, f"line {line}: unknown split {split!r} (expected train or test)")
        seen[qid] = line
        out.append(Query(qid, text, cat, split))
    if not out:
        raise ReplaySetError(qfile, "no queries")
    for split in SPLITS:
        if not any(q.split == split for q in out):
            raise ReplaySetError(qfile, f"no {split} queries (a replay set needs both splits)")
    return out


def _load_outcomes(ofile: Path, qids: set[str]) -> tuple[tuple[str, ...], dict[str, tuple[Outcome, ...]]]:
    cells: dict[str, dict[str, Outcome]] = {}
    first_line: dict[tuple[str, str], int] = {}
    models: dict[str, None] = {}
    for line, (qid, model, score_s, cost_s, pt_s, ct_s) in _rows(ofile, OUTCOME_COLUMNS):
        if qid not in qids:
            raise ReplaySetError(ofile, f"line {line}: qid {qid!r} is not in queries.csv")
        if not model:
            raise ReplaySetError(ofile, f"line {line}: empty model")
        score = _num(score_s, file=ofile, line=line, column="score", lo=0.0, hi=1.0)
        cost = _num(cost_s, file=ofile, line=line, column="cost_usd", lo=0.0)
        pt = _tokens(pt_s, file=ofile, line=line, column="prompt_tokens")
        ct = _tokens(ct_s, file=ofile, line=line, column="completion_tokens")
        per_q = cells.setdefault(qid, {})
        if model in per_q:
            raise ReplaySetError(
                ofile, f"line {line}: a second row for ({qid!r}, {model!r}) (first on line {first_line[qid, model]})"
            )
        per_q[model] = Outcome(score, cost, pt, ct)
        first_line[qid, model] = line
        models.setdefault(model, None)
    if not models:
        raise ReplaySetError(ofile, "no outcome rows")
    if len(models) == 1:
        raise ReplaySetError(ofile, f"only one model ({next(iter(models))!r}) in the set: a router needs at least two")
    order = tuple(models)
    missing: list[tuple[str, str]] = []
    for qid in sorted(qids):
        per_q = cells.get(qid, {})
        if len(per_q) != len(order):
            missing.extend((qid, m) for m in order if m not in per_q)
    if missing:
        q, m = missing[0]
        raise ReplaySetError(
            ofile,
            f"not a dense matrix: {len(missing)} (query, model) pair(s) have no row, "
            f"for example query {q!r} with model {m!r}",
        )
    return order, {qid: tuple(per_q[m] for m in order) for qid, per_q in cells.items()}


# --- the three views -------------------------------------------------------------------------


class Environment:
    """Bandit feedback on the train split: the outcome of the one model that was called, nothing else.

    This is all the learned router gets. `reveal` counts its calls and refuses test queries, so a
    run can prove how many ratings it used and that none came from the test split.
    """

    def __init__(self, rs: ReplaySet) -> None:
        self._outcomes = rs._outcomes
        self._model_index = {m: i for i, m in enumerate(rs.models)}
        self._train = frozenset(q.qid for q in rs.queries if q.split == "train")
        self.calls = 0
        self.revealed: list[tuple[str, str]] = []

    def reveal(self, qid: str, model: str) -> Outcome:
        """The outcome of calling `model` on train query `qid`: its score (the rating) and cost."""
        if qid not in self._train:
            raise PermissionError(f"{qid!r} is not a train query: the environment only answers train queries")
        self.calls += 1
        self.revealed.append((qid, model))
        return self._outcomes[qid][self._model_index[model]]


class FullInformation:
    """Every model's outcome on every TRAIN query. Only for baselines named '(full info)'."""

    def __init__(self, rs: ReplaySet) -> None:
        self.models = rs.models
        self.queries = rs.train
        self._rows = {q.qid: rs._outcomes[q.qid] for q in self.queries}

    def row(self, qid: str) -> tuple[Outcome, ...]:
        return self._rows[qid]

    def means(self, qids: Iterable[str] | None = None) -> list[tuple[float, float]]:
        """(mean score, mean cost) per model over some train queries (default: all)."""
        qs = list(self._rows) if qids is None else list(qids)
        k = len(self.models)
        s, c = [0.0] * k, [0.0] * k
        for q in qs:
            for j, o in enumerate(self._rows[q]):
                s[j] += o.score
                c[j] += o.cost_usd
        n = max(len(qs), 1)
        return [(s[j] / n, c[j] / n) for j in range(k)]


@dataclass(frozen=True, slots=True)
class Result:
    score: float  # mean score per query
    cost: float  # mean USD per query
    top_share: float  # share of queries sent to the most used model
    top_model: str
    counts: Mapping[str, int]


class TestScorer:
    """Scores a routing of the test split. It aggregates; it never hands out one query's outcomes."""

    def __init__(self, rs: ReplaySet) -> None:
        self.models = rs.models
        self._index = {m: i for i, m in enumerate(rs.models)}
        self.queries = rs.test
        self._rows = [rs._outcomes[q.qid] for q in self.queries]

    def __len__(self) -> int:
        return len(self._rows)

    def score(self, choices: Sequence[str]) -> Result:
        """choices[i]: the model picked for test query i (in `queries` order)."""
        if len(choices) != len(self._rows):
            raise ValueError(f"expected {len(self._rows)} choices, got {len(choices)}")
        s = c = 0.0
        counts: dict[str, int] = {}
        for row, m in zip(self._rows, choices, strict=True):
            o = row[self._index[m]]
            s += o.score
            c += o.cost_usd
            counts[m] = counts.get(m, 0) + 1
        n = max(len(self._rows), 1)
        top = max(counts.items(), key=lambda kv: (kv[1], kv[0])) if counts else ("", 0)
        return Result(s / n, c / n, top[1] / n, top[0], dict(sorted(counts.items())))

    def single(self, model: str) -> Result:
        return self.score([model] * len(self._rows))

    def random_expectation(self) -> Result:
        """Uniformly random routing, in expectation (exact, no sampling noise)."""
        k = len(self.models)
        s = sum(o.score for row in self._rows for o in row) / max(len(self._rows) * k, 1)
        c = sum(o.cost_usd for row in self._rows for o in row) / max(len(self._rows) * k, 1)
        return Result(s, c, 1.0 / k, "", {})

    def oracle(self) -> Result:
        """Per query the best score, and among the models reaching it the cheapest."""
        s = c = 0.0
        counts: dict[str, int] = {}
        for row in self._rows:
            best = max(o.score for o in row)
            j = min((j for j, o in enumerate(row) if o.score >= best), key=lambda j: (row[j].cost_usd, j))
            s += row[j].score
            c += row[j].cost_usd
            counts[self.models[j]] = counts.get(self.models[j], 0) + 1
        n = max(len(self._rows), 1)
        top = max(counts.items(), key=lambda kv: (kv[1], kv[0])) if counts else ("", 0)
        return Result(s / n, c / n, top[1] / n, top[0], dict(sorted(counts.items())))
