"""Change: one change to the skill taxonomy (split, merge, discover), as relearn reports it and a
handbook version's history keeps it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Change:
    """One change to the skill taxonomy, with the evidence and the reasoning behind it."""

    kind: str  # "split" | "merge" | "discover"
    skills: tuple[str, ...]  # the skills it acted on (split parent, merged pair, fallback skill)
    created: tuple[str, ...] = ()  # skills it created
    removed: tuple[str, ...] = ()  # skills it removed from the handbook
    rationale: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)  # the numbers behind the decision
    retagged: int = 0  # rated turns whose skills it re-labelled

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "skills": list(self.skills),
            "created": list(self.created),
            "removed": list(self.removed),
            "rationale": self.rationale,
            "evidence": plain(self.evidence),
            "retagged": self.retagged,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Change:
        return cls(
            kind=str(d.get("kind", "")),
            skills=tuple(d.get("skills", ())),
            created=tuple(d.get("created", ())),
            removed=tuple(d.get("removed", ())),
            rationale=str(d.get("rationale", "")),
            evidence=dict(d.get("evidence", {})),
            retagged=int(d.get("retagged", 0)),
        )


def plain(v: Any) -> Any:
    """JSON-friendly copy: tuples to lists, floats rounded so that versions diff cleanly."""
    if isinstance(v, Mapping):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, float):
        return round(v, 6)
    return v
