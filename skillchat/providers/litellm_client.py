"""Streaming chat calls, with usage, actual cost, latency and time to first token.

litellm takes about four seconds to import, so nothing here imports it at module level:
`load_litellm()` does, once, off the event loop, and only when a call needs it. An agent that is
an OpenAI-compatible server of the user's own is called directly (openai_compat), and its cost
needs no litellm once litellm has been seen to have no price for its model (unpriced). Every
failure leaves this module as a ProviderError whose `kind` drives fallback and whose message
holds no key value.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from skillchat.background import in_daemon_thread
from skillchat.core.ports import HeuristicCounter, Message, TokenCounter
from skillchat.errors import ProviderError
from skillchat.providers import keys, openai_compat, unpriced
from skillchat.providers.pool import Endpoint
from skillchat.tokens import answer_tokens

DEFAULT_TIMEOUT_S = 60.0
_lock = threading.Lock()
_litellm: Any = None
# Providers whose streams always end with a finish_reason: ending without one means the
# connection dropped mid-answer, even when the HTTP body itself ended cleanly.
_FINISH_REASON_RELIABLE = ("openai", "litellm_proxy", "azure", "anthropic", "hosted_vllm", "openai_like")


def load_litellm() -> Any:
    """Import and quieten litellm (slow the first time; thread-safe)."""
    global _litellm
    with _lock:
        if _litellm is None:
            # Never fetch the price list over the network, whoever imports litellm first.
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            litellm.suppress_debug_info = True  # else it prints provider-list hints to stdout
            litellm.turn_off_message_logging = True
            if hasattr(litellm, "telemetry"):
                litellm.telemetry = False
            # Its log lines would land on the TUI's screen; failures reach us as exceptions anyway.
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
            _litellm = litellm
    return _litellm


async def _imported_litellm() -> Any:
    """litellm, imported (seconds, the first time) on a thread that an exit does not wait for."""
    return _litellm or await in_daemon_thread(load_litellm, "loading litellm")


def warm_up(litellm: Any) -> None:
    """One offline mock call, so the first real turn does not pay litellm's lazy imports and
    tokenizer load (about half a second) on the event loop. Never fails."""
    try:
        stream = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "warm up"}],
                                    mock_response="ok", stream=True, stream_options={"include_usage": True})
        for _ in stream:
            pass
    except Exception:
        pass


def litellm_loaded() -> bool:
    return _litellm is not None


@dataclass
class CallStats:
    """Filled in while a call streams; complete once the stream ends without an error."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_reported: bool = False  # False: the tokens were counted here, not by the provider
    cost_usd: float = 0.0
    cost_known: bool = False
    latency_s: float = 0.0
    ttft_s: float | None = None


