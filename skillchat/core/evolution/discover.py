"""Discover: new skills from coherent clusters of down-rated turns that no skill explains."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from skillchat.core import clustering
from skillchat.core.changes import Change
from skillchat.core.evolution.naming import SkillNamer, slugify, unique_id
from skillchat.core.evolution.texts import SIGNATURE_TERMS, Texts, clip_example, round_sig, spread, unit_vector
from skillchat.core.handbook import Handbook, from_dict, to_dict
from skillchat.core.rated_log import RatedLog

DISCOVER_SAMPLE = 1000  # down-rated unexplained texts clustered to discover skills
DISCOVER_MIN_COHERENCE = 0.2  # mean cosine of a discovered cluster's members to its centroid
MAX_DISCOVER_PER_ROUND = 3
JOIN_SIMILARITY = 0.5  # clusters whose centroids are this similar are one topic cut in two


def _join_similar(cl: clustering.Clustering) -> clustering.Clustering:
    """Re-join clusters that k-means cut out of one topic (k is only a guess from the sample size)."""
    k = cl.k
    if k < 2:  # one cluster from the start (under 4 * min_size turns): nothing to contrast it with either
        return replace(cl, top_terms=[_heaviest(c) for c in cl.centroids])
    parent = list(range(k))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a in range(k):
        for b in range(a + 1, k):
            if clustering.dot(cl.centroids[a], cl.centroids[b]) >= JOIN_SIMILARITY:
                parent[find(b)] = find(a)
    roots = sorted({find(j) for j in range(k)})
    if len(roots) == k:
        return cl
    new_id = {r: n for n, r in enumerate(roots)}
    assign = [new_id[find(a)] for a in cl.assignments]
    vecs = cl.vectors
    cents = [clustering.mean_vector(vecs[i] for i, a in enumerate(assign) if a == j) for j in range(len(roots))]
    sims = [clustering.dot(vecs[i], cents[a]) for i, a in enumerate(assign)]
    bg = clustering.mean_vector(vecs, max_terms=None)
    top = []
    for c in cents:
        terms = clustering.distinctive_terms(c, bg, 8)
        if len(terms) < 3:  # one cluster left: nothing to contrast it with, name it by its heaviest terms
            terms = _heaviest(c)
        top.append(terms)
    return clustering.Clustering(assign, cents, top, sims, cl.idf, cl.iterations, vecs)


def _heaviest(c: clustering.Vector) -> list[str]:
    return [t for t, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:8]]


def discoveries(
    hb: Handbook, log: RatedLog, texts: Texts, *, min_size: int, seed: int, namer: SkillNamer, half_life: float | None
) -> tuple[Handbook, list[Change]]:
    fb = hb.settings.fallback_skill
    unexplained: list[int] = []
    for i, (t, w) in enumerate(zip(log.turns, log.weights, strict=True)):
        if not t.text or t.agent_id not in hb.agents:
            continue
        tot = sum(x for x in w.values() if x > 0)
        if tot > 0 and w.get(fb, 0.0) >= 0.5 * tot:
            unexplained.append(i)
    down = [i for i in unexplained if log.turns[i].score < 0.5]
    if len(down) < min_size:
        return hb, []
    sample = spread(down, DISCOVER_SAMPLE, seed)
    k = max(1, min(8, len(sample) // max(1, 2 * min_size)))
    cl = _join_similar(texts.cluster([log.turns[i].text for i in sample], k, seed, tries=2))
    proposals = []
    for j in range(cl.k):
        ms = cl.members(j)
        if len(ms) < min_size:
            continue
        coherence = sum(cl.similarity[m] for m in ms) / len(ms)
        if coherence < DISCOVER_MIN_COHERENCE or not cl.top_terms[j]:
            continue
        cent = round_sig(dict(clustering.top(cl.centroids[j], SIGNATURE_TERMS)))
        unit = unit_vector(cent)
        # Membership by the rule later relearns apply: similarity to the centroid above a threshold
        # that keeps most of the cluster's own members.
        sims = sorted(clustering.dot(texts.vec(log.turns[sample[m]].text), unit) for m in ms)
        thr = max(0.1, sims[len(sims) // 5])
        proposals.append((coherence, j, cent, thr, ms))
    proposals.sort(key=lambda p: (-len(p[4]), -p[0], p[1]))
    proposals = proposals[:MAX_DISCOVER_PER_ROUND]
    if not proposals:
        return hb, []

    data = to_dict(hb)
    data["competence"] = {}
    taken = {s["id"] for s in data["skills"]}
    fb_mode = hb.skills[fb].mode
    modes = list(hb.modes)
    created: list[tuple[str, dict[str, float], float, dict[str, Any], str]] = []
    for coherence, j, cent, thr, ms in proposals:
        reps = [log.turns[sample[i]].text for i in cl.representatives(j, 5)]
        nm = namer.name(reps, cl.top_terms[j], modes)
        mode = nm.mode if nm.mode in hb.modes else fb_mode
        sid = unique_id(f"{mode}.{slugify(nm.slug)}", taken)
        ups = sum(1 for i in unexplained if log.turns[i].score >= 0.5)
        evidence = {
            "down_rated_in_cluster": len(ms),
            "coherence": coherence,
            "min_similarity": thr,
            "top_terms": cl.top_terms[j][:8],
            "unexplained_turns": len(unexplained),
            "unexplained_up": ups,
        }
        rationale = (
            f"{len(ms)} down-rated turns that no skill explained (they fell to {hb.skills[fb].name!r}) share a "
            f"topic ({', '.join(cl.top_terms[j][:4])}; mean similarity {coherence:.2f}); a skill of their own lets "
            f"routing learn which agent handles them"
        )
        data["skills"].append(
            {
                "id": sid,
                "mode": mode,
                "name": nm.name,
                "description": nm.description,
                "indicators": [],
                "examples": [clip_example(r) for r in reps[:3]],
                "parent": None,
                "signature": cent,
                "provenance": {
                    "discovered_from": fb,
                    "min_similarity": round(thr, 4),
                    "version": hb.version,
                    "top_terms": cl.top_terms[j][:8],
                    "rationale": rationale,
                },
            }
        )
        created.append((sid, unit_vector(cent), thr, evidence, rationale))
    new = from_dict(data, source=hb.ref)
    moved: Counter[str] = Counter()
    for i in unexplained:
        q = texts.vec(log.turns[i].text)
        best, best_sim = None, 0.0
        for sid, unit, thr, _, _ in created:
            sim = clustering.dot(q, unit)
            if sim >= thr and sim > best_sim:
                best, best_sim = sid, sim
        if best is not None:
            w = dict(log.weights[i])
            x = w.pop(fb)
            w[best] = w.get(best, 0.0) + x
            log.set(i, w)
            moved[best] += 1
    changes = [Change("discover", (fb,), (sid,), (), rat, ev, moved[sid]) for sid, _, _, ev, rat in created]
    return new, changes
