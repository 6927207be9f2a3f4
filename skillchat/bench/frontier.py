"""Cost/quality frontiers: compare routers that trade score for cost at equal cost.

A router's points (cost, score) at several lambdas span a frontier: its upper concave hull, since
mixing two policies at random reaches any point on the segment between them. `score_at(points,
cost)` reads that hull at a given cost (None below the cheapest point: no extrapolation; above
the dearest point: its score).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise


def hull(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Upper concave hull of (cost, score) points that is non-decreasing in cost."""
    pts = sorted(set(points))
    # Keep only points that improve on every cheaper one.
    mono: list[tuple[float, float]] = []
    for c, s in pts:
        if not mono or s > mono[-1][1]:
            mono.append((c, s))
    out: list[tuple[float, float]] = []
    for p in mono:
        while len(out) >= 2 and _cross(out[-2], out[-1], p) >= 0:
            out.pop()
        out.append(p)
    return out


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def score_at(points: Sequence[tuple[float, float]], cost: float) -> float | None:
    h = hull(points)
    if not h or cost < h[0][0] * (1 - 1e-9):
        return None
    if cost <= h[0][0]:
        return h[0][1]
    for (c0, s0), (c1, s1) in pairwise(h):
        if cost <= c1:
            return s0 + (s1 - s0) * (cost - c0) / (c1 - c0) if c1 > c0 else max(s0, s1)
    return h[-1][1]


def mean_score_at(points: Sequence[tuple[float, float]], costs: Sequence[float]) -> float:
    """Mean hull score over some costs; a cost below the cheapest point counts that point's score."""
    h = hull(points)
    return sum(score_at(h, max(c, h[0][0])) or 0.0 for c in costs) / len(costs)
