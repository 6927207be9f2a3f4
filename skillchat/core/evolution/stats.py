"""The evidence evolution decides on: (skill, agent) success/failure cells from the log, and Beta credible
intervals with a family-wise correction for the number of tests."""

from __future__ import annotations

import math
from statistics import NormalDist

from skillchat.core.handbook import Handbook
from skillchat.core.rated_log import RatedLog, decay

FAMILY_ALPHA = 0.01  # family-wise false-split rate per round, spread over the tests made
Z90 = NormalDist().inv_cdf(0.95)


def cells(hb: Handbook, log: RatedLog, half_life: float | None) -> dict[str, dict[str, list[float]]]:
    """skill -> agent -> [successes, failures], from the current weights of the log."""
    out: dict[str, dict[str, list[float]]] = {}
    for t, w in zip(log.turns, log.weights, strict=True):
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


def beta_sd(successes: float, failures: float) -> float:
    a, b = 1.0 + successes, 1.0 + failures
    return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))


def interval_z(tests: int, alpha: float = FAMILY_ALPHA) -> float:
    """Per-interval z such that 'two intervals do not overlap' has family-wise rate ~alpha.

    Non-overlap of two intervals of equal width means |difference| > z * sqrt(2) * sd(difference),
    so the test's z for the difference is divided by sqrt(2); at least the usual 90% interval.
    """
    tests = max(1, tests)
    zd = NormalDist().inv_cdf(1.0 - alpha / (2.0 * tests))
    return max(Z90, zd / math.sqrt(2.0))
