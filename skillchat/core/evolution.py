"""Skill evolution from the user's own rated history: split, merge and discover skills.

Works on the log (rated turns and their current skill weights), never on stored evidence, so every
decision is recomputed from the source of truth and every re-tag is reproducible:

* **split** a skill when, after clustering its turns' texts into two halves (core/clustering.py),
  some agent's success rates in the halves have non-overlapping credible intervals, with at least
  `min_split` rated turns of that agent on each side. The interval width is corrected for the
  number of (skill, agent) pairs tested in the round (Bonferroni), so a big handbook does not
  split by chance. The parent stays (it keeps turns that fit neither child); its history moves
  to the nearest child by similarity to the children's centroids.
* **merge** two sibling skills of a mode when no agent's rates on them differ credibly *and*
  at least two agents have enough data on both to say that they are equal within `merge_margin`
  (an equivalence test), so that two empty skills are never merged just for being empty. The
  evidence is summed (the history of one is re-tagged to the other), never averaged.
* **discover** a skill from a coherent cluster of down-rated turns that no skill explains (turns
  whose weight sits mostly on the fallback skill), named offline from the cluster's distinctive
  terms, or by a `SkillNamer` the caller supplies (for example one backed by an LLM call).

The taxonomy links that re-tagging needs are kept in skill provenance, so later relearns map old
turns onto the current skills the same way: `merged_from` (removed ids now folded into a skill),
`split_into` (a parent's children, each with a `signature` centroid), and `discovered_from` with
`min_similarity` (which fallback turns a discovered skill takes over).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Mapping, Protocol, Sequence

from skillchat.core import clustering
from skillchat.core.handbook import Handbook, from_dict, to_dict
from skillchat.core.learning import RatedTurn
from skillchat.core.changes import Change
from skillchat.core.rated_log import RatedLog, Reporter, decay

FAMILY_ALPHA = 0.01  # family-wise false-split rate per round, spread over the tests made
MERGE_MARGIN = 0.12  # rates "equal" when their 90% interval of difference lies within +-margin
MIN_MERGE_AGENTS = 2  # agents with enough data on both skills before a merge may fire
SPLIT_SAMPLE = 300  # texts clustered to find a skill's two halves (then every turn is assigned)
DISCOVER_SAMPLE = 1000  # down-rated unexplained texts clustered to discover skills
SIGNATURE_TERMS = 40
DISCOVER_MIN_COHERENCE = 0.2  # mean cosine of a discovered cluster's members to its centroid
MAX_DISCOVER_PER_ROUND = 3
_SLUG_RE = re.compile(r"[^a-z0-9_]+")
_Z90 = NormalDist().inv_cdf(0.95)


# --- naming ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SkillName:
    slug: str  # last part of the id: [a-z0-9_]+
    name: str
    description: str
    mode: str | None = None  # a mode of the handbook the skill belongs to; None: the fallback's


class SkillNamer(Protocol):
    """Names a discovered skill from its cluster. `texts` are representative user messages."""

    def name(self, texts: Sequence[str], top_terms: Sequence[str], modes: Sequence[str]) -> SkillName: ...


class TermNamer:
    """Offline naming from the cluster's most distinctive terms (stems)."""

    def name(self, texts: Sequence[str], top_terms: Sequence[str], modes: Sequence[str]) -> SkillName:
        words = [t for t in top_terms if t][:3] or ["topic"]
        slug = _slug("_".join(words[:2]))
        return SkillName(
            slug=slug,
            name=" / ".join(words).capitalize(),
            description=f"Discovered from your rated turns about: {', '.join(top_terms[:6]) or 'one topic'}.",
        )


def _slug(s: str) -> str:
    s = _SLUG_RE.sub("_", s.lower()).strip("_")
    return s[:40] or "topic"


# --- text similarity shared by evolution and re-tagging ------------------------------------------


class _Texts:
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

    def cluster(self, texts: Sequence[str], k: int, seed: int, tries: int = 3, max_iter: int = 15) -> "clustering.Clustering":
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


def _unit(sig: Mapping[str, float]) -> dict[str, float]:
    return clustering.normalize({t: float(w) for t, w in sig.items() if w > 0})


# --- re-tagging the log onto the current taxonomy -------------------------------------------------


