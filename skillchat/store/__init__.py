"""The trace store (SQLite via sqlite-utils). Schema: docs/schema.md; migrations: migrations.py.

Names are imported lazily so that quick readers (`skillchat spend`) can use store.spend and
store.reading without paying for sqlite-utils' import.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "connect": "skillchat.store.database",
    "CatchUp": "skillchat.store.learning",
    "ConversationInfo": "skillchat.store.traces",
    "TraceStore": "skillchat.store.traces",
    "TranscriptEntry": "skillchat.store.traces",
    "TurnRecord": "skillchat.store.traces",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'skillchat.store' has no attribute {name!r}")
