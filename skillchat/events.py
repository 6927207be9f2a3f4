"""What `ChatService.run_turn` yields, in order, for one turn. Plain data: the UI imports these freely.

A turn yields TurnStarted, then TokenChunk*, then TurnFinished; or TurnFailed at any point. A
side-by-side comparison (`run_compare`) yields CompareStarted, then both turns' events interleaved. When the
chosen agent fails, AgentFailed comes before the next agent's chunks: the UI should drop the text
streamed so far, because the next agent starts its answer from the beginning.
"""

from __future__ import annotations

from dataclasses import dataclass

from skillchat.attempts import Attempt
from skillchat.core.decision import RoutingDecision

__all__ = ["AgentFailed", "Attempt", "TokenChunk", "TurnEvent", "TurnFailed", "TurnFinished", "TurnStarted"]


@dataclass(frozen=True, slots=True)
class TurnStarted:
    turn_id: int
    conversation_id: int
    decision: RoutingDecision
    demo: bool


@dataclass(frozen=True, slots=True)
class TokenChunk:
    turn_id: int
    text: str


@dataclass(frozen=True, slots=True)
class AgentFailed:
    turn_id: int
    agent_id: str
    error: str
    kind: str
    next_agent: str | None  # None: nobody is left to try


@dataclass(frozen=True, slots=True)
class TurnFinished:
    turn_id: int
    agent_id: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    ttft_s: float | None
    fallback_chain: tuple[Attempt, ...]  # every call made, in order; the last one answered
    budget_warning: str | None
    # Says who answered when it was not the routed agent, e.g. "answered by Mid: Big hit a rate limit".
    note: str = ""
    cost_known: bool = True

    @property
    def fell_back(self) -> bool:
        return len(self.fallback_chain) > 1


@dataclass(frozen=True, slots=True)
class TurnFailed:
    turn_id: int | None  # None only when not even a turn row could be written
    error: str
    # The conversation the user message was saved in (new when run_turn was given None).
    conversation_id: int | None = None
    kind: str = "failed"  # failed | refused (budget) | no_agent


@dataclass(frozen=True, slots=True)
class CompareStarted:
    """A side-by-side comparison began: two turns, one per answer. Their events follow, interleaved
    (told apart by turn_id), each ending in its own TurnFinished or TurnFailed."""

    left: TurnStarted  # the best expected agent
    right: TurnStarted  # the challenger
    beats: float  # the challenger's chance of beating the best under the posterior

    @property
    def turn_ids(self) -> tuple[int, int]:
        return self.left.turn_id, self.right.turn_id


TurnEvent = TurnStarted | TokenChunk | AgentFailed | TurnFinished | TurnFailed | CompareStarted
