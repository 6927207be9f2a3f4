"""Offline token counting with tiktoken.

tiktoken normally downloads its BPE files. litellm ships them, already named the way tiktoken's
cache expects, so we point tiktoken's cache at litellm's folder (found without importing litellm,
which takes seconds). If anything is missing, counting degrades to the core's heuristic instead
of reaching for the network.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from typing import Sequence

from skillchat.core.ports import HeuristicCounter, Message

ENCODING = "o200k_base"  # the current OpenAI family; close enough for others' estimates
_PER_MESSAGE = 4  # role and separators of the chat format
_PER_REPLY = 2


def _litellm_tokenizer_dir() -> str | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = os.path.join(list(spec.submodule_search_locations)[0], "litellm_core_utils", "tokenizers")
    return d if os.path.isdir(d) else None


@lru_cache(maxsize=1)
def _encoding():  # type: ignore[no-untyped-def]
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        d = _litellm_tokenizer_dir()
        if d is None:
            return None
        os.environ["TIKTOKEN_CACHE_DIR"] = d
    try:
        import tiktoken

        return tiktoken.get_encoding(ENCODING)
    except Exception:  # no file offline, or a broken cache: fall back, never fetch
        return None


class TiktokenCounter:
    def __init__(self) -> None:
        self._fallback = HeuristicCounter()

    @property
    def exact(self) -> bool:
        return _encoding() is not None

    def count(self, messages: Sequence[Message]) -> int:
        enc = _encoding()
        if enc is None:
            return self._fallback.count(messages)
        return sum(_PER_MESSAGE + _count_text(m.content) for m in messages) + _PER_REPLY


@lru_cache(maxsize=4096)
def _count_text(text: str) -> int:
    # Conversations are re-counted every turn; earlier messages hit this cache.
    return len(_encoding().encode(text, disallowed_special=()))
