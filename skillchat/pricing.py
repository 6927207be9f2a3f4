"""litellm's bundled price list, read as data.

Importing litellm takes about four seconds; the price list it ships is a JSON file, so routing
reads that file directly and stays fast. Actual costs of real calls are computed by litellm
itself in the provider layer; this is only for estimates before a call.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from functools import lru_cache
from typing import Any

from skillchat.core.ports import Price

_FREE_PREFIXES = ("ollama/", "ollama_chat/", "lm_studio/", "llamafile/")


def cost_map_path() -> str | None:
    """The price list litellm ships (what it reads with LITELLM_LOCAL_MODEL_COST_MAP set)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "model_prices_and_context_window_backup.json")


@lru_cache(maxsize=1)
def _cost_map() -> dict[str, Any]:
    path = cost_map_path()
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class LitellmPriceBook:
    def __init__(self, overrides: dict[str, Price] | None = None) -> None:
        self.overrides = overrides or {}

    def info(self, model: str) -> dict[str, Any] | None:
        cmap = _cost_map()
        if model in cmap:
            return cmap[model]
        _, _, bare = model.partition("/")
        return cmap.get(bare) if bare else None

    def price(self, model: str) -> Price | None:
        if model in self.overrides:
            return self.overrides[model]
        info = self.info(model)
        if info and info.get("input_cost_per_token") is not None:
            inp, out = _rate(info.get("input_cost_per_token")), _rate(info.get("output_cost_per_token"))
            return Price(inp, out) if inp is not None and out is not None else None
        if model.startswith(_FREE_PREFIXES):
            return Price(0.0, 0.0)  # local models cost nothing per token
        return None

    def context_window(self, model: str) -> int | None:
        info = self.info(model)
        return _count(info and (info.get("max_input_tokens") or info.get("max_tokens")))

    def max_output_tokens(self, model: str) -> int | None:
        """The model's own limit on answer tokens, when litellm's list knows it."""
        info = self.info(model)
        return _count(info and (info.get("max_output_tokens") or info.get("max_tokens")))


def _count(v: Any) -> int | None:
    """A token count from the price list, or None for anything that is not a whole number >= 1."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 1:
        return None
    return int(v)


def _rate(v: Any) -> float | None:
    """A per-token price from the price list: a finite number >= 0 (missing means free), else None."""
    if v is None:
        return 0.0
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        return None
    return float(v)
