"""What the log holds, read for the app and the CLI: conversations and turns, spend against the
budgets, and a conversation exported."""

from __future__ import annotations

import dataclasses
from typing import Any

from skillchat import handbooks
from skillchat.budgets import BudgetStatus
from skillchat.errors import SkillchatError
from skillchat.providers import keys
from skillchat.service.session import Session, parse_turn_id
from skillchat.store import clock
from skillchat.store.spend import SpendReport
from skillchat.store.traces import ConversationInfo, TranscriptEntry


class Records(Session):
    # --- conversations and turns --------------------------------------------------------------
    def turn(self, turn_id: int) -> Any:
        """One turn as logged (decision, usage, attempts, rating): what the app shows for a past turn."""
        return self.store.turn(parse_turn_id(turn_id))

    def new_conversation(self) -> int:
        return self.store.new_conversation(demo=self._demo)

    def conversations(self, limit: int = 200) -> list[ConversationInfo]:
        return self.store.conversations(limit)

    def transcript(self, conversation_id: int) -> list[TranscriptEntry]:
        return self.store.transcript(conversation_id)

    def transcript_page(self, conversation_id: int, turns: int,
                        before_turn: int | None = None) -> tuple[list[TranscriptEntry], bool]:
        return self.store.transcript_page(conversation_id, turns, before_turn)

    # --- money --------------------------------------------------------------------------------
    def budget_status(self) -> BudgetStatus:
        """Real spend against the limits; `reserved_usd` is what calls in flight (any process) hold."""
        today = clock.today()
        budget = self.config.budget
        held = self._reservations.held() if budget.daily_usd is not None or budget.monthly_usd is not None else 0.0
        return BudgetStatus.of(
            budget,
            self.store.spent_between(today.isoformat()),
            self.store.spent_between(today.replace(day=1).isoformat()),
            held,
        )

    def spend(self, by: str = "day", since: Any = None) -> SpendReport:
        """Real spend; in demo mode, the demo turns' pretend spend (report.demo says which)."""
        report = self.store.spend_report(by, since, demo=self._demo)
        return dataclasses.replace(report, budget=self.budget_status().to_dict())

    def display_names(self) -> dict[str, str]:
        """id -> name of agents, modes and skills of every handbook (spend covers turns routed with
        any of them), the handbook in use winning."""
        try:
            names = handbooks.display_names()
        except SkillchatError:
            names = {}
        hb = self.handbook
        names.update({a: hb.agents[a].name for a in hb.agents})
        names.update({s: hb.skills[s].name for s in hb.skills})
        names.update({m: hb.modes[m].name for m in hb.modes})
        return names

    # --- export -------------------------------------------------------------------------------
    def export(self, conversation_id: int, fmt: str = "markdown") -> str:
        from skillchat.exports import export_conversation

        out = export_conversation(self.store, conversation_id, fmt, self.handbook)
        for value in keys.secret_values(self._env, self._key_names):  # belt and braces: nothing below should hold one
            out = out.replace(value, "[redacted]")
        return out
