"""Attempt: one model call in a turn's fallback chain.

Its own module because two layers share it: the service records attempts as it makes them (and
reports them in events.TurnFinished), and the store keeps them in the log and reads them back. The
store must not import the service's modules, so the record lives below both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call in a turn's fallback chain; the last one of an answered turn is the answer."""

    agent_id: str
    model: str
    ok: bool
    kind: str | None = None  # timeout | rate_limit | auth | server | stream | other | budget
    error: str | None = None  # already stripped of any key value
    latency_s: float | None = None
    cost_usd: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attempt:
        logged: dict[str, Any] = {k: d.get(k) for k in ("agent_id", "model", "ok", "kind", "error", "latency_s")}
        return cls(**logged, cost_usd=float(d.get("cost_usd") or 0.0))
