"""A fresh Skill Handbook for a replay set: its models as agents, skills learned or shipped.

* learned: a two-level hierarchy discovered from the TRAIN texts only (core/clustering.py):
  modes = coarse clusters, skills = fine clusters inside them. Every skill gets a learned
  `signature` (its members' mean tf-idf vector, which KeywordInferrer matches texts against),
  a name from its distinctive terms, and as examples the train texts nearest to its centre.
* handbook: the skills of the shipped general handbook (hand-written indicators and examples).
* both: the two side by side.
* labels: one mode and one skill per category label of the train split, and each query read as
  its label. A diagnostic, not a router a user could have: real chat turns carry no label. Next to
  the learned skills it splits the gap to the per-category reference into what reading the task
  costs and what learning from one outcome per query costs.

Every agent gets the same uninformative prior and no price: the bench knows nothing about the
models, and their cost is learned from the calls the router makes (Router.estimate_cost falls back
to the observed mean cost when there is no price).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skillchat.core.clustering import Hierarchy, cluster_hierarchy
from skillchat.core.evolution.naming import unique_id
from skillchat.core.handbook import Handbook, from_dict
from skillchat.core.text import stem, words

SKILL_SOURCES = ("learned", "handbook", "both", "labels")
FALLBACK_MODE = "other"
FALLBACK_SKILL = "other.general"
# The bench's agents never hit a context limit: replay sets do not say what the models accept.
CONTEXT_WINDOW = 10**9
_EXAMPLE_CHARS = 400


@dataclass(frozen=True)
class SkillOptions:
    n_modes: int | None = None  # None: chosen from the number of train texts
    skills_per_mode: int | None = None  # None: chosen from each mode's size
    texts_per_skill: int = 60
    max_skills_per_mode: int = 8
    prior_mean: float = 0.5
    # Handbook settings for the bench's handbooks; None (the default): the app's (core Settings),
    # so the bench measures the router users get. Set only to explore alternatives.
    prior_strength: float | None = None
    mode_strength: float | None = None
    skill_strength: float | None = None
    exploration_floor: float | None = None
    quality_floor: float | None = None
    challenge_z: float | None = None


def default_modes(n_texts: int) -> int:
    """About sqrt(n / 100) modes, between 2 and 8: a handful of coarse task types."""
    return max(2, min(8, round((n_texts / 100) ** 0.5)))


def agent_id(model: str) -> str:
    """A valid handbook agent id for a model name (most names are valid as they are)."""
    aid = re.sub(r"[^A-Za-z0-9_.:/@+-]", "-", model)
    return aid if aid and aid[0].isalnum() else "m" + aid


def agent_ids(models: Sequence[str]) -> dict[str, str]:
    """model -> agent id, unique."""
    used: set[str] = set()
    return {m: unique_id(agent_id(m), used, sep="-") for m in models}


def _slug(parts: Sequence[str], limit: int = 2) -> str:
    s = "-".join(re.sub(r"[^a-z0-9]+", "", p.lower()) for p in parts[:limit])
    s = re.sub(r"-+", "-", s).strip("-")
    return s or "x"


def surface_forms(texts: Sequence[str]) -> dict[str, str]:
    """stem -> its most frequent word in the texts, to name skills with real words."""
    counts: dict[str, Counter[str]] = {}
    for t in texts:
        for w in words(t):
            w = w.strip("'")
            counts.setdefault(stem(w), Counter())[w] += 1
    return {s: max(c.items(), key=lambda kv: (kv[1], kv[0]))[0] for s, c in counts.items()}


def _clip(text: str) -> str:
    text = text.strip()
    # Few-shot prompts end with the actual question, so keep the tail.
    return text if len(text) <= _EXAMPLE_CHARS else "…" + text[-_EXAMPLE_CHARS:]


def _agents(models: Sequence[str], opts: SkillOptions) -> list[dict[str, Any]]:
    ids = agent_ids(models)
    return [
        {
            "id": ids[m],
            "model": m,
            "name": m,
            "context_window": CONTEXT_WINDOW,
            "price": None,
            "prior": {"mean": opts.prior_mean, "source": "uninformative: the bench gives every model the same prior"},
        }
        for m in models
    ]


def _settings(opts: SkillOptions, fallback: str) -> dict[str, Any]:
    out: dict[str, Any] = {"fallback_skill": fallback}
    for key in ("prior_strength", "mode_strength", "skill_strength", "exploration_floor", "quality_floor", "challenge_z"):
        value = getattr(opts, key)
        if value is not None:
            out[key] = value
    return out


def label_skills(categories: Sequence[str]) -> dict[str, str]:
    """category label -> the id of its skill (mode id + ".task"), unique and valid as handbook ids."""
    used: set[str] = {FALLBACK_MODE}
    return {
        c: unique_id("c-" + (re.sub(r"[^a-z0-9]+", "-", c.lower()).strip("-") or "x"), used, sep="-") + ".task"
        for c in sorted(set(categories))
    }


def _label_parts(labels: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    modes: list[dict[str, Any]] = []
    skills: list[dict[str, Any]] = []
    for c, sid in labels.items():
        mid = sid.rsplit(".", 1)[0]
        modes.append({"id": mid, "name": c, "description": f"The category label {c!r}."})
        skills.append({"id": sid, "mode": mid, "name": c, "description": f"Queries labelled {c!r}.", "parent": None})
    return modes, skills


def learned_parts(
    texts: Sequence[str], seed: int, opts: SkillOptions, ids: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Hierarchy]:
    """Modes and skills (handbook JSON) discovered from texts; `ids` are the texts' ids for provenance."""
    n_modes = opts.n_modes or default_modes(len(texts))
    if opts.skills_per_mode is not None:
        per_mode: int | list[int] | None = opts.skills_per_mode
    else:
        per_mode = None
    h = cluster_hierarchy(
        texts,
        n_modes,
        per_mode,
        seed,
        texts_per_skill=opts.texts_per_skill,
        max_skills_per_mode=opts.max_skills_per_mode,
    )
    words_of = surface_forms(texts)

    def nice(terms: Sequence[str]) -> list[str]:
        return [words_of.get(t, t) for t in terms]

    modes: list[dict[str, Any]] = []
    skills: list[dict[str, Any]] = []
    used_modes: set[str] = set()
    for m in range(h.modes.k):
        top = nice(h.modes.top_terms[m])
        mid = f"t{m + 1}-{_slug(top)}"
        while mid in used_modes:
            mid += "x"
        used_modes.add(mid)
        size = len(h.mode_members[m])
        modes.append(
            {
                "id": mid,
                "name": f"Task type {m + 1}: " + ", ".join(top[:3]),
                "description": f"Discovered from {size} texts; distinctive terms: {', '.join(top[:8])}.",
            }
        )
        sub = h.skills[m]
        used: set[str] = set()
        for s in range(sub.k):
            # A mode with a single skill has nothing distinctive inside it: the skill is the mode.
            st = nice(sub.top_terms[s]) or top
            sid = f"{mid}.s{s + 1}-{_slug(st)}"
            while sid in used:
                sid += "x"
            used.add(sid)
            members = h.skill_members(m, s)
            reps = h.skill_representatives(m, s, 3)
            skills.append(
                {
                    "id": sid,
                    "mode": mid,
                    "name": ", ".join(st[:3]) or f"skill {s + 1}",
                    "description": f"{len(members)} train texts; distinctive terms: {', '.join(st[:8])}.",
                    "indicators": [],
                    "examples": [_clip(texts[i]) for i in reps],
                    "parent": None,
                    "signature": {t: round(w, 6) for t, w in h.signatures[m][s].items()},
                    "provenance": {
                        "discovered_by": "tf-idf spherical k-means (skillchat bench)",
                        "seed": seed,
                        "size": len(members),
                        "examples": [ids[i] for i in reps] if ids else [],
                    },
                }
            )
    return modes, skills, h


