"""Skill inference that reads meaning, not only keywords: the default where `wordllama` is installed.

Indicator phrases recognise the requests someone thought of; a request worded differently matches
nothing, and then the keyword inferrer guesses from a weak hint or from earlier turns. Here each
skill also has a place in an embedding space: the centroid of its examples (and its name and
description) embedded with WordLlama's static token embeddings, a 16 MB model inside the wordllama
wheel. A text the keywords do not decide on their own gets evidence for the skills whose centroid
it is near (see `KeywordInferrer`'s `meaning`); the follow-up and topic-switch rules are the
keyword inferrer's own.

The model loads in a background thread (about 0.3 s, most of it numpy's import), started when the
inferrer is built, so the app's start-up does not wait for it; a turn that needs it before it is
ready waits, so the same conversation is always read the same way. It is read from the files in
the package's own folder: nothing here touches the network. When it cannot be loaded the inferrer
says why in `note` and reads by keywords alone.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path
from typing import Any, Mapping

from skillchat.core.handbook import Handbook, Skill
from skillchat.core.inference import KeywordInferrer

log = logging.getLogger(__name__)

# Softmax temperature over cosine similarities to the skill centroids: nearness differences of a
# few hundredths between skills are what separates them in this space.
TEMPERATURE = 0.05
# A mode gets evidence when it holds at least this much of the probability, and within it every
# skill at least SHARE as likely as its best; the mode's probability (scaled by WEIGHT) goes to
# the best one, so a mode spread thinly over many skills is not outvoted by a mode with one.
MODE_FLOOR = 0.1
SHARE = 0.5
WEIGHT = 1.0
# The request is at the start and end of a long paste, and the model's cost grows with length.
MAX_CHARS = 4_000
# The files of WordLlama's default model (l2_supercat, 256 dimensions) inside the pinned wheel.
WEIGHTS = Path("weights") / "l2_supercat_256.safetensors"
TOKENIZER = Path("tokenizers") / "l2_supercat_tokenizer_config.json"

_model: Any = None
_model_error: str | None = None
_model_lock = threading.Lock()


def model_dir() -> Path | None:
    """The wordllama package folder (its weights and tokenizer ship in it), or None if not installed.

    Found without importing the package (see `Embedder`)."""
    import importlib.util

    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def available() -> bool:
    return model_dir() is not None


def load_model() -> Embedder:
    """The shared WordLlama model, loaded once per process; raises RuntimeError saying why not."""
    global _model, _model_error
    with _model_lock:
        if _model is None and _model_error is None:
            try:
                _model = _load()
            except Exception as e:  # any failure means: read by keywords, and say why
                _model_error = f"{type(e).__name__}: {e}"
        if _model is None:
            raise RuntimeError(_model_error)
        return _model


class Embedder:
    """WordLlama's embedding (`WordLlamaInference.embed`): the mean of the token vectors.

    Read straight from the wheel's files rather than through `WordLlama.load`: importing the
    `wordllama` package costs a quarter of a second more (requests, its training config, compiled
    clustering code), configures the root logger (logging.basicConfig at INFO, which would print
    every library's info lines over the terminal UI), and its loader looks for the tokenizer under
    a folder the wheel does not have and then downloads it. tests/test_dense_inference.py checks
    that the vectors are the same as `WordLlama.load(cache_dir=<package folder>,
    disable_download=True)` gives.
    """

    def __init__(self, folder: Path) -> None:
        import numpy as np
        from safetensors import safe_open
        from tokenizers import Tokenizer

        with safe_open(str(folder / WEIGHTS), framework="np") as f:
            self.vectors = np.ascontiguousarray(f.get_tensor("embedding.weight").astype(np.float32))
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER))
        self.tokenizer.enable_padding()
        self.tokenizer.no_truncation()

    def embed(self, texts: list[str], *, norm: bool = True, batch: int = 64) -> Any:
        import numpy as np

        out = np.empty((len(texts), self.vectors.shape[1]), dtype=np.float32)
        for i in range(0, len(texts), batch):
            enc = self.tokenizer.encode_batch(texts[i : i + batch], add_special_tokens=False)
            ids = np.clip(np.array([e.ids for e in enc], dtype=np.int64), 0, len(self.vectors) - 1)
            mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
            summed = (self.vectors[ids] * mask[..., None]).sum(axis=1)
            vecs = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
            if norm:
                vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            out[i : i + len(enc)] = vecs
        return out


def _load() -> Embedder:
    folder = model_dir()
    if folder is None:
        raise ModuleNotFoundError("wordllama is not installed")
    # The tokenizer's thread pool must not meet a later fork (tests and the app start processes).
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return Embedder(folder)


def _skill_text(skill: Skill) -> list[str]:
    texts = [f"{skill.name}: {skill.description}" if skill.description else skill.name, *skill.examples]
    if skill.signature:
        # A learned skill has terms, not sentences: its strongest terms stand in for examples.
        top = sorted(skill.signature.items(), key=lambda kv: -kv[1])[:20]
        texts.append(" ".join(t for t, _ in top))
    return texts


class DenseMeaning:
    """Evidence per skill from nearness to each skill's centroid (a `MeaningScorer`)."""

    def __init__(self, handbook: Handbook, *, background: bool = True) -> None:
        self.handbook = handbook
        self._ready = threading.Event()
        self._centroids: Any = None
        self._ids: list[str] = []
        self._model: Embedder | None = None
        self.note: str | None = None
        if background:
            # Not a daemon: a process that ends while the model is still loading waits for it (a
            # few tenths of a second) instead of being torn down inside numpy's or the tokenizer's
            # native code, which can abort it.
            threading.Thread(target=self._build, name="skillchat-dense", daemon=False).start()
        else:
            self._build()

    # --- loading ----------------------------------------------------------------------------
    def _build(self) -> None:
        try:
            model = load_model()
            import numpy as np

            ids = list(self.handbook.skills)
            rows = []
            for sid in ids:
                vecs = model.embed(_skill_text(self.handbook.skills[sid]), norm=True)
                c = vecs.mean(axis=0)
                rows.append(c / (np.linalg.norm(c) or 1.0))
            self._centroids = np.stack(rows)
            self._ids = ids
            self._model = model
        except Exception as e:
            self.note = f"skill inference reads keywords only: the embedding model did not load ({e})"
            log.warning(self.note)
        finally:
            self._ready.set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the model is loaded (or has failed to); False on timeout."""
        return self._ready.wait(timeout)

    @property
    def active(self) -> bool:
        return self._ready.is_set() and self._centroids is not None

    # --- scoring ----------------------------------------------------------------------------
    def probabilities(self, text: str) -> dict[str, float]:
        """P(skill | text) over every skill; empty when the model is not loaded."""
        self._ready.wait()
        if self._centroids is None:
            return {}
        import numpy as np

        if len(text) > MAX_CHARS:
            text = text[: MAX_CHARS // 2] + "\n" + text[-MAX_CHARS // 2 :]
        q = self._model.embed([text], norm=True)[0]
        z = (self._centroids @ q) / TEMPERATURE
        p = np.exp(z - z.max())
        p /= p.sum()
        return {sid: float(v) for sid, v in zip(self._ids, p)}

    def __call__(self, text: str) -> Mapping[str, float]:
        probs = self.probabilities(text)
        by_mode: dict[str, list[tuple[str, float]]] = {}
        for sid, p in probs.items():
            by_mode.setdefault(self.handbook.skills[sid].mode, []).append((sid, p))
        out: dict[str, float] = {}
        for members in by_mode.values():
            mass = math.fsum(p for _, p in members)
            if mass < MODE_FLOOR:
                continue
            best = max(p for _, p in members)
            for sid, p in members:
                if p >= SHARE * best:
                    out[sid] = WEIGHT * mass * p / best
        return out


class DenseInferrer(KeywordInferrer):
    """The keyword inferrer, with embedding nearness deciding what the keywords leave open."""

    def __init__(self, handbook: Handbook, *, background: bool = True, **kwargs: Any) -> None:
        self.dense = DenseMeaning(handbook, background=background)
        super().__init__(handbook, meaning=self.dense, **kwargs)

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self.dense.wait_ready(timeout)

    @property
    def note(self) -> str | None:
        return self.dense.note
