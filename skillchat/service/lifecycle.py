"""The handbook lifecycle: which handbook routes (load, switch, activate), relearning it into a new
saved version, and its in-memory evidence kept in step with the ratings in the log."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from skillchat import handbooks
from skillchat.core.handbook import Handbook
from skillchat.core.learning import apply_rating_changes, rating_score
from skillchat.errors import SkillchatError
from skillchat.providers.pool import with_config_agents
from skillchat.routing import build_router
from skillchat.service.session import Session, parse_turn_id
from skillchat.store.traces import CatchUp


class HandbookLifecycle(Session):
    def _adopt(self, hb: Handbook) -> None:
        """Make `hb` the routing handbook: bring its evidence up to date with the log first."""
        changes, last = self.store.ratings_since(hb.name, hb.evidence_through, include_demo=self._demo)
        through = _apply_catch_up(hb, hb.evidence_through, changes, last)
        if not self._demo:
            for agent, mode, pt, ct, usd in self.store.cost_observations(hb.name, hb.version):
                if agent in hb.agents and mode in hb.modes:
                    hb.record_cost(agent, mode, pt, ct, usd)
        self.handbook = hb
        self._through = through
        self._build_pool()
        self.router = build_router(hb, token_counter=self._counter, prices=self._prices)
        self._note_unpriced()

    def use_handbook(self, ref: str, *, record: bool = True) -> Handbook:
        """Route with another handbook ("name" = its newest version, "name@N" = that version)."""
        hb = with_config_agents(handbooks.load(ref), self.config)
        self._adopt(hb)
        self.handbook_ref = ref
        if record:
            self.store.add_handbook_event("switch", hb.name, hb.version,
                                          {"ref": ref, "config_handbook": self.config.handbook})
        return hb

    def handbook_infos(self) -> list[handbooks.HandbookInfo]:
        """The newest version of every handbook there is to switch to."""
        return handbooks.list_handbooks()

    def handbook_versions(self) -> list[handbooks.HandbookInfo]:
        """Every version of the handbook routing now, oldest first (saved ones dated from the folder, not read)."""
        return handbooks.versions(self.handbook.name)

    def adopt_handbook(self, hb: Handbook, kind: str = "activate", detail: Mapping[str, Any] | None = None) -> None:
        """Route with a handbook object (a fresh relearn result); logs a handbook event of `kind`."""
        self._adopt(with_config_agents(hb, self.config))
        self.handbook_ref = hb.ref
        self.store.add_handbook_event(kind, hb.name, hb.version,
                                      {"ref": hb.ref, "config_handbook": self.config.handbook, **dict(detail or {})})

    # --- relearn (skillchat/relearning.py does the work) --------------------------------------
    def relearn(self, progress: Any = None, cancel: Any = None, **options: Any) -> Any:
        """Rebuild the active handbook from the rated log and save it as a new version.

        Blocking (run it in a thread); `progress(stage, done, total)` reports, `cancel.is_set()`
        stops it with nothing written (RelearnCancelled). The result (relearning.RelearnOutcome)
        has handbook, counts, changes, evaluation (off-policy, against the handbook routing now)
        and summary. The new version routes nothing until `activate(result)`.
        Options: half_life_days, evolve, min_split, seed, namer, policy, lam (see relearning.run).
        """
        if self._demo:
            raise SkillchatError("relearn learns from real ratings only; switch demo agents off first")
        before = self.config.handbook
        outcome = self._run_relearn(self.store, progress, cancel, **options)
        if outcome.path is not None:
            self._keep_routing_with(outcome.base, before, outcome.pinned)
        return outcome

    def _run_relearn(self, log: Any, progress: Any, cancel: Any, **options: Any) -> Any:
        """relearning.run over `log`, from the handbook routing now, at this session's λ and policy
        unless `options` say otherwise."""
        from skillchat import relearning

        options.setdefault("lam", self.lam)
        options.setdefault("policy", self.policy)
        return relearning.run(self.config, log, current=self.handbook, prices=self._prices,
                              progress=progress, cancel=cancel, **options)

    def _keep_routing_with(self, base: Handbook, config_before: str, pinned: str | None) -> None:
        """A new version was saved: make sure nothing starts routing with it before activation."""
        if pinned is not None:  # the config named the handbook without a version: now it names base's
            self.config = dataclasses.replace(self.config, handbook=pinned)
        ev = self.store.last_handbook_event(("switch", "activate"))
        if ev and ev["detail"].get("config_handbook") == config_before:
            ref = ev["detail"].get("ref") or ""
            if ref.partition("@")[0] == base.name and "@" not in ref:
                self.store.add_handbook_event("switch", base.name, base.version,
                                              {"ref": base.ref, "config_handbook": self.config.handbook})

    def activate(self, result: Any = None, ref: str | None = None) -> Handbook:
        """Route with a relearned version (a relearn result, or NAME@VERSION) from now on.

        Written to the config file (atomically, other settings kept), so the next start and the
        CLI agree; logged as an "activate" handbook event.
        """
        from skillchat import relearning

        if ref is None:
            if result is None:
                raise SkillchatError("nothing to activate: give a relearn result or NAME@VERSION")
            ref = getattr(result, "ref", None) or result.handbook.ref
        pinned = relearning.activate(self.config, ref)
        self.config = dataclasses.replace(self.config, handbook=pinned)
        hb = handbooks.load(pinned)
        self.adopt_handbook(hb, "activate", {"from": self.handbook.ref})
        return self.handbook

    # --- ratings: the in-memory evidence kept in step with the log ---------------------------
    def sync_ratings(self) -> None:
        """Apply ratings given since this handbook last looked (by another process, or `skillchat rate`)."""
        hb = self.handbook
        changes, last = self.store.ratings_since(hb.name, self._through, include_demo=self._demo)
        self._through = _apply_catch_up(hb, self._through, changes, last)

    def rate(self, turn_id: int | str, value: str | float | None, source: str = "user") -> int:
        """Store a rating at once (None clears it) and apply it to the active handbook; returns its id."""
        tid = parse_turn_id(turn_id)
        new = None if value is None else rating_score(value)
        hb = self.handbook
        # In one transaction: the rating, and every rating on this handbook's turns since the last
        # one it holds (this one included, with what the handbook held for the turn before it).
        _, rating_id, changes = self.store.rate_and_catch_up(tid, new, source, hb.name, self._through,
                                                              include_demo=self._demo)
        # The new rating's id is the largest there is (ids only grow, and this ran under the lock).
        self._through = _apply_catch_up(hb, self._through, changes, rating_id)
        return rating_id


def _apply_catch_up(hb: Handbook, through: int | None, changes: list[CatchUp], last: int) -> int | None:
    """Bring `hb` from holding the ratings up to `through` to holding every rating up to `last`
    (`changes` is store.catch_up's list: each turn's value as of `through`, and now, read in the
    same snapshot as `last`). Returns the new watermark."""
    apply_rating_changes(hb, changes)
    marks = [m for m in (through, last, *(c.rating_id for c in changes)) if m is not None and m > 0]
    return max(marks) if marks else through
