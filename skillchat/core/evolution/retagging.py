"""Re-tagging the log onto the current taxonomy: Retagger follows a handbook's provenance links
(merged_from, split_into, discovered_from, merged_discoveries) so every relearn maps old turns the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from skillchat.core import clustering
from skillchat.core.evolution.texts import DEFAULT_MIN_SIMILARITY, Texts, unit_vector
from skillchat.core.handbook import Handbook
from skillchat.core.learning import RatedTurn


class Retagger:
    """Maps logged skill weights onto a handbook's skills, following its provenance links."""

    def __init__(self, hb: Handbook, texts: Texts | None = None) -> None:
        self.hb = hb
        self.texts = texts or Texts()
        self.alias: dict[str, str] = {}
        self.children: dict[str, list[tuple[str, dict[str, float]]]] = {}
        self.discovered: list[tuple[str, dict[str, float], float]] = []
        self.fallback = hb.settings.fallback_skill
        for s in hb.skills.values():
            prov = s.provenance or {}
            for old in prov.get("merged_from", ()) or ():
                if isinstance(old, str) and old not in hb.skills:
                    self.alias[old] = s.id
            into = [c for c in (prov.get("split_into", ()) or ()) if c in hb.skills and hb.skills[c].signature]
            if into:
                self.children[s.id] = [(c, unit_vector(hb.skills[c].signature or {})) for c in into]
            # A discovered skill takes over fallback turns like its signature, and so does a skill that
            # discovered skills were merged into (the reader checked these links).
            links = [(d["signature"], d.get("min_similarity", DEFAULT_MIN_SIMILARITY))
                     for d in prov.get("merged_discoveries", ())]
            if isinstance(prov.get("discovered_from"), str):
                links.insert(0, (s.signature, prov.get("min_similarity", DEFAULT_MIN_SIMILARITY)))
            for sig, threshold in links:
                if sig:
                    self.discovered.append((s.id, unit_vector(sig), float(threshold)))
        self._inferrer: Any = None

    def needs(self, weights: Mapping[str, float]) -> bool:
        skills = self.hb.skills
        for s in weights:
            if s not in skills or s in self.children:
                return True
        return bool(self.discovered) and self.fallback in weights

    def __call__(self, turn: RatedTurn, weights: Mapping[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        unknown = 0.0
        for s, x in weights.items():
            if x <= 0:
                continue
            resolved = self._resolve(s)
            if resolved is None:
                unknown += x
            else:
                out[resolved] = out.get(resolved, 0.0) + x
        if not out and unknown > 0 and turn.text:
            out = self._infer(turn.text)
        if not out:
            return out
        out = self._split(turn.text, out)
        if self.discovered and out.get(self.fallback, 0.0) >= 0.5 * sum(out.values()):
            # The same rule as at discovery: only turns that mostly fell to the fallback skill.
            out = self._discover(turn.text, out)
            out = self._split(turn.text, out)
        return out

    def _resolve(self, s: str) -> str | None:
        seen = 0
        while s not in self.hb.skills:
            s2 = self.alias.get(s)
            if s2 is None or seen > 32:
                return None
            s, seen = s2, seen + 1
        return s

    def _split(self, text: str, w: dict[str, float]) -> dict[str, float]:
        for _ in range(8):  # children may have been split in turn
            parents = [s for s in w if s in self.children]
            if not parents:
                return w
            q = self.texts.vec(text)
            moved = False
            for p in parents:
                child = nearest_child(q, self.children[p])
                if child is not None:
                    x = w.pop(p)
                    w[child] = w.get(child, 0.0) + x
                    moved = True
            if not moved:
                return w
        return w

    def _discover(self, text: str, w: dict[str, float]) -> dict[str, float]:
        q = self.texts.vec(text)
        if not q:
            return w
        best, best_sim = None, 0.0
        for sid, sig, thr in self.discovered:
            sim = clustering.dot(q, sig)
            if sim >= thr and sim > best_sim:
                best, best_sim = sid, sim
        if best is not None:
            x = w.pop(self.fallback)
            w[best] = w.get(best, 0.0) + x
        return w

    def _infer(self, text: str) -> dict[str, float]:
        if self._inferrer is None:
            from skillchat.core.inference import KeywordInferrer

            self._inferrer = KeywordInferrer(self.hb)
        from skillchat.core.ports import Message

        return dict(self._inferrer.infer([Message("user", text)]).weights())


def nearest_child(q: Mapping[str, float], children: Sequence[tuple[str, Mapping[str, float]]]) -> str | None:
    """The child whose centroid is most similar to the text; None when it resembles none of them."""
    best, best_sim = None, 0.0
    for cid, sig in children:
        sim = clustering.dot(q, sig)
        if sim > best_sim:
            best, best_sim = cid, sim
    return best
