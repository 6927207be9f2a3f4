"""Side-by-side comparisons in the trace store: two turns answering one user message (migration m006).

Each answer is an ordinary turn (its decision, usage, cost and rating), logged with policy
"compare" and the chance the comparison had of calling its agent. This table pairs them and keeps
the user's pick, which also says which answer the conversation goes on from (TraceStore.history).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from skillchat.core.compare import OUTCOMES
from skillchat.core.decision import RoutingDecision
from skillchat.errors import StoreError
from skillchat.store import clock
from skillchat.store.locking import retry_read

if TYPE_CHECKING:
    from skillchat.store.traces import TraceStore


@dataclass(frozen=True, slots=True)
class Comparison:
    left_turn: int
    right_turn: int
    outcome: str | None  # None until the user picks

    @property
    def turns(self) -> tuple[int, int]:
        return self.left_turn, self.right_turn


class Comparisons:
    """The comparisons table of one TraceStore, written under its lock and in its transactions."""

    def __init__(self, store: TraceStore) -> None:
        self.store = store

    def start(self, conversation_id: int, user_message_id: int, left: RoutingDecision, right: RoutingDecision,
              *, demo: bool, status: str = "running", error: str | None = None) -> Comparison:
        """Both turns and their pairing in one transaction: a comparison is never logged half."""
        st = self.store

        def write() -> Comparison:
            lt = st.start_turn(conversation_id, user_message_id, left, demo=demo, status=status, error=error)
            rt = st.start_turn(conversation_id, user_message_id, right, demo=demo, status=status, error=error)
            st.db.execute(
                """INSERT INTO comparisons (conversation_id, user_message_id, left_turn, right_turn, created_at)
                   VALUES (?, ?, ?, ?, ?)""",
                [conversation_id, user_message_id, lt, rt, clock.now_iso()],
            )
            return Comparison(lt, rt, None)

        return st._transact(write)  # noqa: SLF001 (the store's own write path: its lock and retries)

    def of_turn(self, turn_id: int) -> Comparison | None:
        """The comparison a turn answered in (either side), or None for an ordinary turn."""
        st = self.store

        def read() -> tuple | None:
            return st.db.execute(
                "SELECT left_turn, right_turn, outcome FROM comparisons WHERE left_turn = ? OR right_turn = ?",
                [turn_id, turn_id],
            ).fetchone()

        with st._lock:  # noqa: SLF001 (reads take the store's lock too, see traces._locked)
            r = read() if st.db.conn.in_transaction else retry_read(read, what=st._what)  # noqa: SLF001
        return Comparison(r[0], r[1], r[2]) if r else None

    def decide(self, turn_id: int, outcome: str) -> Comparison:
        """Record the user's pick for the comparison `turn_id` answered in."""
        if outcome not in OUTCOMES:
            raise StoreError(f"a comparison outcome is one of {', '.join(OUTCOMES)}, not {outcome!r}")
        found = self.of_turn(turn_id)
        if found is None:
            raise StoreError(f"turn {turn_id} was not part of a comparison")
        self.store._transact(lambda: self.store.db.execute(  # noqa: SLF001
            "UPDATE comparisons SET outcome = ?, decided_at = ? WHERE left_turn = ?",
            [outcome, clock.now_iso(), found.left_turn]))
        return Comparison(found.left_turn, found.right_turn, outcome)