class LitellmProvider:
    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        token_counter: TokenCounter | None = None,
        env: Mapping[str, str] | None = None,
        direct: bool = True,
    ) -> None:
        self.timeout_s = timeout_s
        self.token_counter = token_counter or HeuristicCounter()
        self._env = env
        self.direct = direct  # False: every call through litellm, OpenAI-compatible servers too

    @property
    def env(self) -> Mapping[str, str]:
        return os.environ if self._env is None else self._env

    def _kwargs(self, ep: Endpoint, messages: Sequence[Message], max_tokens: int | None = None) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "model": ep.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "num_retries": 0,  # fallback to another agent beats retrying a failing one
            "timeout": self.timeout_s,
        }
        if max_tokens is not None:
            # Set by a hard budget: the answer may not cost more than the money left (litellm maps it
            # to max_completion_tokens for the models that want that).
            kw["max_tokens"] = int(max_tokens)
        if ep.api_base:
            kw["api_base"] = ep.api_base
        if (key := self._api_key(ep)) is not None:
            kw["api_key"] = key
        if ep.mock_response is not None:
            kw["mock_response"] = ep.mock_response
        return kw

    def _api_key(self, ep: Endpoint) -> str | None:
        if ep.api_key_env and self.env.get(ep.api_key_env):
            return self.env[ep.api_key_env]
        if ep.api_base and ep.via in ("config", "proxy"):
            return "not-needed"  # OpenAI-compatible servers without auth still need some key, or the client refuses
        return None

    async def stream(self, ep: Endpoint, messages: Sequence[Message], stats: CallStats,
                     *, chunk_delay_s: float = 0.0, max_tokens: int | None = None) -> AsyncGenerator[str, None]:
        if self.direct and openai_compat.handles(ep):
            call: Any = openai_compat.DirectCall(ep.api_base or "", ep.model, messages, self._api_key(ep),
                                                 self.timeout_s, max_tokens=max_tokens)
        else:
            call = _LitellmCall(await _imported_litellm(), self._kwargs(ep, messages, max_tokens), ep)
        t0 = time.monotonic()
        try:
            try:
                await call.open()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                stats.latency_s = time.monotonic() - t0
                raise self.error(e, ep, mid_stream=False) from None
            try:
                async for delta in call.deltas():
                    if stats.ttft_s is None:
                        stats.ttft_s = time.monotonic() - t0
                    stats.text += delta
                    yield delta
                    if chunk_delay_s:
                        await asyncio.sleep(chunk_delay_s)
            except asyncio.CancelledError:
                stats.latency_s = time.monotonic() - t0
                raise
            except Exception as e:
                stats.latency_s = time.monotonic() - t0
                await self._priceable(ep, stats)
                raise self.error(e, ep, mid_stream=bool(stats.text)) from None
        finally:
            await call.aclose()
        stats.latency_s = time.monotonic() - t0
        if not call.finished:
            await self._priceable(ep, stats)
            raise ProviderError(f"{ep.agent_id}: the answer stream ended before the model finished", "stream", ep.agent_id)
        await self._account(ep, messages, stats, call.usage)

    async def _priceable(self, ep: Endpoint, stats: CallStats) -> None:
        """Make a broken-off answer's cost computable: import litellm (in a thread) if pricing it needs that."""
        if stats.text and _litellm is None and not unpriced.known(ep.cost_model):
            await _imported_litellm()

    async def _account(self, ep: Endpoint, messages: Sequence[Message], stats: CallStats,
                       usage: tuple[int, int] | None) -> None:
        if usage is not None:
            stats.prompt_tokens, stats.completion_tokens = usage
            stats.usage_reported = True
        else:
            stats.prompt_tokens = self.token_counter.count(messages)
            stats.completion_tokens = answer_tokens(self.token_counter, stats.text)
        cost = cost_if_known(ep, stats.prompt_tokens, stats.completion_tokens)
        if cost is None:  # after the answer, not before its first token
            cost = actual_cost(await _imported_litellm(), ep, stats.prompt_tokens, stats.completion_tokens)
        stats.cost_usd, stats.cost_known = cost

    def error(self, e: BaseException, ep: Endpoint, *, mid_stream: bool) -> ProviderError:
        kind = classify(e, mid_stream=mid_stream)
        names = [ep.api_key_env] if ep.api_key_env else []
        return ProviderError(f"{ep.agent_id}: {_short(e, self.env, names)}", kind, ep.agent_id)


class _LitellmCall:
    """One streamed litellm.acompletion, with the same face as openai_compat.DirectCall."""

    def __init__(self, litellm: Any, kwargs: dict[str, Any], ep: Endpoint) -> None:
        self._litellm, self._kwargs, self._ep = litellm, kwargs, ep
        self._resp: Any = None
        self.usage: tuple[int, int] | None = None

    async def open(self) -> None:
        self._resp = await self._litellm.acompletion(**self._kwargs)

    async def deltas(self) -> AsyncIterator[str]:
        async for chunk in self._resp:
            u = getattr(chunk, "usage", None)
            if u is not None and getattr(u, "completion_tokens", None) is not None:
                self.usage = (int(u.prompt_tokens or 0), int(u.completion_tokens or 0))
            choices = getattr(chunk, "choices", None) or []
            delta = choices[0].delta.content if choices and choices[0].delta is not None else None
            if delta:
                yield delta

    @property
    def finished(self) -> bool:
        resp = self._resp
        return (
            self._ep.mock_response is not None
            or getattr(resp, "custom_llm_provider", None) not in _FINISH_REASON_RELIABLE
            or getattr(resp, "received_finish_reason", "?") is not None
            or getattr(resp, "intermittent_finish_reason", None) is not None
        )

    async def aclose(self) -> None:
        pass


