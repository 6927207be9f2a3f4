"""What the user has: provider keys in the environment, a local Ollama, a LiteLLM proxy.

Probes are plain HTTP GETs to the named host with short timeouts and no system proxy (a corporate
HTTP_PROXY must not swallow a request to 127.0.0.1), so start-up never hangs on a missing server.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skillchat.providers import keys

OLLAMA_DEFAULT = "http://127.0.0.1:11434"
LOCAL_TIMEOUT_S = 0.3
PROXY_TIMEOUT_S = 1.5


@dataclass(frozen=True)
class Server:
    url: str
    up: bool
    models: frozenset[str] = frozenset()
    problem: str = ""  # why it is not up, or why its model list is unknown


@dataclass(frozen=True)
class Environment:
    keys_set: frozenset[str]  # names of provider key variables that are set (never their values)
    ollama: Server | None
    proxy: Server | None
    proxy_key_env: str | None = None
    notes: tuple[str, ...] = field(default=())

    def has_key(self, names: tuple[str, ...]) -> str | None:
        return next((n for n in names if n in self.keys_set), None)


def ollama_url(env: Mapping[str, str]) -> str:
    """OLLAMA_HOST as Ollama itself reads it: host, host:port or a URL; 0.0.0.0 means this machine."""
    raw = (env.get(keys.OLLAMA_HOST_ENV) or "").strip()
    if not raw:
        return OLLAMA_DEFAULT
    if "://" not in raw:
        raw = "http://" + raw
    scheme, _, rest = raw.partition("://")
    host, _, port = rest.rstrip("/").partition(":")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    return f"{scheme}://{host}:{port or '11434'}"


def _get_json(url: str, timeout: float, headers: Mapping[str, str] | None = None) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, headers=dict(headers or {}))
    with opener.open(req, timeout=timeout) as resp:
        return json.loads(resp.read(2_000_000).decode("utf-8"))


def _why(e: Exception) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return type(e).__name__ if not str(e) else str(e)


def probe_ollama(url: str, timeout: float = LOCAL_TIMEOUT_S) -> Server:
    try:
        port = urllib.parse.urlsplit(url).port
    except ValueError:  # not a number, or past 65535
        port = 0
    if port is not None and not 1 <= port <= 65535:
        return Server(url, False, problem=f"not reachable (its port must be a whole number ≥ 1 and ≤ 65535; "
                                          f"check {keys.OLLAMA_HOST_ENV})")
    try:
        data = _get_json(url.rstrip("/") + "/api/tags", timeout)
    except Exception as e:  # refused, timed out, not JSON: all mean "no usable Ollama here"
        return Server(url, False, problem=f"not reachable ({_why(e)})")
    names: set[str] = set()
    for m in data.get("models", []) if isinstance(data, dict) else []:
        for k in ("name", "model"):
            if isinstance(m.get(k), str):
                names.add(m[k])
    return Server(url, True, frozenset(names))


def probe_proxy(url: str, api_key: str | None, timeout: float = PROXY_TIMEOUT_S) -> Server:
    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    last = ""
    for path in ("/v1/models", "/models"):
        try:
            data = _get_json(base + path, timeout, headers)
        except Exception as e:
            last = _why(e)
            continue
        ids = {m.get("id") for m in data.get("data", []) if isinstance(m, dict)} if isinstance(data, dict) else set()
        return Server(base, True, frozenset(i for i in ids if isinstance(i, str)))
    return Server(base, False, problem=f"did not answer ({keys.redact(last)})")


def detect(env: Mapping[str, str] | None = None, *, probe: bool = True) -> Environment:
    env = os.environ if env is None else env
    names = {n for ns in keys.PROVIDER_KEYS.values() for n in ns if env.get(n)}
    ollama = probe_ollama(ollama_url(env)) if probe else None
    proxy = None
    proxy_url = env.get(keys.PROXY_URL_ENV)
    if proxy_url:
        proxy = probe_proxy(proxy_url, env.get(keys.PROXY_KEY_ENV)) if probe else Server(proxy_url, True)
    return Environment(frozenset(names), ollama, proxy, keys.PROXY_KEY_ENV if env.get(keys.PROXY_KEY_ENV) else None)
