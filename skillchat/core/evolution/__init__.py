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
`split_into` (a parent's children, each with a `signature` centroid), `discovered_from` with
`min_similarity` (which fallback turns a discovered skill takes over), and `merged_discoveries` (the
signatures and thresholds of discovered skills merged into a skill, whose fallback turns it takes over).

Package layout: naming, texts (vectors and signatures), retagging, stats (evidence cells and
intervals), merge, split, discover; `evolve` below runs the rounds.
"""

from __future__ import annotations

from skillchat.core.changes import Change
from skillchat.core.evolution.discover import discoveries
from skillchat.core.evolution.merge import MERGE_MARGIN, merges
from skillchat.core.evolution.naming import SkillName, SkillNamer, TermNamer, slugify
from skillchat.core.evolution.retagging import Retagger, nearest_child
from skillchat.core.evolution.split import splits
from skillchat.core.evolution.stats import beta_interval, cells, interval_z
from skillchat.core.evolution.texts import Texts
from skillchat.core.handbook import Handbook
from skillchat.core.rated_log import RatedLog, Reporter

__all__ = ["Retagger", "SkillName", "SkillNamer", "TermNamer", "beta_interval", "evolve", "interval_z", "nearest_child",
           "slugify"]


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
    texts = Texts()
    namer = namer or TermNamer()
    tried: dict[str, tuple[int, ...]] = {}  # skills tested and left alone, by their member turns
    for rnd in range(max_rounds):
        report("evolve", rnd, max_rounds)
        round_changes: list[Change] = []
        stats = cells(hb, log, half_life_days)
        hb, ch = merges(hb, log, stats, min_split=min_split, margin=merge_margin)
        round_changes += ch
        if ch:
            stats = cells(hb, log, half_life_days)
        report("evolve", rnd, max_rounds)
        hb, ch = splits(
            hb, log, stats, texts, min_split=min_split, seed=seed, half_life=half_life_days, report=report, tried=tried
        )
        round_changes += ch
        report("evolve", rnd, max_rounds)
        hb, ch = discoveries(hb, log, texts, min_size=min_split, seed=seed + rnd, namer=namer, half_life=half_life_days)
        round_changes += ch
        changes += round_changes
        if not round_changes:
            break
    return hb, changes
