"""Relearn, the algorithm: rebuild a handbook's evidence from the log of rated turns, then let the skills evolve.

Three modules share the name: this one is the pure computation (rated turns in, handbook out);
skillchat/relearning.py runs it for the app and the CLI (reads the store, evaluates, saves and
activates versions); skillchat/commands/relearn.py is `skillchat relearn`'s arguments and output.

The log of turns and ratings is the source of truth. Nothing here mutates evidence in place:
every relearn starts from the base handbook's *structure* (modes, skills, agents, priors) and
recomputes competence and cost statistics from scratch, so a rating is never counted twice and
online updates made since the last version are simply subsumed. The result carries the id of the
newest rating it folded in (`evidence_through`); the service applies later ratings online on top.

Steps, each reported through `progress(stage, done, total)` and interruptible through `cancel`
(anything with `is_set()`, e.g. a `threading.Event`; a cancelled relearn raises RelearnCancelled
and returns nothing, so nothing can be written):

1. read: keep the newest rating of each turn (a changed rating replaces the old one);
2. map: translate the logged skill weights onto the base taxonomy (merged skills -> survivor,
   split parents -> nearest child, fallback turns -> a discovered skill that explains them);
3. evolve (optional): split / merge / discover skills from the evidence (core/evolution/),
   re-tagging the affected history, until nothing changes (at most a few rounds);
4. count: alpha += w*y, beta += w*(1-y) per active skill, times the decay weight
   0.5 ** (age_days / half_life_days) when a half-life is given;
5. costs: running means of tokens and USD per (agent, mode) from the logged turns.

This module is pure: standard library only, no I/O.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from skillchat.core import evolution
from skillchat.core.changes import Change, plain
from skillchat.core.handbook import CostStat, Handbook
from skillchat.core.learning import RatedTurn
from skillchat.core.rated_log import CHECK_EVERY, Cancel, Progress, RatedLog, RelearnCancelled, Reporter, decay

__all__ = [  # Change, Cancel, Progress and RelearnCancelled belong to relearn's interface
    "DEFAULT_MIN_SPLIT", "Cancel", "Change", "Progress", "RelearnCancelled", "RelearnCounts", "RelearnResult",
    "TurnCost", "handbook_diff", "relearn", "same_learning",
]

DEFAULT_MIN_SPLIT = 12  # rated turns per side (and per agent) before a split may fire


@dataclass(slots=True)
class RelearnCounts:
    turns: int = 0  # rated turns read from the log
    used: int = 0  # turns whose rating entered the evidence
    replaced: int = 0  # older ratings of a re-rated turn, superseded by the newer one
    unknown_agent: int = 0  # the agent is not in this handbook (removed, or added by config)
    no_skill: int = 0  # no skill of this handbook could be attributed, even after re-tagging
    retagged: int = 0  # turns whose logged skills were mapped onto the new taxonomy
    pinned: int = 0  # turns on a model the user pinned (counted, but not policy decisions)
    observations: float = 0.0  # total evidence weight after decay (= used without decay)
    cost_turns: int = 0  # turns whose tokens / USD entered the cost statistics
    costs_kept: bool = False  # no logged usage at all: the base handbook's cost statistics were kept
    evidence_through: int | None = None  # the newest rating id folded in
    half_life_days: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: plain(getattr(self, k)) for k in self.__slots__}


@dataclass(slots=True)
class RelearnResult:
    handbook: Handbook
    changes: list[Change]
    counts: RelearnCounts


@dataclass(frozen=True, slots=True)
class TurnCost:
    """Usage of one logged turn, rated or not: what cost statistics are recomputed from."""

    agent_id: str
    mode: str
    prompt_tokens: float
    completion_tokens: float
    cost_usd: float
    age_days: float = 0.0


# --- the entry point ----------------------------------------------------------------------------


def relearn(
    base: Handbook,
    turns: Sequence[RatedTurn],
    *,
    half_life_days: float | None = None,
    evolve: bool = True,
    min_split: int = DEFAULT_MIN_SPLIT,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    costs: Iterable[TurnCost] | None = None,
    namer: Any = None,
    max_rounds: int = 3,
    version: int | None = None,
    created: str = "",
) -> RelearnResult:
    """A new handbook (version base.version + 1) whose evidence is recomputed from `turns`.

    `costs`: usage of all logged turns (rated or not); when omitted, the usage carried by the
    rated turns is used, and when neither has any, the base handbook's cost statistics are kept.
    `namer`: names discovered skills (see core/evolution.SkillNamer); offline naming by default.
    `version` / `created`: of the new handbook (default base.version + 1, the base's timestamp);
    the caller that saves it picks the next free version number and the time.
    """
    if half_life_days is not None and not (half_life_days > 0 and math.isfinite(half_life_days)):
        raise ValueError(f"half_life_days must be a positive number, got {half_life_days!r}")
    report = Reporter(progress, cancel)
    counts = RelearnCounts(turns=len(turns), half_life_days=half_life_days)

    latest = _latest_ratings(turns, counts, report)
    new_version = base.version + 1 if version is None else version
    hb = base.structure_copy(version=new_version, parent_version=base.version, created=created or base.created)
    hb.history = list(base.history)

    log = RatedLog(latest)
    log.map(evolution.Retagger(hb), report)
    changes: list[Change] = []
    if evolve and latest:
        hb, changes = evolution.evolve(
            hb, log, min_split=min_split, seed=seed, namer=namer, report=report, max_rounds=max_rounds,
            half_life_days=half_life_days,
        )
    _count(hb, log, counts, half_life_days, report)
    _recompute_costs(hb, base, log, costs, counts, half_life_days)
    counts.retagged = log.retagged_count()
    hb.evidence_through = counts.evidence_through
    hb.history.append(
        {
            "kind": "relearn",
            "version": hb.version,
            "parent_version": base.version,
            "created": hb.created,
            "evidence_through": counts.evidence_through,
            "counts": counts.to_dict(),
            "changes": [c.to_dict() for c in changes],
            "diff": handbook_diff(base, hb, limit=10),
        }
    )
    report.done()
    return RelearnResult(hb, changes, counts)


# --- plumbing -----------------------------------------------------------------------------------


def _latest_ratings(turns: Sequence[RatedTurn], counts: RelearnCounts, report: Reporter) -> list[RatedTurn]:
    """The newest rating of every turn, in rating order (so sums are reproducible)."""
    best: dict[str, RatedTurn] = {}
    through: int | None = None
    total = len(turns)
    report("read", 0, total)
    for i, t in enumerate(turns):
        if i % CHECK_EVERY == CHECK_EVERY - 1:
            report("read", i, total)
        old = best.get(t.turn_id)
        if old is None or (t.rating_id, t.turn_id) >= (old.rating_id, old.turn_id):
            best[t.turn_id] = t
        if through is None or t.rating_id > through:
            through = t.rating_id
    counts.replaced = total - len(best)
    counts.evidence_through = through
    return sorted(best.values(), key=lambda t: (t.rating_id, t.turn_id))


def _count(hb: Handbook, log: RatedLog, counts: RelearnCounts, half_life_days: float | None, report: Reporter) -> None:
    cells: dict[tuple[str, str], list[float]] = {}
    skills, agents = hb.skills, hb.agents
    total = len(log.turns)
    obs = 0.0
    for i, t in enumerate(log.turns):
        if i % CHECK_EVERY == CHECK_EVERY - 1:
            report("count", i, total)
        if t.agent_id not in agents:
            counts.unknown_agent += 1
            continue
        w = log.weights[i]
        wsum = 0.0
        for s, x in w.items():
            if x > 0 and s in skills:
                wsum += x
        if wsum <= 0:
            counts.no_skill += 1
            continue
        d = decay(t.age_days, half_life_days)
        y = min(max(float(t.score), 0.0), 1.0)
        for s, x in w.items():
            if x > 0 and s in skills:
                share = d * x / wsum
                cell = cells.get((t.agent_id, s))
                if cell is None:
                    cells[(t.agent_id, s)] = [share * y, share * (1.0 - y)]
                else:
                    cell[0] += share * y
                    cell[1] += share * (1.0 - y)
        obs += d
        counts.used += 1
        if t.policy == "pinned":
            counts.pinned += 1
    for (a, s), (succ, fail) in cells.items():
        hb.evidence.add(a, s, succ, fail)
    counts.observations = obs


def _recompute_costs(
    hb: Handbook,
    base: Handbook,
    log: RatedLog,
    costs: Iterable[TurnCost] | None,
    counts: RelearnCounts,
    half_life_days: float | None,
) -> None:
    if costs is None:
        costs = [
            TurnCost(t.agent_id, t.mode, float(t.prompt_tokens or 0), float(t.completion_tokens or 0), float(t.cost_usd),
                     t.age_days)
            for t in log.turns
            if t.cost_usd is not None
        ]
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    n = 0
    for c in costs:
        if c.agent_id not in hb.agents:
            continue
        mode = c.mode if c.mode in hb.modes else hb.fallback().mode
        d = decay(c.age_days, half_life_days)
        acc = sums[(c.agent_id, mode)]
        acc[0] += d
        acc[1] += d * c.prompt_tokens
        acc[2] += d * c.completion_tokens
        acc[3] += d * c.cost_usd
        n += 1
    counts.cost_turns = n
    if n == 0:
        hb.costs = {k: CostStat(v.n, v.prompt_tokens, v.completion_tokens, v.usd) for k, v in base.costs.items()}
        counts.costs_kept = bool(base.costs)
        return
    hb.costs = {
        key: CostStat(n=w, prompt_tokens=p / w, completion_tokens=c / w, usd=u / w)
        for key, (w, p, c, u) in sorted(sums.items())
        if w > 0
    }


# --- comparing two handbooks --------------------------------------------------------------------


def _obs(hb: Handbook) -> dict[str, float]:
    out: dict[str, float] = {}
    for _, s, succ, fail in hb.evidence.cells():
        out[s] = out.get(s, 0.0) + succ + fail
    return out


def handbook_diff(old: Handbook, new: Handbook, *, limit: int | None = None) -> dict[str, Any]:
    """What changed between two handbooks: skills, agents, evidence per skill and cell, costs.

    `limit` keeps only the largest evidence moves (for the compact record in metadata.history).
    """
    from skillchat.core.competence import posterior

    added = [s for s in new.skills if s not in old.skills]
    removed = [s for s in old.skills if s not in new.skills]
    changed = [
        s for s in new.skills
        if s in old.skills and _skill_key(old.skills[s]) != _skill_key(new.skills[s])
    ]
    o_obs, n_obs = _obs(old), _obs(new)
    per_skill: list[dict[str, Any]] = []
    for s in sorted(set(o_obs) | set(n_obs)):
        a, b = o_obs.get(s, 0.0), n_obs.get(s, 0.0)
        if abs(a - b) > 1e-9:
            per_skill.append({"skill": s, "before": round(a, 3), "after": round(b, 3)})
    per_skill.sort(key=lambda d: (-abs(d["after"] - d["before"]), d["skill"]))
    moves: list[dict[str, Any]] = []
    for aid in new.agents:
        if aid not in old.agents:
            continue
        for sid in new.skills:
            if sid not in old.skills:
                continue
            so, fo = old.evidence.skill(aid, sid)
            sn, fn = new.evidence.skill(aid, sid)
            if abs(so - sn) + abs(fo - fn) < 1e-9:
                continue
            a, b = posterior(old, aid, sid).mean, posterior(new, aid, sid).mean
            moves.append({"agent": aid, "skill": sid, "before": round(a, 4), "after": round(b, 4),
                          "observations_before": round(so + fo, 3), "observations_after": round(sn + fn, 3)})
    moves.sort(key=lambda d: (-abs(d["after"] - d["before"]), d["agent"], d["skill"]))
    costs = []
    for key in sorted(set(old.costs) | set(new.costs)):
        ca, cb = old.costs.get(key), new.costs.get(key)
        ua, ub = (ca.usd if ca else None), (cb.usd if cb else None)
        if ua != ub:
            costs.append({"agent": key[0], "mode": key[1], "usd_before": ua, "usd_after": ub,
                          "n_before": round(ca.n, 3) if ca else 0, "n_after": round(cb.n, 3) if cb else 0})
    if limit is not None:
        per_skill, moves, costs = per_skill[:limit], moves[:limit], costs[:limit]
    return {
        "from": old.ref,
        "to": new.ref,
        "skills_added": added,
        "skills_removed": removed,
        "skills_changed": changed,
        "agents_added": [a for a in new.agents if a not in old.agents],
        "agents_removed": [a for a in old.agents if a not in new.agents],
        "observations_before": round(old.evidence.total(), 3),
        "observations_after": round(new.evidence.total(), 3),
        "evidence_through_before": old.evidence_through,
        "evidence_through_after": new.evidence_through,
        "evidence_by_skill": per_skill,
        "competence_moves": moves,
        "costs": costs,
    }


def _skill_key(s: Any) -> tuple[Any, ...]:
    return (s.mode, s.name, s.description, tuple(s.indicators), tuple(s.examples), s.parent,
            tuple(sorted((s.signature or {}).items())))


def same_learning(a: Handbook, b: Handbook) -> bool:
    """Same skills, evidence, costs and watermark: a relearn that would add nothing."""
    from skillchat.core.handbook import to_dict

    da, db = to_dict(a), to_dict(b)
    return (
        da["skills"] == db["skills"]
        and da["competence"] == db["competence"]
        and da["costs"] == db["costs"]
        and a.evidence_through == b.evidence_through
    )
