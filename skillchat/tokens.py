"""Offline token counting with tiktoken.

tiktoken normally downloads its BPE files. litellm ships them, already named the way tiktoken's
cache expects, so we point tiktoken's cache at litellm's folder (found without importing litellm,
which takes seconds). If anything is missing, counting degrades to the core's heuristic instead
of reaching for the network.

Parsing the BPE file's 200,000 base64 lines takes 0.2 s of CPU on every start, most of what
routing `skillchat ask` costs, so the parsed encoding is kept in skillchat's cache folder (marshal:
loaded again in a quarter of the time).
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import sys
from functools import lru_cache
from typing import Any, Sequence

from skillchat import atomic, paths
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

        return tiktoken.Encoding(**_encoding_args(tiktoken.__version__))
    except Exception:  # no file offline, or a broken cache: fall back, never fetch
        return None


def _encoding_args(tiktoken_version: str) -> dict[str, Any]:
    """What tiktoken.Encoding is built from: from the cache when it was made by this Python and tiktoken."""
    # The BPE file's content is pinned by the hash tiktoken checks, so these two name it exactly.
    stamp = f"{sys.version}|tiktoken {tiktoken_version}|{ENCODING}"
    path = paths.cache_dir() / f"tiktoken-{ENCODING}.marshal"
    try:
        kept_stamp, args = marshal.loads(path.read_bytes())
        if kept_stamp == stamp and isinstance(args, dict):
            return args
    except (OSError, ValueError, EOFError, TypeError):  # none yet, damaged, or another format: rebuild
        pass
    from tiktoken_ext.openai_public import ENCODING_CONSTRUCTORS

    args = ENCODING_CONSTRUCTORS[ENCODING]()
    try:
        atomic.write_bytes(path, marshal.dumps((stamp, args)))
    except OSError:
        pass  # a read-only cache costs the parse next time, nothing else
    return args


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
