"""Split: a skill whose turns cluster into two halves that some agent's success rates tell apart."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from skillchat.core import clustering
from skillchat.core.changes import Change
from skillchat.core.evolution.naming import slugify, unique_id
from skillchat.core.evolution.retagging import nearest_child
from skillchat.core.evolution.stats import beta_interval, interval_z
from skillchat.core.evolution.texts import SIGNATURE_TERMS, Texts, clip_example, round_sig, spread, unit_vector
from skillchat.core.handbook import Handbook, from_dict, to_dict
from skillchat.core.rated_log import RatedLog, Reporter, decay

SPLIT_SAMPLE = 300  # texts clustered to find a skill's two halves (then every turn is assigned)


def splits(
    hb: Handbook,
    log: RatedLog,
    stats: Mapping[str, Mapping[str, list[float]]],
    texts: Texts,
    *,
    min_split: int,
    seed: int,
    half_life: float | None,
    report: Reporter,
    tried: dict[str, tuple[int, ...]],
) -> tuple[Handbook, list[Change]]:
    # Candidates: skills where some agent has enough evidence to have min_split on each side.
    candidates = []
    for sid, per_agent in sorted(stats.items()):
        if sid not in hb.skills or (hb.skills[sid].provenance or {}).get("split_into"):
            continue
        if sid == hb.settings.fallback_skill:
            continue  # what nothing explains is carved up by discovery, not split in two
        if any(s + f >= 2 * min_split for s, f in per_agent.values()):
            candidates.append(sid)
    if not candidates:
        return hb, []
    # Turns of each candidate: those where it holds most of the weight, and that have a text.
    members: dict[str, list[int]] = {s: [] for s in candidates}
    for i, (t, w) in enumerate(zip(log.turns, log.weights, strict=True)):
        if not t.text or t.agent_id not in hb.agents:
            continue
        tot = sum(x for x in w.values() if x > 0)
        for s in w:
            if s in members and w[s] >= 0.5 * tot:
                members[s].append(i)
    tests = sum(len(stats[s]) for s in candidates)
    z = interval_z(tests)
    proposals = []
    for n, sid in enumerate(candidates):
        report("split", n, len(candidates))
        idx = members[sid]
        if len(idx) < 2 * min_split:
            continue
        key = (len(idx), idx[0], idx[-1], sum(idx))
        if tried.get(sid) == key:
            continue  # same turns as in an earlier round: same answer
        tried[sid] = key
        prop = _try_split(hb, log, sid, idx, texts, z=z, min_split=min_split, seed=seed, half_life=half_life, tests=tests)
        if prop is not None:
            proposals.append(prop)
    if not proposals:
        return hb, []
    return _apply_splits(hb, log, proposals, texts)


@dataclass
class _SplitProposal:
    skill: str
    centroids: list[dict[str, float]]
    top_terms: list[list[str]]
    examples: list[list[str]]
    sizes: list[int]
    evidence: dict[str, Any]
    rationale: str


def _try_split(
    hb: Handbook, log: RatedLog, sid: str, idx: list[int], texts: Texts, *, z: float, min_split: int, seed: int,
    half_life: float | None, tests: int,
) -> _SplitProposal | None:
    sample = spread(idx, SPLIT_SAMPLE, seed)
    cl = texts.cluster([log.turns[i].text for i in sample], 2, seed)
    if cl.k < 2 or min(cl.sizes) < min_split // 2:
        return None
    cents = [round_sig(dict(clustering.top(c, SIGNATURE_TERMS))) for c in cl.centroids]
    units = [unit_vector(c) for c in cents]
    children = [("0", units[0]), ("1", units[1])]
    # Assign every turn of the skill by the same rule later relearns will use.
    side_stats: list[dict[str, list[float]]] = [{}, {}]
    sizes = [0, 0]
    for i in idx:
        t = log.turns[i]
        c = nearest_child(texts.vec(t.text), children)
        if c is None:
            continue
        k = int(c)
        sizes[k] += 1
        w = log.weights[i]
        tot = sum(x for x in w.values() if x > 0)
        d = decay(t.age_days, half_life) * w[sid] / tot
        y = min(max(t.score, 0.0), 1.0)
        cell = side_stats[k].setdefault(t.agent_id, [0.0, 0.0])
        cell[0] += d * y
        cell[1] += d * (1.0 - y)
    per_agent: dict[str, dict[str, Any]] = {}
    best = None
    for ag in sorted(set(side_stats[0]) | set(side_stats[1])):
        s0, f0 = side_stats[0].get(ag, (0.0, 0.0))
        s1, f1 = side_stats[1].get(ag, (0.0, 0.0))
        m0, lo0, hi0 = beta_interval(s0, f0, z)
        m1, lo1, hi1 = beta_interval(s1, f1, z)
        gap = max(lo0 - hi1, lo1 - hi0)
        ok = s0 + f0 >= min_split and s1 + f1 >= min_split
        per_agent[ag] = {"rates": [m0, m1], "n": [s0 + f0, s1 + f1], "intervals": [[lo0, hi0], [lo1, hi1]],
                         "separated": ok and gap > 0}
        if ok and gap > 0 and (best is None or gap > best[0]):
            best = (gap, ag)
    if best is None:
        return None
    ag = best[1]
    info = per_agent[ag]
    reps = [[clip_example(log.turns[sample[i]].text) for i in cl.representatives(j, 3)] for j in range(2)]
    evidence = {
        "agent": ag,
        "z": z,
        "tests": tests,
        "min_split": min_split,
        "sizes": sizes,
        "top_terms": [cl.top_terms[0][:6], cl.top_terms[1][:6]],
        "per_agent": per_agent,
    }
    name = hb.skills[sid].name
    rationale = (
        f"{hb.agents[ag].name} succeeds {info['rates'][0]:.0%} of the time on {name!r} turns about "
        f"{', '.join(cl.top_terms[0][:3]) or 'one topic'} but {info['rates'][1]:.0%} on those about "
        f"{', '.join(cl.top_terms[1][:3]) or 'another'} ({info['n'][0]:.0f} vs {info['n'][1]:.0f} rated turns; "
        f"credible intervals at z={z:.2f}, corrected for {tests} tests, do not overlap)"
    )
    return _SplitProposal(sid, cents, [cl.top_terms[0], cl.top_terms[1]], reps, sizes, evidence, rationale)


def _root(hb_skills: Mapping[str, Any], sid: str) -> str:
    """The top of a skill's split lineage (children are named after it, not nested deeper)."""
    seen = 0
    while True:
        parent = hb_skills[sid].get("parent") if isinstance(hb_skills[sid], dict) else hb_skills[sid].parent
        if parent is None or parent not in hb_skills or seen > 32:
            return sid
        sid, seen = parent, seen + 1


