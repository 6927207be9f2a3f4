"""The chat service: ChatService runs turns and everything around them, UI-free (see chat.py)."""

from skillchat.events import (
    AgentFailed,
    Attempt,
    TokenChunk,
    TurnEvent,
    TurnFailed,
    TurnFinished,
    TurnStarted,
)
from skillchat.service.chat import ChatService

__all__ = [
    "AgentFailed", "Attempt", "ChatService", "TokenChunk", "TurnEvent", "TurnFailed", "TurnFinished", "TurnStarted",
]
