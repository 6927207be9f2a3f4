"""The learning read-model of the log: what relearn, off-policy evaluation and the online catch-up
read (rated turns with their decisions, ratings newer than a handbook, usage for cost statistics).
TraceStore's methods of the same names call these under its lock."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from skillchat.core.learning import RatedTurn
from skillchat.core.relearn import TurnCost
from skillchat.store import clock
from skillchat.store.database import named_rows


@dataclass(frozen=True, slots=True)
class CatchUp:
    """A rating newer than a handbook's evidence: `old` is what the handbook already holds for the turn."""

    turn_id: int
    agent_id: str
    skills: dict[str, float]
    old: float | None
    new: float | None
    rating_id: int


def catch_up(db: Database, handbook_name: str, through: int | None, *, include_demo: bool = False) -> list[CatchUp]:
    """Ratings after a handbook's watermark, on turns routed with a handbook of that name.

    Driven by the new ratings (`+t.handbook` keeps SQLite off the handbook index): it runs
    before every turn, and must cost nothing when there is nothing new, however long the log.
    """
    through = -1 if through is None else through
    demo = "" if include_demo else "AND t.demo = 0"
    rows = db.execute(
        f"""SELECT t.id, t.agent_id, t.skills_json,
                  (SELECT r1.value FROM ratings r1 WHERE r1.turn_id = t.id AND r1.id <= :through
                   ORDER BY r1.id DESC LIMIT 1),
                  (SELECT r2.value FROM ratings r2 WHERE r2.turn_id = t.id AND r2.replaced_by IS NULL),
                  (SELECT max(r3.id) FROM ratings r3 WHERE r3.turn_id = t.id)
           FROM turns t
           WHERE t.id IN (SELECT turn_id FROM ratings WHERE id > :through)
             AND +t.handbook = :name AND t.agent_id IS NOT NULL {demo}
           ORDER BY 6""",
        {"through": through, "name": handbook_name},
    ).fetchall()
    return [CatchUp(r[0], r[1], json.loads(r[2] or "{}"), r[3], r[4], r[5]) for r in rows]


def rated_turns(
    db: Database,
    handbook_name: str | None = None,
    since: datetime | str | None = None,
    *,
    after_rating: int | None = None,
    include_demo: bool = False,
) -> list[RatedTurn]:
    """Every turn whose current rating is a value, oldest rating first, for relearn and OPE.

    `since` keeps turns started at or after that time; `after_rating` keeps ratings with a
    larger id (a handbook's evidence_through). The agent is the one that answered. A turn a
    fallback agent answered has policy "fallback" and propensity 1: the policy never chose
    that agent with a known probability, so off-policy estimates should leave it out.
    Demo turns (scripted answers) are left out unless asked for.
    """
    where = ["r.replaced_by IS NULL", "r.value IS NOT NULL", "t.agent_id IS NOT NULL"]
    if not include_demo:
        where.append("t.demo = 0")
    params: list[Any] = []
    if handbook_name is not None:
        where.append("t.handbook = ?")
        params.append(handbook_name)
    if since is not None:
        where.append("t.started_at >= ?")
        params.append(clock.now_iso(since) if isinstance(since, datetime) else since)
    if after_rating is not None:
        where.append("r.id > ?")
        params.append(after_rating)
    rows = named_rows(
        db,
        f"""SELECT t.id AS turn_id, t.agent_id, t.mode, t.skills_json, r.value AS score, t.probability, t.policy,
                   t.chosen_agent, m.content AS text, t.started_at, t.cost_usd, t.prompt_tokens,
                   t.completion_tokens, r.id AS rating_id, t.decision_json, t.user_message_id
            FROM ratings r JOIN turns t ON t.id = r.turn_id
            LEFT JOIN messages m ON m.id = t.user_message_id
            WHERE {' AND '.join(where)} ORDER BY r.id""",
        params,
    )
    now = datetime.now(UTC)
    out = []
    for r in rows:
        answered_by_choice = r["agent_id"] == r["chosen_agent"]
        probs: dict[str, float] = {}
        if r["decision_json"]:
            ranking = json.loads(r["decision_json"]).get("ranking", ())
            probs = {a["agent_id"]: float(a["probability"]) for a in ranking}
        out.append(
            RatedTurn(
                turn_id=str(r["turn_id"]),
                agent_id=r["agent_id"],
                mode=r["mode"] or "",
                skills=json.loads(r["skills_json"] or "{}"),
                score=float(r["score"]),
                propensity=float(r["probability"]) if answered_by_choice and r["probability"] is not None else 1.0,
                policy=(r["policy"] or "thompson") if answered_by_choice else "fallback",
                text=r["text"] or "",
                age_days=max(0.0, (now - clock.parse_iso(r["started_at"])).total_seconds() / 86400.0),
                cost_usd=r["cost_usd"],
                prompt_tokens=r["prompt_tokens"],
                completion_tokens=r["completion_tokens"],
                # A comparison's two answers share the user's message: that is the pair.
                pair=str(r["user_message_id"]) if r["policy"] == "compare" else "",
                rating_id=int(r["rating_id"]),
                probabilities=probs,
            )
        )
    return out


def turn_costs(db: Database, handbook_name: str) -> list[TurnCost]:
    """Usage of every real answered (or cancelled) turn routed with this handbook, rated or not."""
    rows = db.execute(
        """SELECT agent_id, mode, prompt_tokens, completion_tokens, cost_usd, started_at FROM turns
           WHERE handbook = ? AND demo = 0 AND agent_id IS NOT NULL AND status IN ('answered', 'cancelled')
             AND cost_usd IS NOT NULL ORDER BY id""",
        [handbook_name],
    ).fetchall()
    now = datetime.now(UTC)
    return [TurnCost(r[0], r[1] or "", float(r[2] or 0), float(r[3] or 0), float(r[4]),
                     max(0.0, (now - clock.parse_iso(r[5])).total_seconds() / 86400.0)) for r in rows]


def cost_observations(db: Database, handbook_name: str, version: int,
                      limit: int = 5000) -> list[tuple[str, str, int, int, float]]:
    """Answered turns routed with exactly this handbook version (so not yet in its cost table)."""
    rows = db.execute(
        """SELECT agent_id, mode, prompt_tokens, completion_tokens, cost_usd FROM turns
           WHERE handbook = ? AND handbook_version = ? AND status = 'answered' AND demo = 0
             AND prompt_tokens IS NOT NULL AND cost_usd IS NOT NULL
           ORDER BY id DESC LIMIT ?""",
        [handbook_name, version, limit],
    ).fetchall()
    return [(r[0], r[1], int(r[2]), int(r[3] or 0), float(r[4])) for r in reversed(rows)]
