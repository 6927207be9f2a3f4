"""The one exception root. The CLI turns any SkillchatError into a one-line message and exit 2."""

from __future__ import annotations

from skillchat.text_safety import shown


class SkillchatError(Exception):
    """An error the user can act on; its message is shown as is, without a traceback."""

    exit_code = 2


class HandbookError(SkillchatError):
    """A handbook file that cannot be read or does not follow the format."""

    def __init__(self, source: str, path: str, problem: str) -> None:
        self.source, self.path, self.problem = source, path, problem
        # The source is a name or path the user gave: it may be anything, and any length.
        where = f"{shown(source, 200)}: {path}: " if path else f"{shown(source, 200)}: "
        super().__init__(where + problem)


class ConfigError(SkillchatError):
    """A configuration file or setting that cannot be used."""


class StoreError(SkillchatError):
    """The trace database cannot be opened or written."""


class ProviderError(SkillchatError):
    """A model call failed; `kind` says how (timeout, rate_limit, auth, server, stream, other)."""

    def __init__(self, message: str, kind: str = "other", agent_id: str | None = None) -> None:
        self.kind, self.agent_id = kind, agent_id
        super().__init__(message)


class BudgetExceeded(SkillchatError):
    """A turn was refused before any call because it would break a hard budget."""
