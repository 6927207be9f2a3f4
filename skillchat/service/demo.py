"""Demo mode: scripted agents (providers/demo.py writes their answers; turns.py plays them).

Demo mode has to show relearn working, but demo ratings must never reach a handbook file or the
config. So: the same pipeline over the demo log, as a dry run; and activation swaps only the
in-memory handbook, keeping its version number, so that leaving demo mode (set_demo reloads
name@version from its file) drops it cleanly.
"""

from __future__ import annotations

from typing import Any

from skillchat.core.handbook import Handbook
from skillchat.errors import SkillchatError
from skillchat.providers.pool import with_config_agents
from skillchat.service.lifecycle import HandbookLifecycle
from skillchat.store import TraceStore


class DemoMode(HandbookLifecycle):
    def set_demo(self, on: bool) -> None:
        """Switch demo agents on or off; the handbook is reloaded so demo ratings never mix with real ones."""
        if on == self._demo:
            return
        self._demo = on
        self.demo_reason = ""
        self.use_handbook(self.handbook_ref, record=False)

    def relearn_demo(self, progress: Any = None, cancel: Any = None, **options: Any) -> Any:
        if not self._demo:
            raise SkillchatError("relearn_demo is for demo mode; use relearn")
        return self._run_relearn(DemoLog(self.store), progress, cancel, save=False, **options)

    def activate_demo(self, result: Any) -> Handbook:
        if not self._demo:
            raise SkillchatError("activate_demo is for demo mode; use activate")
        hb = result.handbook.copy()
        hb.version = self.handbook.version
        if hb.history:
            hb.history[-1] = {**hb.history[-1], "demo": True}
        self._adopt(with_config_agents(hb, self.config))
        return self.handbook


class DemoLog:
    """The trace store as a demo relearn reads it: demo turns count, and nothing can be written."""

    def __init__(self, store: TraceStore) -> None:
        self._store = store

    def rated_turns(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.rated_turns(*args, **{**kwargs, "include_demo": True})

    def catch_up(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.catch_up(*args, **{**kwargs, "include_demo": True})

    def add_handbook_event(self, *args: Any, **kwargs: Any) -> Any:
        raise SkillchatError("a demo relearn writes nothing")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
