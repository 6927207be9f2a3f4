"""The structure of a handbook: modes, skills, agents with their priors, and the routing settings.
All immutable once read; core/handbook.py holds them together with what is learned (core/evidence.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skillchat.core.ports import Price


@dataclass(frozen=True, slots=True)
class Mode:
    id: str
    name: str
    description: str = ""
    completion_tokens: int = 400


@dataclass(frozen=True, slots=True)
class Skill:
    id: str
    mode: str
    name: str
    description: str = ""
    indicators: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    parent: str | None = None
    # A learned tf-idf signature (term -> weight), for skills discovered from text clusters.
    signature: Mapping[str, float] | None = None
    provenance: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Prior:
    mean: float
    source: str = ""
    modes: Mapping[str, float] = field(default_factory=dict)
    skills: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    model: str
    name: str
    context_window: int
    prior: Prior
    price: Price | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    fallback_skill: str = "chat.general"
    # Higher tiers are stickier: ratings in other modes say less about this mode than ratings on
    # sibling skills do, and those say less than the skill's own ratings.
    # A prior that knows nothing about the agents is worth few ratings; handbooks whose priors come
    # from public leaderboards say so with a strength of their own.
    prior_strength: float = 4.0
    mode_strength: float = 6.0
    skill_strength: float = 4.0
    exploration_floor: float = 0.03
    # Share of Thompson draws given to the agents most likely to be the most competent, price aside.
    # 0.15, not 0.05: with fewer draws the best model's record is too thin, and too much of it comes
    # from the hard turns cheaper models were failing, so on some mixes of tasks the learned router
    # ended below that model at its cost (validation folds of routerbench, mmlupro and sets carved
    # from them by benchmarks/derive_set.py; figures in docs/routing-experiments.md).
    quality_floor: float = 0.15
    # When not exploring, an agent takes the turn from the overall champion only if its score on
    # the turn's skills is higher by this many standard deviations of the difference.
    challenge_z: float = 1.0
