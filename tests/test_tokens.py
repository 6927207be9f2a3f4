"""Offline token counts, and the parsed encoding kept in the cache folder."""

from __future__ import annotations

import marshal

import pytest

from skillchat import tokens
from skillchat.core.ports import Message

TEXTS = ["Hello offline world", "def f(x):\n    return x ** 2  # émoji 🎉 and 中文", ""]


@pytest.fixture
def fresh_encoding():
    tokens._encoding.cache_clear()
    tokens._count_text.cache_clear()
    yield
    tokens._encoding.cache_clear()
    tokens._count_text.cache_clear()


def reference_counts() -> list[int]:
    import tiktoken

    enc = tiktoken.get_encoding(tokens.ENCODING)  # tiktoken's own loading, with no cache of ours
    return [len(enc.encode(t, disallowed_special=())) for t in TEXTS]


def our_counts() -> list[int]:
    return [len(tokens._encoding().encode(t, disallowed_special=())) for t in TEXTS]


def test_the_kept_encoding_counts_exactly_as_tiktoken_does(skillchat_home, fresh_encoding):
    cached = skillchat_home / "cache" / f"tiktoken-{tokens.ENCODING}.marshal"
    assert not cached.exists()
    first = our_counts()
    assert cached.exists()  # written on the first start ...
    tokens._encoding.cache_clear()
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
