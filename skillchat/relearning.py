"""Relearn, the workflow: trace store -> core relearn -> off-policy check -> new version -> activate.

(core/relearn.py is the computation it runs; commands/relearn.py is the command line around it.)

Used by `skillchat relearn` and by `ChatService.relearn` / `.activate` (the app's /relearn).

* The base is the *file* of the active version (not the in-memory one with online updates: the
  log replaces those), plus any agent the config adds that the file lacks, so its ratings count.
* Nothing is written until the relearn and the evaluation are complete: a cancel (the `cancel`
  event, or Ctrl-C in the CLI) leaves the handbook dir and the config exactly as they were.
* Saving a new version must not activate it by itself: when the config names the handbook
  without a version ("general" = its newest), the config is first pinned to the version in use
  ("general@2"), atomically and keeping every other setting. Activation then points it at the
  new version; rollback points it back at the parent.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from skillchat import config as config_mod
from skillchat import handbooks
from skillchat.config import Config
from skillchat.core.evolution import SkillName, TermNamer, slugify
from skillchat.core.handbook import Handbook
from skillchat.core.learning import RatedTurn, apply_rating_changes
from skillchat.core.ope import Comparison, compare, signed
from skillchat.core.relearn import (
    DEFAULT_MIN_SPLIT,
    Change,
    RelearnCancelled,
    RelearnCounts,
    TurnCost,
    relearn,
    same_learning,
)
from skillchat.errors import HandbookError

Progress = Callable[[str, int, int], None]
NOT_WORSE_MARGIN = 0.01  # --auto: activate when satisfaction is not estimated lower than this
MIN_ESS = 30.0  # --auto: effective logged turns needed before a changed taxonomy can be judged


@dataclass
class RelearnOutcome:
    """What a relearn produced; the UI reads handbook, counts, changes, evaluation and summary."""

    handbook: Handbook  # the new version, as saved (no config overlay)
    base: Handbook  # the version it was derived from
    changes: list[Change]
    counts: RelearnCounts
    evaluation: Comparison | None = None
    path: Path | None = None  # where it was saved; None when nothing was written
    unchanged: bool = False  # nothing new since the base: no version was written
    summary: str = ""
    notes: list[str] = field(default_factory=list)
    pinned: str | None = None  # the config was pinned to this ref before the new version was saved

    @property
    def ope(self) -> Comparison | None:
        return self.evaluation

    @property
    def ref(self) -> str:
        return self.handbook.ref


# --- reading the log ---------------------------------------------------------------------------


def turn_costs(store: Any, handbook_name: str) -> list[TurnCost]:
    """Usage of every answered (or cancelled) turn routed with this handbook, rated or not."""
    return list(store.turn_costs(handbook_name))


def active_ref(cfg: Config, store: Any | None = None) -> str:
    return handbooks.active_ref(cfg.handbook, store)


def load_base(ref: str, cfg: Config) -> Handbook:
    """The file of a handbook version, plus agents only the config defines and the local model
    (their ratings count)."""
    from skillchat.providers.pool import with_config_agents

    base = handbooks.load(ref)
    overlay = with_config_agents(base.copy(), cfg)
    for aid, agent in overlay.agents.items():
        if aid not in base.agents:
            base.agents[aid] = agent
    return base


def online_handbook(base_ref: str, cfg: Config, store: Any, *, include_demo: bool = False) -> Handbook:
    """What the app routes with now: the file + config agents + ratings newer than its watermark
    (with `include_demo`, the demo's ratings too, as the app in demo mode)."""
    from skillchat.providers.pool import with_config_agents

    hb = with_config_agents(handbooks.load(base_ref), cfg)
    changes = store.catch_up(hb.name, hb.evidence_through, include_demo=include_demo)
    # Ratings of agents this handbook no longer has (a config agent removed since) are history only.
    apply_rating_changes(hb, (c for c in changes if c.agent_id in hb.agents))
    return hb


# --- the pipeline ------------------------------------------------------------------------------


def run(
    cfg: Config,
    store: Any,
    *,
    ref: str | None = None,
    current: Handbook | None = None,
    half_life_days: float | None = None,
    evolve: bool = True,
    min_split: int = DEFAULT_MIN_SPLIT,
    seed: int = 0,
    lam: float | None = None,
    policy: str = "thompson",
    evaluate: bool = True,
    save: bool = True,
    force: bool = False,
    namer: Any = None,
    prices: Any = None,
    progress: Progress | None = None,
    cancel: Any = None,
    ope_max_turns: int = 5000,
) -> RelearnOutcome:
    """Relearn the active handbook from the store, evaluate it against the current one, save it.

    `current`: the handbook routing right now (the service's, with online updates); built from
    the store when omitted. `save=False` is a dry run. Raises RelearnCancelled when cancelled,
    before anything is written.
    """
    if ref is None:
        ref = active_ref(cfg, store)
        if current is not None:
            try:  # the version the caller routes with, when it is a managed one (not a loose file)
                handbooks.resolve(current.ref)
                ref = current.ref
            except HandbookError:
                pass
    base = load_base(ref, cfg)
    turns: list[RatedTurn] = store.rated_turns(handbook_name=base.name)
    costs = turn_costs(store, base.name)
    version = max(handbooks.next_version(base.name), base.version + 1)
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    res = relearn(
        base, turns, half_life_days=half_life_days, evolve=evolve, min_split=min_split, seed=seed,
        progress=progress, cancel=cancel, costs=costs, namer=namer, version=version, created=created,
    )
    new = res.handbook
    outcome = RelearnOutcome(new, base, res.changes, res.counts)
    if same_learning(base, new) and not force:
        outcome.unchanged = True
        covered = (_no_ratings_yet(store, base.name) if not turns else
                   f"its evidence already covers every rating (through #{base.evidence_through})")
        outcome.summary = f"Nothing new since {base.ref}: same skills, and {covered}. No version was written."
        return outcome

    if evaluate:
        if current is None:
            current = online_handbook(ref, cfg, store)
        from skillchat.providers.pool import with_config_agents

        candidate = with_config_agents(new.copy(), cfg)
        outcome.evaluation = compare(
            current, candidate, turns, lam=cfg.lam if lam is None else lam, policy=policy, prices=prices,
            progress=progress, cancel=cancel, max_turns=ope_max_turns,
        )
    outcome.summary = summarize(outcome)
    if cancel is not None and cancel.is_set():
        raise RelearnCancelled("relearn cancelled")
    new.history[-1]["evaluation"] = _ope_record(outcome.evaluation)
    if save:
        outcome.pinned = pin_version(cfg, base)
        outcome.path = handbooks.save_version(new)
        try:
            store.add_handbook_event("relearn", new.name, new.version, {
                "ref": new.ref, "parent": base.ref, "counts": res.counts.to_dict(),
                "changes": [c.kind for c in res.changes],
            })
        except Exception as e:  # the version is saved; a log entry is not worth failing for
            outcome.notes.append(f"could not log the relearn event: {e}")
    return outcome


def _no_ratings_yet(store: Any, handbook_name: str) -> str:
    real, demo = store.rating_counts(handbook_name)
    if demo and not real:
        return (f"there are no rated turns yet (your {demo:,} rated demo turns count only in demo mode: "
                "`skillchat relearn --demo` shows what they would teach)")
    return "there are no rated turns yet"


def _ope_record(c: Comparison | None) -> dict[str, Any] | None:
    if c is None:
        return None
    d = c.to_dict()
    return json.loads(json.dumps(d, default=str).replace("NaN", "null").replace("Infinity", "null"))


# --- activation --------------------------------------------------------------------------------


def config_path(cfg: Config) -> Path:
    from skillchat import paths

    return cfg.path or paths.config_file()


def pin_version(cfg: Config, current: Handbook) -> str | None:
    """Before a newer version is saved: make the config name the version in use, if it names none."""
    name, at, _ = cfg.handbook.partition("@")
    if at or name != current.name or cfg.handbook.endswith(".json") or "/" in cfg.handbook:
        return None
    ref = f"{current.name}@{current.version}"
    config_mod.set_value("handbook", ref, config_path(cfg))
    return ref


def activate(cfg: Config, ref: str) -> str:
    """Make NAME@VERSION (or a handbook file) the active handbook, in the config file, atomically.
    Returns what the config now names."""
    path = handbooks.resolve(ref)
    hb = handbooks.load_file(path)  # a missing or malformed version fails here, before any write
    pinned = f"{hb.name}@{hb.version}"
    if path.resolve() not in {i.path.resolve() for i in handbooks.versions(hb.name)}:
        pinned = str(path.resolve())  # a file of the user's own: no saved version holds it
    config_mod.set_value("handbook", pinned, config_path(cfg))
    return pinned


def auto_decision(outcome: RelearnOutcome, *, margin: float = NOT_WORSE_MARGIN, min_ess: float = MIN_ESS) -> tuple[bool, str]:
    """--auto: activate only when the new version is not estimated to be worse."""
    if outcome.unchanged:
        return False, "nothing new to activate"
    c = outcome.evaluation
    structural = bool(outcome.changes)
    if c is None:
        return (not structural and outcome.counts.half_life_days is None,
                "no evaluation; only a recount of the same skills is activated without one")
    if c.candidate.n == 0:
        if not structural and outcome.counts.half_life_days is None:
            return True, "no logged turn to compare on; the new version only recounts the same ratings"
        return False, "no logged policy turns to compare on"
    if c.candidate.ess < min_ess:
        if not structural and outcome.counts.half_life_days is None:
            return True, (f"only {c.candidate.ess:.0f} effective logged turns, too few to compare; the new version "
                          "only recounts the same ratings, which online learning had already applied")
        return False, f"only {c.candidate.ess:.0f} effective logged turns: too few to tell whether it is better"
    if c.not_worse(margin, min_ess):
        return True, f"not worse: estimated change in satisfaction {_signed(c.delta.value)} ({_ci(c.delta)})"
    return False, f"estimated worse: change in satisfaction {_signed(c.delta.value)} ({_ci(c.delta)})"


# --- words for people --------------------------------------------------------------------------


def _signed(x: float) -> str:
    return signed(x) if math.isfinite(x) else "n/a"


def _ci(e: Any) -> str:
    if not (math.isfinite(e.low) and math.isfinite(e.high)):
        return "no interval"
    return f"95% CI {signed(e.low)} to {signed(e.high)}"


def evaluation_text(c: Comparison | None) -> str:
    return "not evaluated" if c is None else c.summary


def summarize(o: RelearnOutcome) -> str:
    k = o.counts
    parts = [f"{o.base.ref} -> {o.handbook.ref}: evidence recomputed from {k.used:,} of {k.turns:,} rated turns"]
    if k.half_life_days:
        parts[-1] += f" (half-life {k.half_life_days:g} days: {k.observations:,.1f} effective ratings)"
    if o.changes:
        kinds: dict[str, int] = {}
        for c in o.changes:
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
        parts.append(", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in kinds.items()))
    else:
        parts.append("no skill split, merged or discovered")
    if o.evaluation is not None:
        parts.append("estimated on your logged turns: " + evaluation_text(o.evaluation))
    same = same_as_now(o)
    return "; ".join(parts) + "." + (f" {same}" if same else "")


def same_as_now(o: RelearnOutcome) -> str:
    """Why an estimate reads "0.284 -> 0.284": a plain recount learns nothing routing did not
    already know, since every rating is applied the moment it is given. Empty when that is not it."""
    e, k = o.evaluation, o.counts
    if e is None or o.changes or k.half_life_days or e.candidate.n == 0 or round(e.delta.value, 3) != 0:
        return ""
    return ("No change, as expected: every rating was already applied to routing when you gave it, so a recount "
            "only confirms it. A relearn changes routing when it splits, merges or discovers skills (that needs "
            "more ratings), or with a half-life, when old ratings fade.")


# --- naming discovered skills with a model from the pool ----------------------------------------


NAMING_PROMPT = """You name one skill of a chat assistant's routing handbook.
These user messages were grouped together; their most distinctive words are: {terms}.
Messages:
{examples}

The handbook's modes are: {modes}.
Answer with JSON only: {{"id": "short_snake_case", "name": "Short Title", "description": "one sentence", "mode": "one of the modes"}}"""  # noqa: E501  (the model copies this line)


class LLMNamer:
    """Names discovered skills with one model call each, through `complete(prompt) -> text`.

    Falls back to the offline names when the answer is not usable. `calls` and `cost_usd` say what
    it spent; `estimate(prompt_tokens_per_call)` is shown to the user before it is allowed.
    """

    def __init__(self, complete: Callable[[str], tuple[str, float]], fallback: Any = None) -> None:
        self.complete = complete
        self.fallback = fallback or TermNamer()
        self.calls = 0
        self.cost_usd = 0.0
        self.failures: list[str] = []

    @staticmethod
    def prompt(texts: Sequence[str], top_terms: Sequence[str], modes: Sequence[str]) -> str:
        ex = "\n".join(f"- {' '.join(t.split())[:300]}" for t in texts[:5])
        return NAMING_PROMPT.format(terms=", ".join(top_terms[:8]), examples=ex, modes=", ".join(modes))

    def name(self, texts: Sequence[str], top_terms: Sequence[str], modes: Sequence[str]) -> SkillName:
        offline = self.fallback.name(texts, top_terms, modes)
        try:
            answer, cost = self.complete(self.prompt(texts, top_terms, modes))
        except Exception as e:  # naming is a nicety: never fail a relearn over it
            self.failures.append(str(e))
            return offline
        self.calls += 1
        self.cost_usd += cost
        m = re.search(r"\{.*\}", answer, re.S)
        try:
            d = json.loads(m.group(0)) if m else {}
        except json.JSONDecodeError:
            d = {}
        slug = slugify(str(d.get("id", "")), default="")
        if not slug or not isinstance(d.get("name"), str):
            self.failures.append("unusable answer")
            return offline
        mode = d.get("mode") if d.get("mode") in modes else None
        desc = str(d.get("description") or offline.description)[:300]
        return SkillName(slug, str(d["name"])[:60], desc, mode)


def count_discoveries(cfg: Config, store: Any, ref: str, **kw: Any) -> int:
    """How many skills a relearn would discover (a dry run), to price LLM naming beforehand."""
    base = load_base(ref, cfg)
    res = relearn(base, store.rated_turns(handbook_name=base.name), **kw)
    return sum(1 for c in res.changes if c.kind == "discover")


def with_version(cfg: Config, ref: str) -> Config:
    return dataclasses.replace(cfg, handbook=ref)


__all__ = [
    "HandbookError", "LLMNamer", "RelearnOutcome", "activate", "active_ref", "auto_decision", "count_discoveries",
    "evaluation_text", "load_base", "online_handbook", "pin_version", "run", "summarize", "turn_costs",
]