class Retagger:
    """Maps logged skill weights onto a handbook's skills, following its provenance links."""

    def __init__(self, hb: Handbook, texts: _Texts | None = None) -> None:
        self.hb = hb
        self.texts = texts or _Texts()
        self.alias: dict[str, str] = {}
        self.children: dict[str, list[tuple[str, dict[str, float]]]] = {}
        self.discovered: list[tuple[str, dict[str, float], float]] = []
        self.fallback = hb.settings.fallback_skill
        for s in hb.skills.values():
            prov = s.provenance or {}
            for old in prov.get("merged_from", ()) or ():
                if isinstance(old, str) and old not in hb.skills:
                    self.alias[old] = s.id
            into = [c for c in (prov.get("split_into", ()) or ()) if c in hb.skills and hb.skills[c].signature]
            if into:
                self.children[s.id] = [(c, _unit(hb.skills[c].signature or {})) for c in into]
            src = prov.get("discovered_from")
            if isinstance(src, str) and s.signature:
                self.discovered.append((s.id, _unit(s.signature), float(prov.get("min_similarity", 0.2))))
        self._inferrer: Any = None

    def needs(self, weights: Mapping[str, float]) -> bool:
        skills = self.hb.skills
        for s in weights:
            if s not in skills or s in self.children:
                return True
        return bool(self.discovered) and self.fallback in weights

    def __call__(self, turn: RatedTurn, weights: Mapping[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        unknown = 0.0
        for s, x in weights.items():
            if x <= 0:
                continue
            s = self._resolve(s)
            if s is None:
                unknown += x
            else:
                out[s] = out.get(s, 0.0) + x
        if not out and unknown > 0 and turn.text:
            out = self._infer(turn.text)
        if not out:
            return out
        out = self._split(turn.text, out)
        if self.discovered and out.get(self.fallback, 0.0) >= 0.5 * sum(out.values()):
            # The same rule as at discovery: only turns that mostly fell to the fallback skill.
            out = self._discover(turn.text, out)
            out = self._split(turn.text, out)
        return out

    def _resolve(self, s: str) -> str | None:
        seen = 0
        while s not in self.hb.skills:
            s2 = self.alias.get(s)
            if s2 is None or seen > 32:
                return None
            s, seen = s2, seen + 1
        return s

    def _split(self, text: str, w: dict[str, float]) -> dict[str, float]:
        for _ in range(8):  # children may have been split in turn
            parents = [s for s in w if s in self.children]
            if not parents:
                return w
            q = self.texts.vec(text)
            moved = False
            for p in parents:
                child = nearest_child(q, self.children[p])
                if child is not None:
                    x = w.pop(p)
                    w[child] = w.get(child, 0.0) + x
                    moved = True
            if not moved:
                return w
        return w

    def _discover(self, text: str, w: dict[str, float]) -> dict[str, float]:
        q = self.texts.vec(text)
        if not q:
            return w
        best, best_sim = None, 0.0
        for sid, sig, thr in self.discovered:
            sim = clustering.dot(q, sig)
            if sim >= thr and sim > best_sim:
                best, best_sim = sid, sim
        if best is not None:
            x = w.pop(self.fallback)
            w[best] = w.get(best, 0.0) + x
        return w

    def _infer(self, text: str) -> dict[str, float]:
        if self._inferrer is None:
            from skillchat.core.inference import KeywordInferrer

            self._inferrer = KeywordInferrer(self.hb)
        from skillchat.core.ports import Message

        return dict(self._inferrer.infer([Message("user", text)]).weights())


def nearest_child(q: Mapping[str, float], children: Sequence[tuple[str, Mapping[str, float]]]) -> str | None:
    """The child whose centroid is most similar to the text; None when it resembles none of them."""
    best, best_sim = None, 0.0
    for cid, sig in children:
        sim = clustering.dot(q, sig)
        if sim > best_sim:
            best, best_sim = cid, sim
    return best


# --- statistics ----------------------------------------------------------------------------------


def _cells(hb: Handbook, log: RatedLog, half_life: float | None) -> dict[str, dict[str, list[float]]]:
    """skill -> agent -> [successes, failures], from the current weights of the log."""
    out: dict[str, dict[str, list[float]]] = {}
    for t, w in zip(log.turns, log.weights):
        if t.agent_id not in hb.agents:
            continue
        tot = sum(x for s, x in w.items() if x > 0 and s in hb.skills)
        if tot <= 0:
            continue
        d = decay(t.age_days, half_life)
        y = min(max(t.score, 0.0), 1.0)
        for s, x in w.items():
            if x > 0 and s in hb.skills:
                sh = d * x / tot
                c = out.setdefault(s, {}).setdefault(t.agent_id, [0.0, 0.0])
                c[0] += sh * y
                c[1] += sh * (1.0 - y)
    return out


def beta_interval(successes: float, failures: float, z: float) -> tuple[float, float, float]:
    """Mean and a normal-approximation credible interval of Beta(1 + s, 1 + f)."""
    a, b = 1.0 + successes, 1.0 + failures
    m = a / (a + b)
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))
    return m, m - z * sd, m + z * sd