def build_handbook(
    name: str,
    models: Sequence[str],
    train_texts: Sequence[str],
    *,
    source: str = "learned",
    seed: int = 0,
    opts: SkillOptions = SkillOptions(),
    train_ids: Sequence[str] = (),
    shipped: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> tuple[Handbook, Hierarchy | None]:
    """A fresh handbook for a replay set. `shipped`: the general handbook's JSON (for handbook/both);
    `labels`: category -> skill id (for labels, see label_skills)."""
    if source not in SKILL_SOURCES:
        raise ValueError(f"unknown skill source {source!r}")
    modes: list[dict[str, Any]] = []
    skills: list[dict[str, Any]] = []
    hierarchy = None
    fallback = FALLBACK_SKILL
    if source in ("handbook", "both"):
        if shipped is None:
            shipped = load_shipped()
        modes += [dict(m) for m in shipped["modes"]]
        skills += [dict(s) for s in shipped["skills"]]
        fallback = shipped.get("settings", {}).get("fallback_skill", "chat.general")
    if source in ("learned", "both"):
        lm, ls, hierarchy = learned_parts(train_texts, seed, opts, train_ids)
        taken = {m["id"] for m in modes}
        for m in lm:
            if m["id"] in taken:  # cannot happen with "t<N>-" ids, but never shadow a shipped mode
                raise ValueError(f"learned mode id {m['id']!r} clashes with a shipped one")
        modes += lm
        skills += ls
    if source == "labels":
        if not labels:
            raise ValueError("skill source 'labels' needs the train split's labels (see label_skills)")
        modes, skills = _label_parts(labels)
    if source in ("learned", "labels"):
        modes.append({"id": FALLBACK_MODE, "name": "Other", "description": "Texts that match no discovered skill."})
        skills.append(
            {"id": FALLBACK_SKILL, "mode": FALLBACK_MODE, "name": "General", "description": "No skill matched.", "parent": None}
        )
    doc = {
        "schema_version": 1,
        "metadata": {
            "name": re.sub(r"[^a-z0-9_-]+", "-", f"bench-{name}".lower()).strip("-") or "bench",
            "version": 1,
            "parent_version": None,
            "created": "",
            "description": f"Fresh handbook for the replay set {name!r} ({source} skills), built by skillchat bench.",
            "history": [],
        },
        "settings": _settings(opts, fallback),
        "modes": modes,
        "skills": skills,
        "agents": _agents(models, opts),
        "competence": {},
        "costs": {},
    }
    return from_dict(doc, source=f"bench handbook for {name}"), hierarchy


def load_shipped(name: str = "general") -> dict[str, Any]:
    from skillchat import paths

    path = paths.shipped_handbooks_dir() / f"{name}.json"
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data
