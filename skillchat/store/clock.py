"""Timestamps as stored: UTC ISO 8601 for instants, the local calendar date for budgets and spend."""

from __future__ import annotations

from datetime import UTC, date, datetime


def now_iso(at: datetime | None = None) -> str:
    at = at or datetime.now(UTC)
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_day(at: datetime | None = None) -> str:
    # Budgets are "today" as the user sees the calendar, not UTC.
    return (at or datetime.now(UTC)).astimezone().date().isoformat()


def parse_iso(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def today() -> date:
    return datetime.now().astimezone().date()
