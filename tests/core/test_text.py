"""Tokenising and stemming: a word's forms meet on one stem, so "sorting" matches a skill that says
"sort" and "boxes" one that says "box", and no two different words are merged by a suffix rule.
Stems are pinned exactly, the known gaps included: the skills discovered from texts, and so the
learned routing, move with any change to them."""

from __future__ import annotations

import pytest

from skillchat.core.text import content_stems, stem, stems, words

# Each group: the forms of one word, which must share a stem.
FORMS = [
    ("bug", "bugs"),
    ("sort", "sorting", "sorted", "sorts"),
    ("optimize", "optimized", "optimizing", "optimizes"),
    ("code", "coding", "coded", "codes"),
    ("run", "running"),
    ("plan", "planned", "planning"),
    ("fall", "falling"),  # a double l is the word's own
    ("pass", "passing"),
    ("box", "boxes"),
    ("watch", "watches", "watched"),
    ("story", "stories"),
    ("class", "classes"),
    ("hope", "hoped", "hoping"),
    ("type", "typed", "typing"),
    ("play", "played", "playing"),
    ("thing", "things"),
]

# Forms that do not meet yet. A three-letter stem that is not consonant-vowel-consonant gets a
# stray e back from its -ed / -ing form ("added" -> "adde"), and an -ing with no vowel before it
# is cut ("string" -> "stre"). Fixing both was measured (2026-12-02): it reshuffles the skills
# discovered from texts, and the learned router did worse on routerbench's validation folds
# (docs/routing-experiments.md), so the stemmer stays as it is until routing is less sensitive to
# its skills. Strict: a fix must move these up.
KNOWN_GAPS = [
    ("add", "added", "adding"),
    ("ask", "asked", "asking"),
    ("fix", "fixed", "fixing"),
    ("box", "boxed"),
    ("end", "ended", "ending"),
    ("eat", "eating"),
    ("string", "strings"),
]


@pytest.mark.parametrize("forms", FORMS, ids=[f[0] for f in FORMS])
def test_the_forms_of_a_word_share_a_stem(forms):
    assert {stem(f) for f in forms} == {stem(forms[0])}


@pytest.mark.xfail(strict=True, reason="known stemming gap, kept: see KNOWN_GAPS")
@pytest.mark.parametrize("forms", KNOWN_GAPS, ids=[f[0] for f in KNOWN_GAPS])
def test_known_gaps_where_forms_do_not_meet(forms):
    assert {stem(f) for f in forms} == {stem(forms[0])}


@pytest.mark.parametrize("a, b", [("hop", "hope"), ("pin", "pine"), ("car", "care")])
def test_a_short_word_is_not_merged_with_its_e_form(a, b):
    assert stem(a) != stem(b)


@pytest.mark.parametrize("word, expected", [
    ("bugs", "bug"), ("sorting", "sort"), ("running", "run"), ("falling", "fall"), ("coding", "code"),
    ("adding", "adde"), ("fixed", "fixe"), ("boxes", "box"), ("watches", "watch"), ("stories", "story"),
    ("classes", "class"), ("optimize", "optimiz"), ("hoped", "hope"), ("typing", "type"),
    # Words a suffix rule must leave alone: short words, -ss / -us / -is, non-letters, and
    # suffixes that would leave fewer than three letters.
    ("bus", "bus"), ("status", "status"), ("analysis", "analysis"), ("class", "class"), ("c++", "c++"),
    ("py3k", "py3k"), ("mp3s", "mp3s"), ("ties", "tie"), ("used", "used"), ("sing", "sing"), ("code", "code"),
    ("type", "type"), ("toyed", "toy"), ("bowed", "bowe"), ("string", "stre"),
])
def test_stems(word, expected):
    assert stem(word) == expected


def test_words_are_lowercased_tokens_with_inner_apostrophes_and_code_characters():
    assert words("Don't PANIC: C++ and C# in 2024, snake_case!") == [
        "don't", "panic", "c++", "and", "c#", "in", "2024", "snake_case"]


def test_stems_strip_the_quotes_around_a_word():
    assert stems("'Sorting' the bugs") == ["sort", "the", "bug"]


def test_content_stems_drop_stopwords_and_one_letter_tokens():
    assert content_stems("Please fix the JS bugs in a script x 2") == ["fix", "js", "bug", "script"]