def cost_if_known(ep: Endpoint, prompt_tokens: int, completion_tokens: int) -> tuple[float, bool] | None:
    """actual_cost() when it needs no litellm import (loaded already, or known to lack the price); else None."""
    if _litellm is not None:
        return actual_cost(_litellm, ep, prompt_tokens, completion_tokens)
    if unpriced.known(ep.cost_model):
        return _configured_cost(ep, prompt_tokens, completion_tokens)
    return None


def cost_so_far(ep: Endpoint, prompt_tokens: int, completion_tokens: int) -> float:
    """Best estimate without waiting for litellm, for a call that did not finish: the exact cost
    when it is known without the import, else the configured price, else 0."""
    known = cost_if_known(ep, prompt_tokens, completion_tokens)
    return (known or _configured_cost(ep, prompt_tokens, completion_tokens))[0]


def actual_cost(litellm: Any, ep: Endpoint, prompt_tokens: int, completion_tokens: int) -> tuple[float, bool]:
    """litellm's price list first; the configured price for models it does not know; else 0, unknown.

    A cost that is not a finite number >= 0 is never recorded (it would count as $0 in the budget):
    the next source is tried, and with none left the cost is unknown.
    """
    try:
        p, c = litellm.cost_per_token(model=ep.cost_model, prompt_tokens=prompt_tokens,
                                      completion_tokens=completion_tokens)
        cost = float(p) + float(c)
        if math.isfinite(cost) and cost >= 0:
            return cost, True
    except Exception:  # ModelNotMappedError and friends: never let pricing break a turn
        unpriced.remember(ep.cost_model)
    return _configured_cost(ep, prompt_tokens, completion_tokens)


def _configured_cost(ep: Endpoint, prompt_tokens: int, completion_tokens: int) -> tuple[float, bool]:
    if ep.price is not None:
        cost = prompt_tokens * ep.price.input + completion_tokens * ep.price.output
        if math.isfinite(cost) and cost >= 0:
            return cost, True
    return 0.0, False


def classify(e: BaseException, *, mid_stream: bool = False) -> str:
    """timeout | rate_limit | auth | server | stream | other."""
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    L = _litellm
    kind = (e.kind if isinstance(e, openai_compat.CallFailed) else None) or "other"
    if kind == "other" and L is not None:
        if isinstance(e, L.Timeout):
            kind = "timeout"
        elif isinstance(e, L.RateLimitError):
            kind = "rate_limit"
        elif isinstance(e, (L.AuthenticationError, L.PermissionDeniedError)):
            kind = "auth"
        elif isinstance(e, getattr(L.exceptions, "MidStreamFallbackError", ())):
            kind = "stream"
        elif isinstance(e, (L.InternalServerError, L.ServiceUnavailableError, L.APIConnectionError)):
            kind = "server"
    if kind == "other":
        status = getattr(e, "status_code", None)
        if isinstance(status, int):
            kind = {429: "rate_limit", 401: "auth", 403: "auth", 408: "timeout"}.get(
                status, "server" if status >= 500 else "other")
    if mid_stream and kind in ("server", "other"):
        return "stream"
    return kind


def _short(e: BaseException, env: Mapping[str, str], key_names: Sequence[str]) -> str:
    text = str(e) or type(e).__name__
    ours = isinstance(e, openai_compat.CallFailed)  # written to be read as it is
    # litellm stacks prefixes ("litellm.RateLimitError: RateLimitError: OpenAIException - ..."): keep the cause.
    for sep in () if ours else (" - ", "Exception: "):
        if sep in text and len(text.rsplit(sep, 1)[1].strip()) > 3:
            text = text.rsplit(sep, 1)[1]
            break
    text = " ".join(text.split())
    if len(text) > 300:
        text = text[:297] + "..."
    text = keys.redact(text, env, key_names)
    return text if ours else f"{type(e).__name__}: {text}"
