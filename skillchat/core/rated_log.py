"""What relearn and skill evolution work on together: the log of rated turns with their current skill
weights (RatedLog), how much an old rating still counts (decay), and the progress and cancellation
of the long passes over it (Reporter)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from skillchat.core.learning import RatedTurn

CHECK_EVERY = 4096  # turns between two cancellation checks / progress reports


class Cancel(Protocol):
    def is_set(self) -> bool: ...


Progress = Callable[[str, int, int], None]


class RelearnCancelled(Exception):
    """Raised when `cancel` was set: no result exists, so nothing can be saved."""


class Reporter:
    """`report(stage, done, total)` passes progress on and raises RelearnCancelled once `cancel` is set."""

    __slots__ = ("progress", "cancel", "stage")

    def __init__(self, progress: Progress | None, cancel: Cancel | None) -> None:
        self.progress, self.cancel, self.stage = progress, cancel, ""

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise RelearnCancelled("relearn cancelled")

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.check()
        self.stage = stage
        if self.progress is not None:
            self.progress(stage, done, total)

    def done(self) -> None:
        self.check()
        if self.progress is not None:
            self.progress("done", 1, 1)


class RatedLog:
    """The rated turns with their current skill weights (logged weights, re-tagged as needed)."""

    __slots__ = ("turns", "weights", "retagged")

    def __init__(self, turns: list[RatedTurn]) -> None:
        self.turns = turns
        self.weights: list[dict[str, float]] = [dict(t.skills) for t in turns]
        self.retagged: list[bool] = [False] * len(turns)

    def set(self, i: int, weights: dict[str, float]) -> None:
        if weights != self.weights[i]:
            self.weights[i] = weights
            self.retagged[i] = True

    def retagged_count(self) -> int:
        """Turns now credited to other skills than the logged ones (not those left with none)."""
        return sum(1 for r, w in zip(self.retagged, self.weights, strict=True) if r and w)

    def map(self, mapper: Any, report: Reporter) -> None:
        """Bring every turn's weights onto the handbook's current skills (see evolution.Retagger)."""
        total = len(self.turns)
        for i, t in enumerate(self.turns):
            if i % CHECK_EVERY == CHECK_EVERY - 1:
                report("map", i, total)
            w = self.weights[i]
            if mapper.needs(w):
                self.set(i, mapper(t, w))


def decay(age_days: float, half_life_days: float | None) -> float:
    """The weight of a rating `age_days` old: it halves every `half_life_days` (never, without one)."""
    if half_life_days is None or age_days <= 0:
        return 1.0
    weight: float = 0.5 ** (age_days / half_life_days)
    return weight
