"""Which `re:` indicator patterns a handbook may hold: none that can take exponential time.

Python's `re` backtracks, has no timeout, and holds the GIL while it matches, so one pattern such as
`^(a+)+$` takes seconds on 28 characters of the user's message and hangs the app. Patterns are
therefore checked when a handbook is read, on their parse tree (the stdlib's own parser), and these
are refused:

- a quantifier inside another, when either is unbounded: `(x+)+`, `(x*)*`, `(x+)*`, `(a{1,2})+`,
  `(\\w+\\s?)*`; unless the inner one repeats a single character class and is always followed by a
  character it cannot match, which fixes where each repetition ends (`([\\w-]+\\s+){0,3}`,
  `(?:[^\\n]*\\n)*`), or repeats a fixed number of times (`(,\\d{3})*`);
- under an unbounded quantifier, an alternation whose branches can start alike (`(a|aa)+`), or an
  optional part that what follows it can also match (`(a?a)+`, the same alternation written
  otherwise): each repetition can then be split between them in exponentially many ways.

What is left can still be polynomial in the text's length (`\\w+\\w+`), so the inferrer matches
patterns only against a clipped text (core/inference.py). A pattern is at most MAX_PATTERN
characters.
"""

from __future__ import annotations

import re

# The stdlib's own regular expression parser and compiler (private, so typeshed leaves them out).
from re import _compiler  # type: ignore[attr-defined]
from re import _parser as _sre  # type: ignore[attr-defined]
from typing import Any

MAX_PATTERN = 2_000

_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT)
_ANY = None  # a first-character set we cannot tell: assumed to overlap with everything


def problem(pattern: str) -> str | None:
    """Why `pattern` may not be an indicator, or None when it may."""
    if len(pattern) > MAX_PATTERN:
        return f"the pattern is {len(pattern):,} characters long; at most {MAX_PATTERN:,} are allowed"
    try:
        tree = _sre.parse(pattern)
    except re.error as e:
        return f"bad regular expression: {e}"
    except RecursionError:
        return "the pattern is nested too deeply"
    try:
        found = _check(list(tree), outer=None, follow=set(), after_last=None)
    except RecursionError:
        return "the pattern is nested too deeply"
    if found:
        return (f"{found}: it can take exponential time on some messages (catastrophic backtracking); "
                "rewrite it without nesting quantifiers or overlapping alternatives, e.g. (a+)+ as a+")
    return None


def _check(items: list[Any], outer: int | None, follow: set[str] | None, after_last: Any) -> str | None:
    """The first dangerous construct in `items`, under a quantifier of maximum `outer` (None: none).

    `follow` is what may start the next repetition of the enclosing unbounded quantifier: an
    alternation with an empty branch competes with it. `after_last` is the item that comes after
    the last of `items` (in a repeated group, the group's start again).
    """
    for i, (op, av) in enumerate(items):
        after = items[i + 1] if i + 1 < len(items) else after_last
        if op in _REPEATS:
            lo, hi, body = av
            body = list(body)
            if (hi > 1 and lo != hi and outer is not None and (hi == _sre.MAXREPEAT or outer == _sre.MAXREPEAT)
                    and not _delimited(body, after)):
                return "a quantifier inside another quantifier"
            # An optional part is an alternation with an empty branch: `(a?a)+` is `(aa|a)+`.
            if (lo == 0 and hi == 1 and outer == _sre.MAXREPEAT
                    and _overlap([_first(body), set() if after is None else _first([after])])
                    and not _delimited(body, after)):
                return "an optional part that what follows it can also match, under a repeating quantifier"
            if hi > 1:
                inner_follow = _first(body) if hi == _sre.MAXREPEAT else set()
                found = _check(body, hi, inner_follow, body[0] if body else None)
            else:
                found = _check(body, outer, follow, after)
        elif op == _sre.SUBPATTERN:
            found = _check(list(av[-1]), outer, follow, after)
        elif op == _sre.BRANCH:
            alts = [list(a) for a in av[1]]
            if outer == _sre.MAXREPEAT and _overlap([_first(a) if a else follow for a in alts]):
                return "alternatives that can match alike under a repeating quantifier"
            found = next((f for a in alts if (f := _check(a, outer, follow, after))), None)
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            found = _check(list(av[1]), outer, follow, None)
        elif op == _sre.GROUPREF_EXISTS:
            found = next((f for a in av[1:] if a is not None and (f := _check(list(a), outer, follow, after))), None)
        elif op == getattr(_sre, "ATOMIC_GROUP", object()):
            found = _check(list(av), None, set(), None)  # nothing in it is tried again once it has matched
        else:
            found = None
        if found:
            return found
    return None


def _first(items: list[Any]) -> set[str] | None:
    """The characters a match of `items` can start with (lowercased: matching ignores case), or
    _ANY when that is not a plain set of literals."""
    for op, av in items:
        if op == _sre.AT:  # ^, $, \b: they take no character
            continue
        if op == _sre.LITERAL:
            return {chr(av).lower()}
        if op == _sre.IN and all(o == _sre.LITERAL for o, _ in av):
            return {chr(c).lower() for _, c in av}
        if op == _sre.SUBPATTERN:
            return _first(list(av[-1]))
        return _ANY
    return set()


def _overlap(firsts: list[set[str] | None]) -> bool:
    seen: set[str] = set()
    for f in firsts:
        if f is _ANY:
            return len(firsts) > 1
        if seen & f:
            return True
        seen |= f
    return False


# The characters a class is tested on to tell whether two classes share any: the whole Basic
# Multilingual Plane but surrogates (every script a message is likely to be in). Made when needed.
_SAMPLE: list[str] = []


def _delimited(body: list[Any], after: Any) -> bool:
    """Whether one character class repeated (`body`) is followed by a character it cannot match
    (`after`, which must be there): then the text says where each repetition ends."""
    if len(body) != 1 or after is None:
        return False
    while True:  # down to the first character of what follows
        op, av = after
        if op == _sre.SUBPATTERN and av[-1]:
            after = list(av[-1])[0]
        elif op in _REPEATS and av[0] >= 1 and len(av[2]) == 1:
            after = list(av[2])[0]
        else:
            break
    return _disjoint(body[0], after)


_ONE_CHAR = (_sre.LITERAL, _sre.NOT_LITERAL, _sre.IN, _sre.ANY)
_DISJOINT: dict[str, bool] = {}


def _disjoint(a: Any, b: Any) -> bool:
    """Whether two one-character items match no character in common (False when either is not one).

    re itself answers, on `(?=a)b` compiled as the inferrer compiles patterns (ignoring case) and
    searched through the sample: categories, ranges, negation and case folding all count.
    """
    if a[0] not in _ONE_CHAR or b[0] not in _ONE_CHAR:
        return False
    key = repr((a, b))
    if key not in _DISJOINT:
        if len(_DISJOINT) > 256:
            _DISJOINT.clear()
        state = _sre.State()
        both = _sre.SubPattern(state, [(_sre.ASSERT, (1, _sre.SubPattern(state, [a]))), b])
        if not _SAMPLE:
            _SAMPLE.append("".join(chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF))
        _DISJOINT[key] = _compiler.compile(both, re.IGNORECASE).search(_SAMPLE[0]) is None
    return _DISJOINT[key]
