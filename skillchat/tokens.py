"""Offline token counting with tiktoken.

tiktoken normally downloads its BPE files. litellm ships them, already named the way tiktoken's
cache expects, so we point tiktoken's cache at litellm's folder (found without importing litellm,
which takes seconds). If anything is missing, counting degrades to the core's heuristic instead
of reaching for the network.

Starting tiktoken costs 0.4 s of CPU, most of what routing `skillchat ask` costs: parsing the BPE
file's 200,000 base64 lines, then building its encoder from them. So the parsed ranks are kept in
skillchat's cache folder (marshal: loaded again in a quarter of the time), and short texts, what
routing mostly counts, are counted here by the same byte-pair merges tiktoken makes, over the same
ranks and split by the same pattern; tiktoken's encoder is built only for a text with a long piece,
where merging in Python would be slow. tests/test_tokens.py holds the two to the same counts.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from skillchat import atomic, paths
from skillchat.core.ports import HeuristicCounter, Message, TokenCounter

ENCODING = "o200k_base"  # the current OpenAI family; close enough for others' estimates
_PER_MESSAGE = 4  # role and separators of the chat format
_PER_REPLY = 2
# Merging here is quadratic in a piece's length and costs Python time per piece: past these, building
# tiktoken's encoder (0.15 s, once) is the cheaper way.
_LONG_PIECE = 256  # bytes
_LONG_TEXT = 100_000  # characters


def _litellm_tokenizer_dir() -> str | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = os.path.join(list(spec.submodule_search_locations)[0], "litellm_core_utils", "tokenizers")
    return d if os.path.isdir(d) else None


@lru_cache(maxsize=1)
def _args() -> dict[str, Any] | None:
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        d = _litellm_tokenizer_dir()
        if d is None:
            return None
        os.environ["TIKTOKEN_CACHE_DIR"] = d
    try:
        import tiktoken

        return _encoding_args(tiktoken.__version__)
    except Exception:  # no file offline, or a broken cache: fall back, never fetch
        return None


@lru_cache(maxsize=1)
def _encoding():  # type: ignore[no-untyped-def]
    args = _args()
    if args is None:
        return None
    import tiktoken

    return tiktoken.Encoding(**args)


@lru_cache(maxsize=1)
def _splitter():  # type: ignore[no-untyped-def]
    import regex  # tiktoken's own dependency, and its pattern's dialect

    args = _args()
    assert args is not None, "counting checks _args() before it splits"
    return regex.compile(args["pat_str"])


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


def answer_tokens(counter: TokenCounter, text: str) -> int:
    """Tokens of an answer's text alone, without the overhead of the message around it."""
    return max(0, counter.count([Message("assistant", text)]) - counter.count([Message("assistant", "")]))


class TiktokenCounter:
    def __init__(self) -> None:
        self._fallback = HeuristicCounter()

    @property
    def exact(self) -> bool:
        return _args() is not None

    def warm_up(self) -> None:
        """Load everything counting can need, long texts' encoder included (0.3 s): for a thread at start-up."""
        if _args() is not None:
            _splitter()
            _encoding()

    def count(self, messages: Sequence[Message]) -> int:
        if _args() is None:
            return self._fallback.count(messages)
        return sum(_PER_MESSAGE + _count_text(m.content) for m in messages) + _PER_REPLY


@lru_cache(maxsize=4096)
def _count_text(text: str) -> int:
    # Conversations are re-counted every turn; earlier messages hit this cache.
    pieces = None
    if len(text) <= _LONG_TEXT:
        try:
            pieces = [p.encode("utf-8") for p in _splitter().findall(text)]
        except UnicodeEncodeError:  # a lone surrogate: tiktoken knows how to mend it
            pass
    if pieces is None or any(len(p) > _LONG_PIECE for p in pieces):
        return len(_encoding().encode(text, disallowed_special=()))
    args = _args()
    assert args is not None, "count() checks _args() first"
    ranks = args["mergeable_ranks"]
    return sum(1 if p in ranks else _merged_length(p, ranks) for p in pieces)


def _merged_length(piece: bytes, ranks: dict[bytes, int]) -> int:
    """How many tokens byte-pair merging leaves of `piece`: tiktoken's rule, the adjacent pair of
    lowest rank first (the leftmost of equals), until no adjacent pair has a rank."""
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best, at = None, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best is None or rank < best):
                best, at = rank, i
        if best is None:
            break
        parts[at:at + 2] = [parts[at] + parts[at + 1]]
    return len(parts)
