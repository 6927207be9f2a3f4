"""core/clustering.py: tf-idf vectors and seeded spherical k-means, flat and two-level."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

from skillchat.core import clustering as cl
from skillchat.core.text import stem

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))  # the replay set's synthetic vocabularies
from synth import FILLER, VOCAB  # noqa: E402


def _texts(n: int = 90, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        t = sorted(VOCAB)[i % 3]
        texts.append(" ".join(rng.choices(VOCAB[t], k=6) + rng.choices(FILLER, k=3)))
        labels.append(t)
    return texts, labels


def _purity(assign: list[int], labels: list[str]) -> float:
    by: dict[int, Counter[str]] = {}
    for a, label in zip(assign, labels, strict=True):
        by.setdefault(a, Counter())[label] += 1
    return sum(c.most_common(1)[0][1] for c in by.values()) / len(labels)


def test_vectorize_is_unit_tf_idf():
    idf = cl.fit_idf(["the cat sat", "the dog sat", "a cat ran"])
    v = cl.vectorize("cat cat dog", idf)
    assert abs(sum(x * x for x in v.values()) - 1.0) < 1e-9
    assert set(v) == {"cat", "dog"}
    assert idf["dog"] > idf["cat"]  # rarer weighs more
    assert cl.vectorize("", idf) == {}
    assert cl.vectorize("zebra", idf) == {} and cl.vectorize("zebra", idf, keep_unknown=True) == {"zebra": 1.0}


def test_cluster_texts_recovers_vocabularies_and_is_seeded():
    texts, labels = _texts()
    c = cl.cluster_texts(texts, 3, seed=1)
    assert c.k == 3 and sum(c.sizes) == len(texts)
    assert _purity(c.assignments, labels) > 0.95
    for j in range(3):
        top = set(c.top_terms[j][:4])
        assert any(top <= {stem(w) for w in ws} for ws in VOCAB.values()), top
        assert c.representatives(j, 2) and all(c.assignments[i] == j for i in c.representatives(j, 2))
        assert all(abs(sum(x * x for x in cen.values()) - 1) < 1e-9 for cen in c.centroids)
    again = cl.cluster_texts(texts, 3, seed=1)
    assert again.assignments == c.assignments and again.centroids == c.centroids
    j, sim = c.assign(texts[0])
    assert j == c.assignments[0] and sim > 0


def test_k_is_capped_and_empty_input_is_fine():
    assert cl.cluster_texts(["same words here"] * 5, 4, seed=0).k == 1
    assert cl.cluster_texts([], 3).k == 0
    c = cl.cluster_texts(["alpha beta", "", "gamma delta"], 2, seed=0, min_df=1)
    assert len(c.assignments) == 3


def test_hierarchy_modes_and_skills():
    texts, labels = _texts(150)
    h = cl.cluster_hierarchy(texts, 3, 2, seed=0)
    assert h.modes.k == 3 and _purity(h.modes.assignments, labels) > 0.95
    for m in range(h.modes.k):
        assert h.skills[m].k == 2
        assert len(h.signatures[m]) == 2
        for s in range(2):
            for i in h.skill_members(m, s):
                assert h.skill_of(i) == (m, s)
    # Signatures live in the global space: a text is closest to a signature of its own mode.
    i = 7
    m, s = h.skill_of(i)
    sims = [(cl.dot(h.modes.vectors[i], sig), mm) for mm in range(h.modes.k) for sig in h.signatures[mm]]
    assert max(sims)[1] == m
