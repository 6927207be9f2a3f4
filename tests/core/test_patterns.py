"""core/patterns.py: which `re:` indicator patterns a handbook may hold (none that can take
exponential time). The refusal seen from the CLI is in tests/test_limits.py."""

from __future__ import annotations

import pytest

from skillchat.core import patterns
from skillchat.core.patterns import MAX_PATTERN, problem


@pytest.mark.parametrize("pattern", ["^(a+)+$", "(x+)+", "(x*)*", "(x+)*", "(a|aa)+", "(a{1,2})+", r"(\w+\s?)*",
                                     r"(\d+(,\d+)*)+", "(.*x)+", "(a+){12}", "((ab)*)+", r"(\s+|x)+", "(x|xy|xyz)+z",
                                     "([а-я]+а)+", "([^y]*X)+y",
                                     # an alternative that starts with any character overlaps every other
                                     "(.|a)+",
                                     # a repeated body of several items is not delimited by what follows it
                                     "((?:ab)+c)+",
                                     # inside lookarounds and conditionals too
                                     "(?=(a+)+)", "(a)?(?(1)(b+)+|c)",
                                     # an optional part that what follows can also match: (a?a)+ is (aa|a)+
                                     "(a?a)+$", "(.?a)+", r"(\d?\d)+", "(a?b?a)+", "((?:ab)?ab)+",
                                     # a group repeated once is no quantifier: its alternatives are under the outer one
                                     "((a|aa){1}b)+"])
def test_patterns_that_can_backtrack_catastrophically_are_refused(pattern):
    assert "catastrophic backtracking" in (problem(pattern) or "")


@pytest.mark.parametrize("pattern", [r"\b(\w+)\b", r"(ab|cd)+", r"(foo|bar)+", r"(a|ab)+", r"(\d{1,3}\.){3}\d{1,3}",
                                     r"(,\d{3})*", r"([\w'-]+\s+){0,3}", r"(?:[^\n]*\n){0,12}?", r"([^x]*x)+",
                                     r"(\w+\s)*", r"(?>a+)+", r"\bselect\b[\s\S]+\bfrom\b", "([一-龥]+x)+", "([^x]*X)+y",
                                     # delimited by the item after it, not the one before
                                     r"(x[\w-]+\s+)*",
                                     # alternatives whose first characters are classes that do not meet
                                     r"([ab]x|[cd]y)+",
                                     r"(?=abc)x", r"(a)?(?(1)b|c)",
                                     # optional parts that what follows cannot match, or not repeated
                                     "(x?y)+", "(colou?r)+", "(https?://)+", r"(\s?\w)+", "((?:ab)?c)+", "(ab?)+",
                                     "(a?a){3}",
                                     # repeated a fixed number of times, the alternatives are bounded
                                     "((a|aa){2}b)+",
                                     # an alternative that takes no character competes with none
                                     r"(\b|,)+"])
def test_safe_patterns_pass(pattern):
    assert problem(pattern) is None


def test_a_pattern_over_the_length_limit_is_refused_and_one_at_it_is_not():
    assert MAX_PATTERN == 2_000  # the README says so
    assert f"at most {MAX_PATTERN:,}" in problem("a" * (MAX_PATTERN + 1))
    assert problem("a" * MAX_PATTERN) is None


def test_a_pattern_that_is_not_a_regular_expression_says_why():
    why = problem("(") or ""
    assert why.startswith("bad regular expression: ") and "unterminated subpattern" in why


def test_a_pattern_nested_too_deeply_to_read_or_to_check_is_refused_not_raised(monkeypatch):
    assert problem("(" * 500 + ")" * 500) == "the pattern is nested too deeply"  # the parser gives up

    def too_deep(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RecursionError

    monkeypatch.setattr(patterns, "_check", too_deep)
    assert problem("a") == "the pattern is nested too deeply"
