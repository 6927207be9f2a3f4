"""bench/frontier.py: the cost-quality frontier of the replay benchmark and reading it at a budget."""

from __future__ import annotations

from skillchat.bench import frontier


def test_frontier_hull_and_reading():
    pts = [(0.1, 0.5), (0.5, 0.6), (0.3, 0.7), (1.0, 0.8), (0.9, 0.4)]
    h = frontier.hull(pts)
    assert h == [(0.1, 0.5), (0.3, 0.7), (1.0, 0.8)]
    assert frontier.score_at(pts, 0.05) is None
    assert abs(frontier.score_at(pts, 0.2) - 0.6) < 1e-12
    assert frontier.score_at(pts, 2.0) == 0.8
