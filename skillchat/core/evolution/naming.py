"""Names for skills that evolution creates: SkillName, the SkillNamer a caller may supply, and the offline TermNamer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

_SLUG_RE = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True, slots=True)
class SkillName:
    slug: str  # last part of the id: [a-z0-9_]+
    name: str
    description: str
    mode: str | None = None  # a mode of the handbook the skill belongs to; None: the fallback's


class SkillNamer(Protocol):
    """Names a discovered skill from its cluster. `texts` are representative user messages."""

    def name(self, texts: Sequence[str], top_terms: Sequence[str], modes: Sequence[str]) -> SkillName: ...


class TermNamer:
    """Offline naming from the cluster's most distinctive terms (stems)."""

    def name(self, texts: Sequence[str], top_terms: Sequence[str], modes: Sequence[str]) -> SkillName:
        words = [t for t in top_terms if t][:3] or ["topic"]
        slug = slugify("_".join(words[:2]))
        return SkillName(
            slug=slug,
            name=" / ".join(words).capitalize(),
            description=f"Discovered from your rated turns about: {', '.join(top_terms[:6]) or 'one topic'}.",
        )


def slugify(s: str, default: str = "topic") -> str:
    """The last part of a skill id: lowercase letters, digits and '_', at most 40 of them."""
    s = _SLUG_RE.sub("_", s.lower()).strip("_")
    return s[:40] or default


def unique_id(base: str, taken: set[str], sep: str = "_") -> str:
    """`base`, or `base_2`, `base_3`, ... (with `sep`) if taken; the id returned is marked as taken."""
    sid, k = base, 2
    while sid in taken:
        sid, k = f"{base}{sep}{k}", k + 1
    taken.add(sid)
    return sid
