"""Merge: two sibling skills whose rates no agent tells apart, and that enough agents show equal within a margin."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

from skillchat.core import clustering
from skillchat.core.changes import Change
from skillchat.core.evolution.stats import Z90, beta_sd
from skillchat.core.evolution.texts import DEFAULT_MIN_SIMILARITY, SIGNATURE_TERMS, round_sig
from skillchat.core.handbook import Handbook, from_dict, to_dict
from skillchat.core.rated_log import RatedLog

MERGE_MARGIN = 0.12  # rates "equal" when their 90% interval of difference lies within +-margin
MIN_MERGE_AGENTS = 2  # agents with enough data on both skills before a merge may fire


def _block_z(agents: int) -> float:
    """An agent 'tells two skills apart' at 95%, corrected for the agents compared."""
    return NormalDist().inv_cdf(1.0 - 0.05 / (2.0 * max(1, agents)))


def _merge_blockers(hb: Handbook) -> set[str]:
    """Skills that never merge: the fallback, split parents, and any skill other skills name as parent.

    Children of one split may merge with each other later, when more data shows they route alike.
    """
    out = {hb.settings.fallback_skill}
    for s in hb.skills.values():
        prov = s.provenance or {}
        if prov.get("split_into"):
            out.add(s.id)
        if s.parent is not None:
            out.add(s.parent)
    return out


def merges(
    hb: Handbook, log: RatedLog, stats: Mapping[str, Mapping[str, list[float]]], *, min_split: int, margin: float
) -> tuple[Handbook, list[Change]]:
    blocked = _merge_blockers(hb)
    groups: dict[tuple[str, str | None], list[str]] = {}
    for s in hb.skills.values():
        if s.id not in blocked:
            groups.setdefault((s.mode, s.parent), []).append(s.id)
    agents = list(hb.agents)
    need = min(MIN_MERGE_AGENTS, len(agents))
    pairs = []
    for ids in groups.values():
        ids = sorted(i for i in ids if i in stats)  # a skill without evidence can't be shown equal
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                a, b = ids[i], ids[j]
                ev = _equivalence(stats[a], stats[b], agents, min_n=min_split, margin=margin)
                if ev is not None and ev["agents_with_data"] >= need:
                    pairs.append((ev["max_abs_diff"], a, b, ev))
    pairs.sort(key=lambda p: (p[0], p[1], p[2]))
    changes: list[Change] = []
    used: set[str] = set()
    for _, a, b, ev in pairs:
        if a in used or b in used:
            continue
        used.update((a, b))
        na = sum(x[0] + x[1] for x in stats[a].values())
        nb = sum(x[0] + x[1] for x in stats[b].values())
        keep, drop = (a, b) if (na, b) >= (nb, a) else (b, a)
        rationale = (
            f"no agent's success rate differs between {hb.skills[keep].name!r} and {hb.skills[drop].name!r}, and "
            f"{ev['agents_with_data']} agents have enough rated turns on both to say the rates agree within "
            f"+-{margin:.2f}; one skill routes the same way, so the evidence is pooled (summed)"
        )
        changes.append(Change("merge", (keep, drop), (), (drop,), rationale, ev))
    if not changes:
        return hb, []
    hb = _apply_merges(hb, changes)
    # Re-tag: the removed skill's weight moves to the survivor (evidence is summed, not averaged).
    alias = {c.removed[0]: c.skills[0] for c in changes}
    retagged: Counter[str] = Counter()
    for i, w in enumerate(log.weights):
        if any(s in alias for s in w):
            nw: dict[str, float] = {}
            for sid, x in w.items():
                t = alias.get(sid, sid)
                nw[t] = nw.get(t, 0.0) + x
            log.set(i, nw)
            retagged[next(alias[s] for s in w if s in alias)] += 1
    changes = [Change(c.kind, c.skills, c.created, c.removed, c.rationale, c.evidence, retagged[c.skills[0]]) for c in changes]
    return hb, changes


def _equivalence(
    ca: Mapping[str, list[float]], cb: Mapping[str, list[float]], agents: Sequence[str], *, min_n: int, margin: float
) -> dict[str, Any] | None:
    """None when some agent's rates differ credibly or when agents with data disagree beyond margin."""
    per_agent = {}
    with_data = 0
    max_abs = 0.0
    for ag in agents:
        sa, fa = ca.get(ag, (0.0, 0.0))
        sb, fb = cb.get(ag, (0.0, 0.0))
        na, nb = sa + fa, sb + fb
        if na <= 0 or nb <= 0:
            continue
        ma, mb = (1 + sa) / (2 + na), (1 + sb) / (2 + nb)
        diff = ma - mb
        sd = math.hypot(beta_sd(sa, fa), beta_sd(sb, fb))
        if abs(diff) > _block_z(len(agents)) * sd:
            return None  # this agent tells them apart
        enough = na >= min_n and nb >= min_n and abs(diff) + Z90 * sd <= margin
        if enough:
            with_data += 1
        max_abs = max(max_abs, abs(diff))
        per_agent[ag] = {"rate_a": ma, "rate_b": mb, "n_a": na, "n_b": nb, "diff_sd": sd, "equivalent": enough}
    return {"agents_with_data": with_data, "max_abs_diff": max_abs, "margin": margin, "per_agent": per_agent}


def _apply_merges(hb: Handbook, changes: Sequence[Change]) -> Handbook:
    data = to_dict(hb)
    data["competence"] = {}
    by_id = {s["id"]: s for s in data["skills"]}
    for c in changes:
        keep, drop = c.skills
        k, d = by_id[keep], by_id.pop(drop)
        k["indicators"] = _dedupe(k["indicators"] + d["indicators"])
        k["examples"] = _dedupe(k["examples"] + d["examples"])[:12]
        if d.get("signature") and not k.get("signature"):
            # The survivor is found by its text; carry the other's distinctive terms as an example.
            top = sorted(d["signature"].items(), key=lambda kv: (-kv[1], kv[0]))[:8]
            k["examples"] = _dedupe(k["examples"] + [" ".join(t for t, _ in top)])
        elif d.get("signature") and k.get("signature"):
            k["signature"] = round_sig(clustering.mean_vector([k["signature"], d["signature"]], max_terms=SIGNATURE_TERMS))
        prov = dict(k.get("provenance") or {})
        dprov = d.get("provenance") or {}
        merged = list(prov.get("merged_from", [])) + [drop] + list(dprov.get("merged_from", []))
        prov["merged_from"] = _dedupe(merged)
        # The fallback turns a discovered skill took over must keep coming to the survivor in later relearns.
        found = list(prov.get("merged_discoveries", [])) + list(dprov.get("merged_discoveries", []))
        if isinstance(dprov.get("discovered_from"), str) and d.get("signature"):
            threshold = float(dprov.get("min_similarity", DEFAULT_MIN_SIMILARITY))
            found.append({"signature": d["signature"], "min_similarity": threshold})
        if found:
            prov["merged_discoveries"] = found
        prov.setdefault("changes", []).append({"kind": "merge", "version": hb.version, "with": drop, "rationale": c.rationale})
        k["provenance"] = prov
    data["skills"] = [s for s in data["skills"] if s["id"] in by_id]
    removed = {c.skills[1] for c in changes}
    for a in data["agents"]:
        for r in removed:
            a["prior"]["skills"].pop(r, None)
    return from_dict(data, source=hb.ref)


def _dedupe(xs: Sequence[Any]) -> list[Any]:
    seen, out = set(), []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out
