"""The turn texts evolution works on: query vectors and clustering (Texts), centroid signatures, samples and
examples. Shared by re-tagging, split and discover."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from skillchat.core import clustering

SIGNATURE_TERMS = 40
# How similar a fallback turn must be to a discovered skill's signature when its provenance gives no threshold.
DEFAULT_MIN_SIMILARITY = 0.2


class Texts:
    """Query vectors of turn texts: (1 + ln tf), unit length, no idf (the centroids carry it)."""

    __slots__ = ("_cache", "_terms")

    def __init__(self) -> None:
        self._cache: dict[str, dict[str, float]] = {}
        self._terms: dict[str, Counter[str]] = {}

    def terms(self, text: str) -> Counter[str]:
        tf = self._terms.get(text)
        if tf is None:
            tf = clustering.terms(text) if text else Counter()
            self._terms[text] = tf
        return tf

    def vec(self, text: str) -> dict[str, float]:
        v = self._cache.get(text)
        if v is None:
            tf = self.terms(text)
            v = clustering.normalize({t: 1.0 + math.log(c) for t, c in tf.items() if c > 0})
            self._cache[text] = v
        return v

    def cluster(self, texts: Sequence[str], k: int, seed: int, tries: int = 3, max_iter: int = 15) -> clustering.Clustering:
        """tf-idf k-means (core/clustering.py) on some texts; the tightest of a few seeded runs.

        Runs are compared by mean similarity to their centroids: outcomes are never looked at, so
        the split test that follows is not fitted to the ratings.
        """
        counts = [self.terms(t) for t in texts]
        idf = clustering.fit_idf(counts, min_df=min(2, max(1, len(texts) // 2)), max_df=0.5)
        vecs = [clustering.vectorize(c, idf) for c in counts]
        best = None
        for j in range(tries):
            cl = clustering.cluster_vectors(vecs, k, seed * 7919 + j, max_iter=max_iter)
            score = sum(cl.similarity) / max(1, len(cl.similarity))
            if best is None or score > best[0] + 1e-12:
                best = (score, cl)
        assert best is not None
        return best[1]


def unit_vector(sig: Mapping[str, float]) -> dict[str, float]:
    return clustering.normalize({t: float(w) for t, w in sig.items() if w > 0})


def round_sig(sig: Mapping[str, float]) -> dict[str, float]:
    return {t: round(w, 5) for t, w in sig.items() if round(w, 5) > 0}


def spread(idx: list[int], n: int, seed: int = 0) -> list[int]:
    """At most n items, a seeded random sample in log order (a fixed stride could alias with a pattern)."""
    if len(idx) <= n:
        return idx
    import random

    return sorted(random.Random(seed).sample(idx, n))


def clip_example(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "\u2026"
