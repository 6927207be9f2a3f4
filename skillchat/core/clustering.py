"""Unsupervised skill discovery: tf-idf vectors and seeded spherical k-means, in pure Python.

Texts become sparse unit vectors (term -> weight) over the stems of `core.text`, weighted by
sublinear tf times a smoothed idf. `cluster_texts` groups them by cosine similarity (spherical
k-means, k-means++ seeding from a seeded `random.Random`); `cluster_hierarchy` does it twice, coarse
clusters first (modes) and fine clusters inside each (skills), re-weighting terms inside each coarse
cluster so that text shared by the whole cluster (a prompt template, a set of few-shot examples)
does not drown the words that tell its members apart.

Everything is deterministic for a given input order and seed: no set or hash order reaches a result.
Vectors and centroids are truncated to their heaviest terms, which bounds the work of one k-means
iteration to about n_texts x max_terms postings lookups.

Used by the replay benchmark (skills learned from train texts) and by relearn (skills discovered
from down-rated turns). Typical use:

    c = cluster_texts(texts, k=8, seed=0)
    c.assignments[i], c.centroids[j], c.top_terms[j], c.members(j)
    j, sim = c.nearest(vectorize(new_text, c.idf))
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from skillchat.core.text import content_stems

Vector = dict[str, float]

# Heaviest terms kept per text and per centroid: enough to place a text, bounded work per iteration.
MAX_TERMS = 64
CENTROID_TERMS = 200


@dataclass(frozen=True, slots=True)
class Idf:
    """Smoothed inverse document frequency, fitted on one corpus."""

    weights: Mapping[str, float]
    n_docs: int
    # Weight of a term never seen in the corpus (the rarest possible): log(n+1) + 1.
    default: float

    def __getitem__(self, term: str) -> float:
        return self.weights.get(term, self.default)

    def __contains__(self, term: object) -> bool:
        return term in self.weights


def terms(text: str) -> Counter[str]:
    """Term counts of one text: stems of its content words (no stopwords, no one-letter tokens)."""
    return Counter(content_stems(text))


def fit_idf(
    docs: Iterable[Mapping[str, float] | str], *, min_df: int = 1, max_df: float = 1.0
) -> Idf:
    """idf(t) = ln((n + 1) / (df(t) + 1)) + 1 over `docs` (texts, or term counts from `terms`).

    Terms in fewer than `min_df` documents or in more than `max_df` (a share) of them are left out
    of the vocabulary: `vectorize` then ignores them (`keep_unknown=False`) or gives them the default.
    """
    df: Counter[str] = Counter()
    n = 0
    for d in docs:
        tf = terms(d) if isinstance(d, str) else d
        df.update(tf.keys())
        n += 1
    cap = max_df * n
    weights = {t: math.log((n + 1) / (c + 1)) + 1.0 for t, c in df.items() if c >= min_df and c <= cap}
    return Idf(weights, n, math.log(n + 1) + 1.0)


def vectorize(
    text: str | Mapping[str, float],
    idf: Idf,
    *,
    max_terms: int | None = MAX_TERMS,
    keep_unknown: bool = False,
) -> Vector:
    """A unit-length tf-idf vector: (1 + ln tf) * idf, the `max_terms` heaviest terms kept.

    Terms outside the idf vocabulary are dropped unless `keep_unknown`. An empty text (or one made
    only of unknown terms) gives an empty vector, which is similar to nothing.
    """
    tf = terms(text) if isinstance(text, str) else text
    vec: Vector = {}
    for t, c in tf.items():
        if c <= 0:
            continue
        w = idf.weights.get(t)
        if w is None:
            if not keep_unknown:
                continue
            w = idf.default
        vec[t] = (1.0 + math.log(c)) * w
    return normalize(top(vec, max_terms))


def normalize(vec: Mapping[str, float]) -> Vector:
    norm = math.sqrt(sum(v * v for v in vec.values()))
    return {t: v / norm for t, v in vec.items()} if norm > 0 else {}


def dot(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(t, 0.0) for t, v in a.items())


def top(vec: Mapping[str, float], n: int | None) -> Vector:
    """The `n` heaviest terms of a vector (all when n is None); ties broken by term."""
    if n is None or len(vec) <= n:
        return dict(vec)
    # Ties broken by term, so the result never depends on insertion order.
    return dict(sorted(vec.items(), key=lambda kv: (-kv[1], kv[0]))[:n])


def mean_vector(vectors: Iterable[Mapping[str, float]], *, max_terms: int | None = CENTROID_TERMS) -> Vector:
    """The normalised sum of some vectors, truncated to its heaviest terms."""
    acc: dict[str, float] = {}
    for v in vectors:
        for t, w in v.items():
            acc[t] = acc.get(t, 0.0) + w
    return normalize(top(acc, max_terms))


class _Index:
    """Centroids as postings (term -> [(cluster, weight)]), for scoring one vector against all."""

    __slots__ = ("k", "post")

    def __init__(self, centroids: Sequence[Mapping[str, float]]) -> None:
        self.k = len(centroids)
        self.post: dict[str, list[tuple[int, float]]] = {}
        for j, c in enumerate(centroids):
            for t, w in c.items():
                self.post.setdefault(t, []).append((j, w))

    def scores(self, vec: Mapping[str, float]) -> list[float]:
        s = [0.0] * self.k
        post = self.post
        for t, v in vec.items():
            p = post.get(t)
            if p is not None:
                for j, w in p:
                    s[j] += v * w
        return s


def _argmax(xs: Sequence[float]) -> int:
    best, bi = -math.inf, 0
    for i, x in enumerate(xs):
        if x > best:
            best, bi = x, i
    return bi


@dataclass(frozen=True)
class Clustering:
    """The result of `cluster_texts` / `cluster_vectors`.

    assignments[i]: cluster of text i; centroids[j]: unit sparse vector (term -> weight);
    top_terms[j]: the terms that best describe cluster j, heaviest first; similarity[i]: cosine of
    text i to its centroid; idf: the weighting the vectors were made with (None if given vectors).
    """

    assignments: list[int]
    centroids: list[Vector]
    top_terms: list[list[str]]
    similarity: list[float]
    idf: Idf | None = None
    iterations: int = 0
    vectors: list[Vector] = field(default_factory=list, repr=False)

    @property
    def k(self) -> int:
        return len(self.centroids)

    @property
    def sizes(self) -> list[int]:
        out = [0] * self.k
        for a in self.assignments:
            out[a] += 1
        return out

    def members(self, cluster: int) -> list[int]:
        return [i for i, a in enumerate(self.assignments) if a == cluster]

    def representatives(self, cluster: int, n: int = 3) -> list[int]:
        """Indices of the `n` members nearest to the centroid, nearest first."""
        ms = self.members(cluster)
        ms.sort(key=lambda i: (-self.similarity[i], i))
        return ms[:n]

    def scores(self, vec: Mapping[str, float]) -> list[float]:
        """Cosine of a unit vector to every centroid."""
        return _Index(self.centroids).scores(vec)

    def nearest(self, vec: Mapping[str, float]) -> tuple[int, float]:
        s = self.scores(vec)
        j = _argmax(s)
        return j, s[j]

    def assign(self, text: str) -> tuple[int, float]:
        """Nearest cluster of a new text (needs the idf the clustering was made with)."""
        if self.idf is None:
            raise ValueError("this clustering was made from vectors; vectorize the text yourself")
        return self.nearest(vectorize(text, self.idf))


def cluster_vectors(
    vectors: Sequence[Mapping[str, float]],
    k: int,
    seed: int = 0,
    *,
    max_iter: int = 25,
    centroid_terms: int | None = CENTROID_TERMS,
    n_top_terms: int = 8,
    background: Mapping[str, float] | None = None,
) -> Clustering:
    """Spherical k-means on unit sparse vectors, k-means++ seeded.

    `k` is capped at the number of distinct non-empty vectors. Empty vectors join cluster 0 with
    similarity 0. A cluster that empties is re-seeded with the member worst served by its centroid.
    `background` (a mean vector of the corpus) makes `top_terms` name what is distinctive about a
    cluster rather than what every text shares; by default the mean of `vectors` is used.
    """
    n = len(vectors)
    if k < 1:
        raise ValueError("k must be at least 1")
    if n == 0:
        return Clustering([], [], [], [], None, 0, [])
    vecs = [dict(v) for v in vectors]
    live = [i for i in range(n) if vecs[i]]
    distinct = len({tuple(sorted(vecs[i].items())) for i in live})
    k = max(1, min(k, distinct)) if live else 1
    rng = random.Random(seed)

    centroids = _seed_plus_plus(vecs, live, k, rng) if live else [{}]
    assignments = [0] * n
    sims = [0.0] * n
    it = 0
    for it in range(1, max_iter + 1):
        index = _Index(centroids)
        changed = 0
        for i in live:
            s = index.scores(vecs[i])
            j = _argmax(s)
            if j != assignments[i] or it == 1:
                changed += j != assignments[i]
                assignments[i] = j
            sims[i] = s[j]
        members: list[list[int]] = [[] for _ in range(k)]
        for i in live:
            members[assignments[i]].append(i)
        for j in range(k):
            if not members[j]:
                # Re-seed an empty cluster with the worst-served text of the largest cluster.
                donor = max(range(k), key=lambda c: (len(members[c]), -c))
                if len(members[donor]) < 2:
                    continue
                worst = min(members[donor], key=lambda i: (sims[i], i))
                members[donor].remove(worst)
                members[j].append(worst)
                assignments[worst] = j
                changed += 1
        new = [mean_vector((vecs[i] for i in ms), max_terms=centroid_terms) if ms else centroids[j]
               for j, ms in enumerate(members)]
        centroids = new
        if it > 1 and changed == 0:
            break
    # Final similarities against the final centroids.
    index = _Index(centroids)
    for i in live:
        sims[i] = index.scores(vecs[i])[assignments[i]]
    bg = background if background is not None else mean_vector((vecs[i] for i in live), max_terms=None)
    names = [distinctive_terms(c, bg, n_top_terms) for c in centroids]
    return Clustering(assignments, centroids, names, sims, None, it, vecs)


def _seed_plus_plus(vecs: list[Vector], live: list[int], k: int, rng: random.Random) -> list[Vector]:
    """k-means++ on cosine distance (1 - cos): spread-out initial centroids."""
    first = live[rng.randrange(len(live))]
    centroids = [dict(vecs[first])]
    dist = [max(0.0, 1.0 - dot(vecs[i], centroids[0])) for i in live]
    chosen = {first}
    while len(centroids) < k:
        total = sum(dist)
        if total <= 0:
            break
        u = rng.random() * total
        acc = 0.0
        pick = live[-1]
        for idx, d in zip(live, dist, strict=True):
            acc += d
            if u < acc and idx not in chosen:
                pick = idx
                break
        if pick in chosen:
            rest = [i for i in live if i not in chosen]
            if not rest:
                break
            pick = rest[rng.randrange(len(rest))]
        chosen.add(pick)
        c = dict(vecs[pick])
        centroids.append(c)
        dist = [min(d, max(0.0, 1.0 - dot(vecs[i], c))) for i, d in zip(live, dist, strict=True)]
    return centroids


def distinctive_terms(centroid: Mapping[str, float], background: Mapping[str, float], n: int) -> list[str]:
    """Terms heavier in the centroid than in the corpus as a whole, heaviest lift first."""
    scored = [(w - background.get(t, 0.0), t) for t, w in centroid.items()]
    scored = [(s, t) for s, t in scored if s > 0]
    scored.sort(key=lambda st: (-st[0], st[1]))
    return [t for _, t in scored[:n]]


def cluster_texts(
    texts: Sequence[str],
    k: int,
    seed: int = 0,
    *,
    min_df: int = 2,
    max_df: float = 0.5,
    max_terms: int | None = MAX_TERMS,
    max_iter: int = 25,
    n_top_terms: int = 8,
) -> Clustering:
    """tf-idf vectors of `texts` (idf fitted on them) clustered into at most `k` groups."""
    counts = [terms(t) for t in texts]
    idf = fit_idf(counts, min_df=min(min_df, max(1, len(texts) // 2)), max_df=max_df)
    vecs = [vectorize(c, idf, max_terms=max_terms) for c in counts]
    c = cluster_vectors(vecs, k, seed, max_iter=max_iter, n_top_terms=n_top_terms)
    return Clustering(c.assignments, c.centroids, c.top_terms, c.similarity, idf, c.iterations, c.vectors)


@dataclass(frozen=True)
class Hierarchy:
    """Two-level clustering: `modes` over all texts, `skills[m]` over the texts of mode m.

    skills[m].assignments are positions in `mode_members[m]`; `skill_of(i)` maps a text index to
    its (mode, skill) pair. `signatures[m][s]` is the skill's centroid in the global tf-idf space
    (the space of `modes.idf`), so one vectorizer places a new text among every skill.
    """

    modes: Clustering
    skills: list[Clustering]
    mode_members: list[list[int]]
    signatures: list[list[Vector]]

    def skill_of(self, i: int) -> tuple[int, int]:
        m = self.modes.assignments[i]
        pos = self.mode_members[m].index(i)
        return m, self.skills[m].assignments[pos]

    def skill_members(self, m: int, s: int) -> list[int]:
        """Text indices (into the original list) of skill s of mode m."""
        mm = self.mode_members[m]
        return [mm[p] for p in self.skills[m].members(s)]

    def skill_representatives(self, m: int, s: int, n: int = 3) -> list[int]:
        mm = self.mode_members[m]
        return [mm[p] for p in self.skills[m].representatives(s, n)]


def cluster_hierarchy(
    texts: Sequence[str],
    n_modes: int,
    skills_per_mode: int | Sequence[int] | None = None,
    seed: int = 0,
    *,
    texts_per_skill: int = 60,
    max_skills_per_mode: int = 8,
    min_df: int = 2,
    max_df: float = 0.5,
    max_terms: int | None = MAX_TERMS,
    signature_terms: int = 60,
) -> Hierarchy:
    """Modes = coarse clusters of all texts; skills = fine clusters inside each mode.

    `skills_per_mode` is a number for every mode, one number per mode, or None for about one
    skill per `texts_per_skill` texts of the mode (at least 1, at most `max_skills_per_mode`).
    Inside a mode, idf is refitted on the mode's texts, so terms every member shares weigh little.
    """
    counts = [terms(t) for t in texts]
    idf = fit_idf(counts, min_df=min(min_df, max(1, len(texts) // 2)), max_df=max_df)
    vecs = [vectorize(c, idf, max_terms=max_terms) for c in counts]
    modes = cluster_vectors(vecs, n_modes, seed, n_top_terms=8)
    modes = Clustering(modes.assignments, modes.centroids, modes.top_terms, modes.similarity, idf, modes.iterations, vecs)
    skills: list[Clustering] = []
    members: list[list[int]] = []
    signatures: list[list[Vector]] = []
    for m in range(modes.k):
        mm = modes.members(m)
        members.append(mm)
        if isinstance(skills_per_mode, int):
            k = skills_per_mode
        elif skills_per_mode is not None:
            k = skills_per_mode[m]
        else:
            k = max(1, min(max_skills_per_mode, round(len(mm) / max(1, texts_per_skill))))
        local_counts = [counts[i] for i in mm]
        local_idf = fit_idf(local_counts, min_df=min(min_df, max(1, len(mm) // 2)), max_df=max_df)
        local = [vectorize(c, local_idf, max_terms=max_terms) for c in local_counts]
        sub = cluster_vectors(local, k, seed * 1009 + m + 1, n_top_terms=8)
        skills.append(Clustering(sub.assignments, sub.centroids, sub.top_terms, sub.similarity, local_idf, sub.iterations, local))
        signatures.append(
            [mean_vector((vecs[mm[p]] for p in sub.members(s)), max_terms=signature_terms) for s in range(sub.k)]
        )
    return Hierarchy(modes, skills, members, signatures)
