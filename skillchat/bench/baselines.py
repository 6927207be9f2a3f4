"""Baselines for the replay benchmark. Those that see every model's train outcomes say so in their name.

* every single model, random (in expectation), cheapest (on train), best single (on train): no text;
* per-category best (uses category labels, full info): the model maximising train mean score
  - lambda * normalised cost within each category, swept over lambda;
* kNN tf-idf (full info): the k nearest train texts by tf-idf cosine; the model maximising their
  mean score - lambda * their mean cost normalised by the dearest model's, swept over lambda
  (RouterBench / RouteLLM style, k = 50);
* oracle: per test query the cheapest model with the best score (an upper bound, not a router).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from skillchat.bench.data import FullInformation, Query
from skillchat.core.clustering import Idf, fit_idf, terms, vectorize


def _pick(means: Sequence[tuple[float, float]], lam: float) -> int:
    """argmax of score - lam * cost / max cost; ties: cheaper, then earlier model."""
    top = max((c for _, c in means), default=0.0)
    best, bi = None, 0
    for j, (s, c) in enumerate(means):
        key = (s - lam * (c / top if top > 0 else 0.0), -c, -j)
        if best is None or key > best:
            best, bi = key, j
    return bi


def per_category(full: FullInformation, test: Sequence[Query], lambdas: Sequence[float]) -> dict[float, list[str]]:
    """Per-category best model on train at each lambda (uses the category labels, full info)."""
    by_cat: dict[str, list[str]] = {}
    for q in full.queries:
        by_cat.setdefault(q.category, []).append(q.qid)
    overall = full.means()
    out: dict[float, list[str]] = {}
    for lam in lambdas:
        pick = {cat: full.models[_pick(full.means(qids), lam)] for cat, qids in by_cat.items()}
        default = full.models[_pick(overall, lam)]  # a test category unseen in train
        out[lam] = [pick.get(q.category, default) for q in test]
    return out


class KNN:
    """tf-idf cosine k-nearest-neighbour router over the train split (full info)."""

    def __init__(self, full: FullInformation, k: int = 50, *, progress: Callable[[int], None] | None = None) -> None:
        self.full = full
        self.k = k
        counts = [terms(q.text) for q in full.queries]
        self.idf: Idf = fit_idf(counts, min_df=2, max_df=0.5)
        self._vecs = [vectorize(c, self.idf) for c in counts]
        self._post: dict[str, list[tuple[int, float]]] = {}
        for i, v in enumerate(self._vecs):
            for t, w in v.items():
                self._post.setdefault(t, []).append((i, w))
        self._progress = progress

    def neighbours(self, text: str) -> list[int]:
        vec = vectorize(text, self.idf)
        acc: dict[int, float] = {}
        for t, v in vec.items():
            for i, w in self._post.get(t, ()):
                acc[i] = acc.get(i, 0.0) + v * w
        ranked = sorted(acc.items(), key=lambda kv: (-kv[1], kv[0]))[: self.k]
        return [i for i, _ in ranked]

    def route(self, test: Sequence[Query], lambdas: Sequence[float]) -> dict[float, list[str]]:
        out: dict[float, list[str]] = {lam: [] for lam in lambdas}
        overall = self.full.means()
        qids = [q.qid for q in self.full.queries]
        for n, q in enumerate(test):
            nb = self.neighbours(q.text)
            means = self.full.means(qids[i] for i in nb) if nb else overall
            for lam in lambdas:
                out[lam].append(self.full.models[_pick(means, lam)])
            if self._progress and (n + 1) % 50 == 0:
                self._progress(50)
        return out


def best_single(full: FullInformation) -> str:
    """The model with the best mean train score (ties: cheaper)."""
    return full.models[_pick(full.means(), 0.0)]


def cheapest(full: FullInformation) -> str:
    means = full.means()
    return full.models[min(range(len(means)), key=lambda j: (means[j][1], -means[j][0], j))]