def _beta_sd(successes: float, failures: float) -> float:
    a, b = 1.0 + successes, 1.0 + failures
    return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))


def interval_z(tests: int, alpha: float = FAMILY_ALPHA) -> float:
    """Per-interval z such that 'two intervals do not overlap' has family-wise rate ~alpha.

    Non-overlap of two intervals of equal width means |difference| > z * sqrt(2) * sd(difference),
    so the test's z for the difference is divided by sqrt(2); at least the usual 90% interval.
    """
    tests = max(1, tests)
    zd = NormalDist().inv_cdf(1.0 - alpha / (2.0 * tests))
    return max(_Z90, zd / math.sqrt(2.0))


# --- the driver ----------------------------------------------------------------------------------


def evolve(
    hb: Handbook,
    log: RatedLog,
    *,
    min_split: int,
    seed: int = 0,
    namer: SkillNamer | None = None,
    report: Reporter,
    max_rounds: int = 3,
    half_life_days: float | None = None,
    merge_margin: float = MERGE_MARGIN,
) -> tuple[Handbook, list[Change]]:
    """Rounds of merge -> split -> discover until nothing changes; returns the new handbook."""
    changes: list[Change] = []
    texts = _Texts()
    namer = namer or TermNamer()
    tried: dict[str, tuple[int, ...]] = {}  # skills tested and left alone, by their member turns
    for rnd in range(max_rounds):
        report("evolve", rnd, max_rounds)
        round_changes: list[Change] = []
        stats = _cells(hb, log, half_life_days)
        hb, ch = _merges(hb, log, stats, min_split=min_split, margin=merge_margin)
        round_changes += ch
        if ch:
            stats = _cells(hb, log, half_life_days)
        report("evolve", rnd, max_rounds)
        hb, ch = _splits(
            hb, log, stats, texts, min_split=min_split, seed=seed, half_life=half_life_days, report=report, tried=tried
        )
        round_changes += ch
        report("evolve", rnd, max_rounds)
        hb, ch = _discoveries(hb, log, texts, min_size=min_split, seed=seed + rnd, namer=namer, half_life=half_life_days)
        round_changes += ch
        changes += round_changes
        if not round_changes:
            break
    return hb, changes


# --- merge ---------------------------------------------------------------------------------------


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


