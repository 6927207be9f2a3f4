"""ChatServiceAPI: what the UI may ask of the chat service, and nothing more.

skillchat.service.ChatService implements it; so does the UI tests' scripted stand-in
(tests/ui/fakes.py), and tests/test_service_api.py checks both, at run time and with mypy. The UI
holds its service as this type, so a method it starts to need is added here first, where the other
implementations will be checked against it.

Types only: importing this module loads neither the service nor the store.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from skillchat.budgets import BudgetStatus
    from skillchat.core.handbook import Handbook
    from skillchat.events import TurnEvent
    from skillchat.handbooks import HandbookInfo
    from skillchat.store.comparisons import Comparison
    from skillchat.store.spend import SpendReport
    from skillchat.store.traces import ConversationInfo, TranscriptEntry, TurnRecord


class AgentPool(Protocol):
    @property
    def usable(self) -> Sequence[str]:
        """The agents that can be called here (a key, a server, or demo mode)."""
        ...


@runtime_checkable
class ChatServiceAPI(Protocol):
    cancel_reason: str  # what a cancelled turn is logged with (the app says which signal stopped it)
    policy: str  # "thompson" explores, "gentle" on at most 1 turn in 4, "greedy" not at all (/explore on|gentle|off)

    # Read-only to the UI: it changes them through the methods below.
    @property
    def handbook(self) -> Handbook:
        """The handbook routing now."""
        ...

    @property
    def lam(self) -> float:
        """The cost weight λ."""
        ...

    @property
    def pool(self) -> AgentPool: ...

    @property
    def demo_reason(self) -> str:
        """Why demo agents answer when the user did not ask for them ("" when they did)."""
        ...

    @property
    def demo(self) -> bool: ...

    @property
    def pinned(self) -> str | None: ...

    # --- turns ----------------------------------------------------------------------------------
    async def load_providers(self) -> None: ...

    def run_turn(self, conversation_id: int | None, text: str, pin: str | None = None) -> AsyncGenerator[TurnEvent, None]: ...

    def rate(self, turn_id: int | str, value: str | float | None, source: str = "user") -> int: ...

    def run_compare(self, conversation_id: int | None, text: str) -> AsyncGenerator[TurnEvent, None]: ...

    def choose(self, turn_id: int | str, outcome: str) -> Comparison: ...

    def comparison(self, turn_id: int | str) -> Comparison | None: ...

    # --- settings -------------------------------------------------------------------------------
    def set_lambda(self, lam: float) -> None: ...

    def pin(self, agent_id: str | None) -> None: ...

    def set_demo(self, on: bool) -> None: ...

    # --- handbooks ------------------------------------------------------------------------------
    def use_handbook(self, ref: str) -> Handbook: ...

    def handbook_infos(self) -> list[HandbookInfo]: ...

    def handbook_versions(self) -> list[HandbookInfo]: ...

    def relearn(self, progress: Any = None, cancel: Any = None) -> Any: ...

    def activate(self, result: Any = None) -> Handbook: ...

    def relearn_demo(self, progress: Any = None, cancel: Any = None) -> Any: ...

    def activate_demo(self, result: Any) -> Handbook: ...

    # --- the log --------------------------------------------------------------------------------
    def conversations(self, limit: int = 200) -> list[ConversationInfo]: ...

    def transcript(self, conversation_id: int) -> list[TranscriptEntry]: ...

    def transcript_page(self, conversation_id: int, turns: int,
                        before_turn: int | None = None) -> tuple[list[TranscriptEntry], bool]: ...

    def turn(self, turn_id: int) -> TurnRecord | None: ...

    def export(self, conversation_id: int, fmt: str = "markdown") -> str: ...

    def budget_status(self) -> BudgetStatus: ...

    def spend(self, by: str = "day", since: Any = None) -> SpendReport: ...

    def display_names(self) -> dict[str, str]: ...

    def close(self) -> None: ...
