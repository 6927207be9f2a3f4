"""Offline token counts: the parsed encoding kept in the cache folder, and short texts counted
without building tiktoken's encoder, to exactly tiktoken's counts."""

from __future__ import annotations

import marshal
import random
from pathlib import Path

import pytest

from skillchat import tokens
from skillchat.core.ports import Message

TEXTS = ["Hello offline world", "def f(x):\n    return x ** 2  # émoji 🎉 and 中文", ""]


def forget() -> None:
    for f in (tokens._args, tokens._encoding, tokens._splitter, tokens._count_text):
        f.cache_clear()


@pytest.fixture
def fresh_encoding():
    forget()
    yield
    forget()


def reference_counts() -> list[int]:
    import tiktoken

    enc = tiktoken.get_encoding(tokens.ENCODING)  # tiktoken's own loading, with no cache of ours
    return [len(enc.encode(t, disallowed_special=())) for t in TEXTS]


def our_counts() -> list[int]:
    return [tokens._count_text(t) for t in TEXTS]


def test_the_kept_encoding_counts_exactly_as_tiktoken_does(skillchat_home, fresh_encoding):
    cached = skillchat_home / "cache" / f"tiktoken-{tokens.ENCODING}.marshal"
    assert not cached.exists()
    first = our_counts()
    assert cached.exists()  # written on the first start ...
    tokens._args.cache_clear()
    tokens._count_text.cache_clear()
    assert our_counts() == first == reference_counts()  # ... and read back on the next one
    assert tokens.TiktokenCounter().count([Message("user", TEXTS[0])]) == 4 + first[0] + 2


@pytest.mark.parametrize("damage", [b"", b"not marshal at all", marshal.dumps(("another python|tiktoken 0.1", {})),
                                    marshal.dumps([1, 2, 3])])
def test_a_damaged_or_stale_cache_is_rebuilt(skillchat_home, fresh_encoding, damage):
    cached = skillchat_home / "cache" / f"tiktoken-{tokens.ENCODING}.marshal"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(damage)
    assert our_counts() == reference_counts()
    assert cached.read_bytes() != damage


def corpus(repo: Path) -> list[str]:
    """Prose, code, JSON, tables and many scripts: every file of the repository's text, by line and
    by paragraph, and random strings over letters, digits, marks, emoji and whitespace of many kinds."""
    texts = []
    for pattern in ("*.md", "docs/*.md", "handbooks/*.json", "tests/data/*", "benchmarks/data/*", "skillchat/**/*.py"):
        for path in sorted(repo.glob(pattern)):
            content = path.read_text(encoding="utf-8")
            texts += content.splitlines() + content.split("\n\n")
    rng = random.Random(7)
    alphabet = ("abcXYZ  \t\n\r\n0123456789'sll’.,;:!?-_/\\()[]{}<>|@#$%^&*~`\"=+"
                "éüßçñøåÆŒ ΑβγΔ привет мир 中文字符 日本語かなカナ 한국어 العربية עברית हिन्दी ไทย "
                "🎉🙂👍🏽👨‍👩‍👧 \u0301\u0308 \u00a0\u2003\u200b <|endoftext|> ")
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400))) for _ in range(400)]
    texts += ["aaaa" * 100, "x" * 5000, "=" * 300, " " * 700, "ab" * 200 + " hello", "\ud800 lone surrogate"]
    return texts


def test_short_texts_are_counted_exactly_as_tiktoken_counts_them_without_its_encoder(fresh_encoding, repo):
    def short_pieces(text: str) -> bool:
        try:
            return len(text) <= tokens._LONG_TEXT and all(len(p.encode("utf-8")) <= tokens._LONG_PIECE
                                                          for p in tokens._splitter().findall(text))
        except UnicodeEncodeError:
            return False

    short = [t for t in corpus(repo) if short_pieces(t)]
    counts = [tokens._count_text(t) for t in short]
    assert tokens._encoding.cache_info().currsize == 0  # counted by our merges, tiktoken's encoder never built
    import tiktoken

    enc = tiktoken.get_encoding(tokens.ENCODING)
    assert len(short) > 3000
    for text, count in zip(short, counts, strict=True):
        assert count == len(enc.encode(text, disallowed_special=())), repr(text[:80])


def test_texts_with_long_pieces_are_counted_by_tiktoken(fresh_encoding):
    import tiktoken

    enc = tiktoken.get_encoding(tokens.ENCODING)
    for text in ("x" * 5000, "see " + "ab" * 300 + " here", "\ud800 lone surrogate", "=" * 3000,
                 "a short word " * 10_000):
        assert tokens._count_text(text) == len(enc.encode(text, disallowed_special=()))
    assert tokens._encoding.cache_info().currsize == 1


def test_warming_up_loads_what_long_texts_need_too(fresh_encoding):
    tokens.TiktokenCounter().warm_up()
    assert tokens._splitter.cache_info().currsize == tokens._encoding.cache_info().currsize == 1
    assert tokens._encoding() is not None
