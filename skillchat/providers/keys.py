"""Which environment variable holds each provider's key, and keeping key values out of every output.

Only variable NAMES are ever stored or printed. Error texts from providers can echo a key back (an
"Incorrect API key provided: sk-..." message, a proxy that logs headers), so everything that leaves
the provider layer goes through `redact`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import overload

# litellm provider -> env vars it reads, first one preferred.
PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY"),
    "fireworks_ai": ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY"),
    "perplexity": ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
    "cohere": ("COHERE_API_KEY",),
    "cohere_chat": ("COHERE_API_KEY",),
}
PROXY_URL_ENV = "LITELLM_PROXY_URL"
PROXY_KEY_ENV = "LITELLM_PROXY_API_KEY"
OLLAMA_HOST_ENV = "OLLAMA_HOST"
# Local servers that need no key.
KEYLESS = ("ollama", "ollama_chat", "lm_studio", "llamafile", "hosted_vllm")

_SECRET_NAME = re.compile(r"(API_KEY|_KEY|_TOKEN|_SECRET|PASSWORD)$", re.IGNORECASE)
_MIN_SECRET_LEN = 6  # shorter values ("1", "true") would redact ordinary words


def provider_of(model: str, cost_map_provider: str | None = None) -> str | None:
    """The litellm provider of a model string: its prefix, or the price list's entry for bare names."""
    prefix, sep, _ = model.partition("/")
    if sep and (prefix in PROVIDER_KEYS or prefix in KEYLESS or prefix in ("litellm_proxy", "azure", "bedrock", "vertex_ai")):
        return prefix
    return cost_map_provider or (prefix if sep else None)


def key_names(provider: str | None) -> tuple[str, ...]:
    return PROVIDER_KEYS.get(provider or "", ())


def secret_values(env: Mapping[str, str] | None = None, extra_names: Iterable[str] = ()) -> list[str]:
    """Values of every variable that looks like it holds a credential, longest first."""
    env = os.environ if env is None else env
    names = set(extra_names) | {n for ns in PROVIDER_KEYS.values() for n in ns} | {PROXY_KEY_ENV}
    names |= {n for n in env if _SECRET_NAME.search(n)}
    values = {env[n] for n in names if n in env and len(env[n]) >= _MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


@overload
def redact(text: str, env: Mapping[str, str] | None = None, extra_names: Iterable[str] = ()) -> str: ...
@overload
def redact(text: None, env: Mapping[str, str] | None = None, extra_names: Iterable[str] = ()) -> None: ...


def redact(text: str | None, env: Mapping[str, str] | None = None, extra_names: Iterable[str] = ()) -> str | None:
    if not text:
        return text
    for value in secret_values(env, extra_names):
        if value in text:
            text = text.replace(value, "[redacted]")
    # Bearer tokens and sk-... keys that are not in this environment (a proxy's own key, say).
    text = re.sub(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", r"\1[redacted]", text)
    return re.sub(r"\bsk-[A-Za-z0-9_-]{8,}", "sk-[redacted]", text)
