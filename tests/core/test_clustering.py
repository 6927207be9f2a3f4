"""core/clustering.py: tf-idf vectors and seeded spherical k-means, flat and two-level."""

from __future__ import annotations

import math
import random
import sys
from collections import Counter
from pathlib import Path

import pytest

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


# --- the formulas, worked by hand -----------------------------------------------------------------
def test_idf_is_smoothed_and_the_vocabulary_bounds_are_inclusive():
    docs = [{"cat": 1, "dog": 1}, {"cat": 2, "fish": 1}, {"cat": 1}]
    idf = cl.fit_idf(docs)
    assert idf.n_docs == 3
    assert idf["cat"] == pytest.approx(math.log(4 / 4) + 1)
    assert idf["dog"] == pytest.approx(math.log(4 / 2) + 1)
    assert idf.default == pytest.approx(math.log(4) + 1) and idf["zebra"] == idf.default
    assert "dog" in idf and "zebra" not in idf
    # min_df=2 keeps a term in exactly 2 documents; max_df=2/3 keeps one in exactly 2 of 3.
    docs.append({"dog": 1})
    assert set(cl.fit_idf(docs, min_df=2).weights) == {"cat", "dog"}
    assert set(cl.fit_idf(docs, max_df=0.5).weights) == {"dog", "fish"}  # cat is in 3 of 4
    assert set(cl.fit_idf(docs, min_df=2, max_df=0.5).weights) == {"dog"}


def test_vectorize_weighs_sublinear_tf_by_idf_and_keeps_the_heaviest_terms():
    idf = cl.Idf({"a1": 1.0, "b2": 2.0, "c3": 2.0}, 5, 3.0)
    v = cl.vectorize({"a1": 3, "b2": 1, "gone": 0, "c3": 0}, idf)
    wa, wb = (1 + math.log(3)) * 1.0, 1 * 2.0
    norm = math.hypot(wa, wb)
    assert v == pytest.approx({"a1": wa / norm, "b2": wb / norm})
    # An unknown term gets the default weight when kept; ties at the cut go to the first term by name.
    kept = cl.vectorize({"b2": 1, "c3": 1, "new": 1}, idf, keep_unknown=True, max_terms=2)
    assert set(kept) == {"new", "b2"}
    assert cl.vectorize({"b2": 1, "c3": 1}, idf, max_terms=None) == pytest.approx({"b2": 2 ** -0.5, "c3": 2 ** -0.5})


def test_top_mean_vector_and_dot():
    assert cl.top({"b": 1.0, "a": 1.0, "c": 2.0}, 2) == {"c": 2.0, "a": 1.0}
    assert cl.top({"b": 1.0}, 1) == {"b": 1.0} and cl.top({"b": 1.0, "a": 0.5}, None) == {"b": 1.0, "a": 0.5}
    m = cl.mean_vector([{"x": 1.0}, {"x": 0.6, "y": 0.8}], max_terms=None)
    assert m == pytest.approx({"x": 1.6 / math.hypot(1.6, 0.8), "y": 0.8 / math.hypot(1.6, 0.8)})
    assert cl.mean_vector([{"x": 1.0}, {"x": 0.6, "y": 0.8}], max_terms=1) == pytest.approx({"x": 1.0})
    assert cl.mean_vector([]) == {} and cl.normalize({"x": 0.0}) == {}
    a, b = {"x": 0.6, "y": 0.8}, {"x": 1.0, "y": 0.5, "z": 3.0}
    assert cl.dot(a, b) == pytest.approx(1.0) and cl.dot(b, a) == pytest.approx(1.0)


def test_distinctive_terms_are_the_largest_lifts_over_the_background():
    centroid = {"alpha": 0.5, "beta": 0.5, "gamma": 0.7, "delta": 0.1}
    background = {"alpha": 0.1, "gamma": 0.7, "delta": 0.2}
    # beta lifts 0.5, alpha 0.4; gamma (no lift) and delta (below the background) never name it.
    assert cl.distinctive_terms(centroid, background, 5) == ["beta", "alpha"]
    assert cl.distinctive_terms(centroid, background, 1) == ["beta"]
    assert cl.distinctive_terms({"b": 0.5, "a": 0.5}, {}, 2) == ["a", "b"]  # ties by name


# --- k-means --------------------------------------------------------------------------------------
def test_k_means_caps_k_at_the_distinct_vectors_and_puts_empty_ones_in_cluster_0():
    x, y = {"x": 1.0}, {"y": 1.0}
    c = cl.cluster_vectors([x, {}, y, dict(x), {}], 5, seed=3)
    assert c.k == 2
    assert c.assignments[1] == c.assignments[4] == 0 and c.similarity[1] == 0.0
    assert c.assignments[0] == c.assignments[3] != c.assignments[2]
    assert c.similarity[0] == pytest.approx(1.0) and c.similarity[2] == pytest.approx(1.0)
    assert sorted(c.sizes) == [1, 4]
    only_empty = cl.cluster_vectors([{}, {}], 3)
    assert only_empty.k == 1 and only_empty.assignments == [0, 0]
    with pytest.raises(ValueError, match="at least 1"):
        cl.cluster_vectors([x], 0)


