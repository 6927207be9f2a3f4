"""Small interfaces through which the outside world reaches the routing core.

The core never imports tiktoken or litellm: token counting and prices come in through these
protocols, so the core stays fast to import and trivial to test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "user" | "assistant" | "system"
    content: str


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token."""

    input: float
    output: float

    @classmethod
    def per_million(cls, input_per_mtok: float, output_per_mtok: float) -> Price:
        return cls(input_per_mtok / 1e6, output_per_mtok / 1e6)


class TokenCounter(Protocol):
    def count(self, messages: Sequence[Message]) -> int: ...


class PriceBook(Protocol):
    def price(self, model: str) -> Price | None: ...


class HeuristicCounter:
    """About four characters a token plus a few tokens of chat framing per message.

    Used when no real tokenizer is available; tiktoken-backed counters live outside the core.
    """

    def count(self, messages: Sequence[Message]) -> int:
        return sum(4 + (len(m.content) + 3) // 4 for m in messages) + 2


class NoPrices:
    def price(self, model: str) -> Price | None:
        return None
