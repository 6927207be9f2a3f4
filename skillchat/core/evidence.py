"""What a handbook learns: Evidence (weighted success and failure counts per agent and skill, with
running aggregates per mode and per agent) and CostStat (running means of a call's tokens and cost)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

_SLACK = 1e-9  # rounding in float counts: below this a clamp is not worth a reason
_K = TypeVar("_K", bound=Hashable)


def _add(table: dict[_K, list[float]], key: _K, successes: float, failures: float) -> None:
    c = table.get(key)
    if c is None:
        table[key] = [max(successes, 0.0), max(failures, 0.0)]
    else:  # sums of non-negative cells: only rounding could take them below zero
        c[0] = max(c[0] + successes, 0.0)
        c[1] = max(c[1] + failures, 0.0)


@dataclass(slots=True)
class CostStat:
    n: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    usd: float = 0.0

    def add(self, prompt_tokens: float, completion_tokens: float, usd: float) -> None:
        self.n += 1
        k = 1.0 / self.n
        self.prompt_tokens += (prompt_tokens - self.prompt_tokens) * k
        self.completion_tokens += (completion_tokens - self.completion_tokens) * k
        self.usd += (usd - self.usd) * k


class Evidence:
    """Weighted success/failure counts per (agent, skill), with running aggregates.

    Counts are floats: a rating is spread over the active skills in proportion to their weights.
    """

    __slots__ = ("_cells", "_by_mode", "_by_agent", "_mode_of", "version", "clamped")

    def __init__(self, mode_of: Mapping[str, str]) -> None:
        self._mode_of = dict(mode_of)
        self.version = 0  # bumped on every change, so derived figures can be cached
        self._cells: dict[tuple[str, str], list[float]] = {}
        self._by_mode: dict[tuple[str, str], list[float]] = {}
        self._by_agent: dict[str, list[float]] = {}
        # Why a count was kept at zero instead of going below it (the latest few): a negative count
        # would make the posterior meaningless (and crash the math), so it is never stored.
        self.clamped: list[str] = []

    def add(self, agent: str, skill: str, successes: float, failures: float) -> None:
        """Add to one cell (negative amounts take a rating back). A count never goes below zero:
        taking back more than the cell holds (a rating it never had) stops at zero, and the
        reason is kept in `clamped`."""
        self.version += 1
        mode = self._mode_of[skill]
        cell = self._cells.get((agent, skill))
        have = (cell[0], cell[1]) if cell is not None else (0.0, 0.0)
        if have[0] + successes < 0 or have[1] + failures < 0:
            if have[0] + successes < -_SLACK or have[1] + failures < -_SLACK:
                self.clamped = self.clamped[-9:] + [
                    f"{agent} on {skill}: taking back {abs(min(successes, 0.0)):.3g} successes and "
                    f"{abs(min(failures, 0.0)):.3g} failures from {have[0]:.3g} and {have[1]:.3g} would go below zero; "
                    "kept at zero (a rating was taken back that this handbook never had)"]
            successes, failures = max(successes, -have[0]), max(failures, -have[1])
        _add(self._cells, (agent, skill), successes, failures)
        _add(self._by_mode, (agent, mode), successes, failures)
        _add(self._by_agent, agent, successes, failures)

    def skill(self, agent: str, skill: str) -> tuple[float, float]:
        c = self._cells.get((agent, skill))
        return (c[0], c[1]) if c else (0.0, 0.0)

    def mode(self, agent: str, mode: str) -> tuple[float, float]:
        c = self._by_mode.get((agent, mode))
        return (c[0], c[1]) if c else (0.0, 0.0)

    def agent(self, agent: str) -> tuple[float, float]:
        c = self._by_agent.get(agent)
        return (c[0], c[1]) if c else (0.0, 0.0)

    def cells(self) -> Iterable[tuple[str, str, float, float]]:
        for (a, s), (succ, fail) in self._cells.items():
            yield a, s, succ, fail

    def total(self) -> float:
        return sum(s + f for s, f in self._by_agent.values())

    def scale(self, factor: float) -> None:
        """Discount all evidence, so that old ratings weigh less than new ones."""
        self.version += 1
        for table in (self._cells, self._by_mode, self._by_agent):
            for cell in table.values():
                cell[0] *= factor
                cell[1] *= factor

    def clear(self) -> None:
        self.version += 1
        self._cells.clear()
        self._by_mode.clear()
        self._by_agent.clear()