def test_k_means_moves_a_text_to_the_nearer_centroid_and_stops_when_nothing_changes():
    # Two tight groups; whatever the seeding, k-means ends with one cluster per group.
    group_a = [cl.normalize({"x": 1.0, "y": e}) for e in (0.0, 0.1, 0.2)]
    group_b = [cl.normalize({"z": 1.0, "y": e}) for e in (0.0, 0.1, 0.2)]
    for seed in range(6):
        c = cl.cluster_vectors(group_a + group_b, 2, seed)
        assert len(set(c.assignments[:3])) == 1 and len(set(c.assignments[3:])) == 1
        assert c.assignments[0] != c.assignments[3]
        assert 2 <= c.iterations < 25
        for i, v in enumerate(c.vectors):
            assert c.similarity[i] == pytest.approx(cl.dot(v, c.centroids[c.assignments[i]]))
        j, sim = c.nearest(group_b[0])
        assert j == c.assignments[3] and sim == pytest.approx(max(c.scores(group_b[0])))


def test_representatives_are_nearest_first_and_ties_go_to_the_earlier_text():
    c = cl.Clustering([0, 0, 0, 1], [{"x": 1.0}, {"y": 1.0}], [[], []], [0.5, 0.9, 0.5, 1.0])
    assert c.representatives(0, 3) == [1, 0, 2]
    assert c.representatives(0, 1) == [1] and c.members(1) == [3]
    with pytest.raises(ValueError, match="vectorize"):
        c.assign("some text")


def test_argmax_takes_the_first_of_equal_scores():
    assert cl._argmax([0.2, 0.7, 0.7]) == 1
    assert cl._argmax([-1.0, -2.0]) == 0


def test_hierarchy_sizes_skills_by_texts_per_skill_within_bounds():
    texts, _ = _texts(150)
    h = cl.cluster_hierarchy(texts, 3, None, seed=0, texts_per_skill=25)
    assert [s.k for s in h.skills] == [2, 2, 2]  # 50 texts a mode / 25
    h = cl.cluster_hierarchy(texts, 3, None, seed=0, texts_per_skill=10, max_skills_per_mode=3)
    assert [s.k for s in h.skills] == [3, 3, 3]
    h = cl.cluster_hierarchy(texts, 3, None, seed=0, texts_per_skill=1000)
    assert [s.k for s in h.skills] == [1, 1, 1]
    h = cl.cluster_hierarchy(texts, 3, [1, 2, 3], seed=0)
    assert [s.k for s in h.skills] == [1, 2, 3]


def test_k_means_plus_plus_never_seeds_two_copies_of_one_text():
    # After x and another point are picked, the copies of x are at distance 0 from a centroid and
    # must stay there: only z can be the third seed.
    x, y, z = {"x": 1.0}, {"y": 1.0}, {"z": 1.0}
    vecs = [x, dict(x), dict(x), y, z]
    for seed in range(20):
        seeds = cl._seed_plus_plus(vecs, list(range(5)), 3, random.Random(seed))
        assert sorted(next(iter(c)) for c in seeds) == ["x", "y", "z"], seed


def test_a_small_corpus_keeps_words_of_one_text_and_a_larger_one_does_not():
    # min_df=2 would leave three short texts almost no words; up to 3 texts a word in one is enough.
    three = ["apple cherry", "apple grape", "banana melon"]
    assert stem("cherry") in cl.cluster_texts(three, 1).idf
    assert stem("cherry") in cl.cluster_hierarchy(three, 1, 1).modes.idf
    four = [*three, "banana apple"]
    assert stem("cherry") not in cl.cluster_texts(four, 1).idf
    assert stem("cherry") not in cl.cluster_hierarchy(four, 1, 1).modes.idf
    assert stem("apple") in cl.cluster_texts(four, 1, max_df=1.0).idf


def test_each_mode_refits_its_vocabulary_by_its_own_size():
    fruit = ["apple banana cherry", "apple banana grape", "apple banana melon"]
    engines = ["engine motor valve", "engine motor valve", "engine motor clutch", "engine motor gear",
               "engine motor gear"]
    h = cl.cluster_hierarchy(fruit + engines, 2, 1, seed=0, max_df=1.0)
    assert sorted(sorted(m) for m in h.mode_members) == [[0, 1, 2], [3, 4, 5, 6, 7]]
    local = {len(h.mode_members[m]): h.skills[m].idf for m in range(2)}
    assert stem("cherry") in local[3]  # 3 texts: a word of one of them counts
    assert stem("valve") in local[5] and stem("clutch") not in local[5]  # 5 texts: it takes two
    assert stem("cherry") not in h.modes.idf and stem("valve") in h.modes.idf
    m = h.modes.assignments[0]
    assert h.skill_representatives(m, 0, 2) == [h.mode_members[m][p] for p in h.skills[m].representatives(0, 2)]
    assert len(h.skill_representatives(m, 0, 2)) == 2