def _apply_splits(hb: Handbook, log: RatedLog, proposals: Sequence[_SplitProposal],
                  texts: Texts) -> tuple[Handbook, list[Change]]:
    data = to_dict(hb)
    data["competence"] = {}
    taken = {s["id"] for s in data["skills"]}
    by_id = {s["id"]: s for s in data["skills"]}
    out_skills = list(data["skills"])
    made: list[tuple[_SplitProposal, list[str]]] = []
    for p in proposals:
        parent = by_id[p.skill]
        root = by_id[_root(by_id, p.skill)]
        ids = []
        for k in range(2):
            slug = slugify("_".join(p.top_terms[k][:2])) if p.top_terms[k] else f"part{k + 1}"
            cid = unique_id(f"{root['id']}.{slug}", taken)
            ids.append(cid)
            out_skills.append(
                {
                    "id": cid,
                    "mode": parent["mode"],
                    "name": f"{root['name']}: {', '.join(p.top_terms[k][:3]) or f'part {k + 1}'}",
                    "description": f"{root['description']} (Split from {parent['name']}: turns about "
                    f"{', '.join(p.top_terms[k][:6]) or 'one topic'}.)",
                    "indicators": [],
                    "examples": p.examples[k],
                    "parent": p.skill,
                    "signature": p.centroids[k],
                    "provenance": {
                        "split_from": p.skill,
                        "version": hb.version,
                        "top_terms": p.top_terms[k][:8],
                        "turns": p.sizes[k],
                        "rationale": p.rationale,
                    },
                }
            )
        prov = dict(parent.get("provenance") or {})
        prov["split_into"] = ids
        prov.setdefault("changes", []).append({"kind": "split", "version": hb.version, "into": ids, "rationale": p.rationale})
        parent["provenance"] = prov
        made.append((p, ids))
    data["skills"] = out_skills
    new = from_dict(data, source=hb.ref)
    # Re-tag: each turn's weight on a split parent moves to its nearest child.
    children = {p.skill: [(ids[k], unit_vector(p.centroids[k])) for k in range(2)] for p, ids in made}
    moved: Counter[str] = Counter()
    for i, w in enumerate(log.weights):
        hit = [s for s in w if s in children]
        if not hit:
            continue
        q = texts.vec(log.turns[i].text)
        nw = dict(w)
        for s in hit:
            c = nearest_child(q, children[s])
            if c is not None:
                x = nw.pop(s)
                nw[c] = nw.get(c, 0.0) + x
                moved[s] += 1
        log.set(i, nw)
    changes = [
        Change("split", (p.skill,), tuple(ids), (), p.rationale, p.evidence, moved[p.skill]) for p, ids in made
    ]
    return new, changes
