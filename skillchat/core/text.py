"""Tokenising and light stemming shared by skill inference and skill discovery."""

from __future__ import annotations

import re
from functools import lru_cache

_WORD_RE = re.compile(r"[a-z][a-z0-9_+#']*|\d+")

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
    during each few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here
    here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself
    let's me more most mustn't my myself no nor not of off on once only or other ought our ours ourselves
    out over own same shan't she she'd she'll she's should shouldn't so some such than that that's the their
    theirs them themselves then there there's these they they'd they'll they're they've this those through
    to too under until up very was wasn't we we'd we'll we're we've were weren't what what's when when's
    where where's which while who who's whom why why's will with won't would wouldn't you you'd you'll
    you're you've your yours yourself yourselves please just also get got like want need would could
    one two use using used make made way thing things""".split()
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A deliberately small suffix stripper, consistent across a word's forms.

    'bugs' ~ 'bug', 'sorting' ~ 'sort', 'optimize' ~ 'optimized' ~ 'optimizing', 'code' ~ 'coding'.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    base = word
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            base = word[: -len(suffix)] + keep
            if suffix in ("ing", "ed"):
                if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz":
                    base = base[:-1]  # "running" -> "run", not "runn"
                elif len(base) == 3 and base[-1] not in "aeiouy":
                    base += "e"  # "coding" -> "code", like "code"
            elif suffix == "s" and base.endswith("e") and base[:-1].endswith(("s", "x", "z", "ch", "sh")):
                base = base[:-1]  # "boxes" -> "box"
            break
    # A silent final e is dropped so that "optimize" meets "optimized" and "optimizing".
    if len(base) > 4 and base.endswith("e"):
        base = base[:-1]
    return base


def words(text: str) -> list[str]:
    """Lowercased word tokens, apostrophes kept inside words."""
    return _WORD_RE.findall(text.lower())


def stems(text: str) -> list[str]:
    return [stem(w.strip("'")) for w in words(text)]


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry meaning: no stopwords, no one-letter tokens."""
    return [stem(w.strip("'")) for w in words(text) if w not in STOPWORDS and len(w) > 1]
