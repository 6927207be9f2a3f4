"""Models litellm has no price for, remembered so that costing a call to one needs no litellm import.

A turn's cost is litellm's price when it has one, else the configured price. Only litellm can say
it has none: it matches names in ways a lookup in its JSON cannot copy (dated snapshots, fine-tune
names, any case). So its "no price" is kept on disk, for the copy of the price list it came from,
and a call to an OpenAI-compatible server of the user's own (a local model, usually unpriced)
needs litellm only the first time. With a remote price list (LITELLM_LOCAL_MODEL_COST_MAP unset)
nothing is kept: that list can change at any time.
"""

from __future__ import annotations

import json
import os

from skillchat import atomic, paths
from skillchat.pricing import cost_map_path

_FILE = "litellm-unpriced.json"
_MAX = 500  # names, newest kept: this is a cache, not a record


def _stamp() -> str | None:
    """Which price list the verdicts are about: litellm's bundled one, as installed now."""
    if os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP", "").lower() != "true":
        return None
    path = cost_map_path()
    try:
        st = os.stat(path) if path else None
    except OSError:
        return None
    return f"{path}:{st.st_size}:{st.st_mtime_ns}" if st else None


def _read(stamp: str) -> list[str]:
    try:
        doc = json.loads((paths.cache_dir() / _FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or damaged: start again, it is only a cache
        return []
    if not isinstance(doc, dict) or doc.get("price_list") != stamp or not isinstance(doc.get("models"), list):
        return []
    return [m for m in doc["models"] if isinstance(m, str)]


def known(model: str) -> bool:
    """True when litellm, with the price list installed now, was seen to have no price for `model`."""
    stamp = _stamp()
    return stamp is not None and model in _read(stamp)


def remember(model: str) -> None:
    stamp = _stamp()
    if stamp is None:
        return
    models = _read(stamp)
    if model in models:
        return
    models = (models + [model])[-_MAX:]
    try:
        atomic.write_text(paths.cache_dir() / _FILE, json.dumps({"price_list": stamp, "models": models}, indent=1))
    except OSError:
        pass  # a read-only cache costs a slower next call, nothing else