def _merges(
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
            for s, x in w.items():
                t = alias.get(s, s)
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
        sd = math.hypot(_beta_sd(sa, fa), _beta_sd(sb, fb))
        if abs(diff) > _block_z(len(agents)) * sd:
            return None  # this agent tells them apart
        enough = na >= min_n and nb >= min_n and abs(diff) + _Z90 * sd <= margin
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
            k["signature"] = _round_sig(clustering.mean_vector([k["signature"], d["signature"]], max_terms=SIGNATURE_TERMS))
        prov = dict(k.get("provenance") or {})
        merged = list(prov.get("merged_from", [])) + [drop] + list((d.get("provenance") or {}).get("merged_from", []))
        prov["merged_from"] = _dedupe(merged)
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


def _round_sig(sig: Mapping[str, float]) -> dict[str, float]:
    return {t: round(w, 5) for t, w in sig.items() if round(w, 5) > 0}


# --- split ---------------------------------------------------------------------------------------


def _splits(
    hb: Handbook,
    log: RatedLog,
    stats: Mapping[str, Mapping[str, list[float]]],
    texts: _Texts,
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
    for i, (t, w) in enumerate(zip(log.turns, log.weights)):
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
    hb: Handbook, log: RatedLog, sid: str, idx: list[int], texts: _Texts, *, z: float, min_split: int, seed: int,
    half_life: float | None, tests: int,
) -> _SplitProposal | None:
    sample = _spread(idx, SPLIT_SAMPLE, seed)
    cl = texts.cluster([log.turns[i].text for i in sample], 2, seed)
    if cl.k < 2 or min(cl.sizes) < min_split // 2:
        return None
    cents = [_round_sig(dict(clustering._top(c, SIGNATURE_TERMS))) for c in cl.centroids]  # noqa: SLF001
    units = [_unit(c) for c in cents]
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
    per_agent = {}
    best = None
    for ag in sorted(set(side_stats[0]) | set(side_stats[1])):
        s0, f0 = side_stats[0].get(ag, (0.0, 0.0))
        s1, f1 = side_stats[1].get(ag, (0.0, 0.0))
        m0, lo0, hi0 = beta_interval(s0, f0, z)
        m1, lo1, hi1 = beta_interval(s1, f1, z)
        gap = max(lo0 - hi1, lo1 - hi0)
        ok = s0 + f0 >= min_split and s1 + f1 >= min_split
        per_agent[ag] = {"rates": [m0, m1], "n": [s0 + f0, s1 + f1], "intervals": [[lo0, hi0], [lo1, hi1]], "separated": ok and gap > 0}
        if ok and gap > 0 and (best is None or gap > best[0]):
            best = (gap, ag)
    if best is None:
        return None
    ag = best[1]
    info = per_agent[ag]
    reps = [[_clip_example(log.turns[sample[i]].text) for i in cl.representatives(j, 3)] for j in range(2)]
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


def _spread(idx: list[int], n: int, seed: int = 0) -> list[int]:
    """At most n items, a seeded random sample in log order (a fixed stride could alias with a pattern)."""
    if len(idx) <= n:
        return idx
    import random

    return sorted(random.Random(seed).sample(idx, n))


def _clip_example(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _unique_id(base: str, taken: set[str]) -> str:
    sid, k = base, 2
    while sid in taken:
        sid, k = f"{base}_{k}", k + 1
    taken.add(sid)
    return sid


def _apply_splits(hb: Handbook, log: RatedLog, proposals: Sequence[_SplitProposal], texts: _Texts) -> tuple[Handbook, list[Change]]:
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
            slug = _slug("_".join(p.top_terms[k][:2])) if p.top_terms[k] else f"part{k + 1}"
            cid = _unique_id(f"{root['id']}.{slug}", taken)
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
    children = {p.skill: [(ids[k], _unit(p.centroids[k])) for k in range(2)] for p, ids in made}
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


# --- discovery -----------------------------------------------------------------------------------

JOIN_SIMILARITY = 0.5  # clusters whose centroids are this similar are one topic cut in two


def _join_similar(cl: "clustering.Clustering") -> "clustering.Clustering":
    """Re-join clusters that k-means cut out of one topic (k is only a guess from the sample size)."""
    k = cl.k
    if k < 2:
        return cl
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
        terms = clustering._distinctive(c, bg, 8)  # noqa: SLF001
        if len(terms) < 3:  # one cluster left: nothing to contrast it with, name it by its heaviest terms
            terms = [t for t, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:8]]
        top.append(terms)
    return clustering.Clustering(assign, cents, top, sims, cl.idf, cl.iterations, vecs)



def _discoveries(
    hb: Handbook, log: RatedLog, texts: _Texts, *, min_size: int, seed: int, namer: SkillNamer, half_life: float | None
) -> tuple[Handbook, list[Change]]:
    fb = hb.settings.fallback_skill
    unexplained: list[int] = []
    for i, (t, w) in enumerate(zip(log.turns, log.weights)):
        if not t.text or t.agent_id not in hb.agents:
            continue
        tot = sum(x for x in w.values() if x > 0)
        if tot > 0 and w.get(fb, 0.0) >= 0.5 * tot:
            unexplained.append(i)
    down = [i for i in unexplained if log.turns[i].score < 0.5]
    if len(down) < min_size:
        return hb, []
    sample = _spread(down, DISCOVER_SAMPLE, seed)
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
        cent = _round_sig(dict(clustering._top(cl.centroids[j], SIGNATURE_TERMS)))  # noqa: SLF001
        unit = _unit(cent)
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
        sid = _unique_id(f"{mode}.{_slug(nm.slug)}", taken)
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
                "examples": [_clip_example(r) for r in reps[:3]],
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
        created.append((sid, _unit(cent), thr, evidence, rationale))
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
