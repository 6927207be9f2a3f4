"""Streaming straight from an OpenAI-compatible server over plain HTTP: a local model, llama.cpp, vLLM.

For an agent configured as `openai/<name>` with its own `api_base`, litellm's whole job is to POST
one JSON body and read server-sent events back, and importing it takes about four seconds while a
local server answers in milliseconds. httpx would take 0.3 s to import, so this speaks HTTP/1.1 on
asyncio's own streams (cancelling a turn closes the socket). It only takes plain-http endpoints
that no proxy stands in front of; TLS, proxies, other providers, the LiteLLM proxy, Ollama and the
demo's scripted answers stay with litellm. Every failure is a CallFailed whose kind is the one the
litellm path gives for the same fault, so fallback and the trace treat both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import urllib.request
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from skillchat.core.ports import Message

_ERROR_BODY_LIMIT = 64_000
_LINE_LIMIT = 1 << 20  # one SSE line (one chunk of an answer) is far smaller


def handles(ep: Any) -> bool:
    """Whether to call an endpoint directly: an OpenAI-compatible server at its own address, plain http, no proxy."""
    if not (ep.model.startswith("openai/") and ep.api_base and ep.mock_response is None):
        return False
    u = urlsplit(ep.api_base)
    if u.scheme != "http" or not u.hostname:
        return False
    # Loopback never goes through a proxy (a corporate HTTP_PROXY must not swallow it); anything
    # else does when the environment says so, and litellm knows how.
    return _is_loopback(u.hostname) or "http" not in urllib.request.getproxies() or bool(
        urllib.request.proxy_bypass(u.hostname))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CallFailed(Exception):
    """A failed direct call. `kind` as in classify(); None: judge it by `status_code`."""

    def __init__(self, message: str, kind: str | None = None, status_code: int | None = None) -> None:
        self.kind, self.status_code = kind, status_code
        super().__init__(message)


class DirectCall:
    """One streamed chat completion: open() sends it, deltas() yields the text, then `finished` and `usage`."""

    def __init__(self, api_base: str, model: str, messages: Sequence[Message], api_key: str | None,
                 timeout_s: float, *, max_tokens: int | None = None) -> None:
        self.api_base = api_base.rstrip("/")
        self.timeout_s = timeout_s
        # What litellm sends for openai/<name>: the name without the provider prefix, and nothing else
        # but the hard budget's max_tokens.
        body: dict[str, Any] = {
            "model": model.partition("/")[2],
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if max_tokens is not None:
            body["max_tokens"] = int(max_tokens)
        self.body = json.dumps(body).encode()
        self.api_key = api_key
        self.finished = False  # a finish_reason arrived: the model ended its answer
        self.usage: tuple[int, int] | None = None  # (prompt, completion) tokens, as the server counted them
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._headers: dict[str, str] = {}

    async def _io(self, awaitable: Any) -> Any:
        """One network step, with the call's timeout (like litellm's: per step, not for the whole answer)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await awaitable
        except TimeoutError:
            raise CallFailed(f"no answer from {self.api_base} for {self.timeout_s:g} s", "timeout") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            raise CallFailed(f"the connection to {self.api_base} failed: {_reason(e)}", "server") from None

    async def open(self) -> None:
        u = urlsplit(self.api_base + "/chat/completions")
        host, port = u.hostname or "", u.port or 80
        self._reader, self._writer = await self._io(asyncio.open_connection(host, port, limit=_LINE_LIMIT))
        head = [f"POST {u.path or '/'}{'?' + u.query if u.query else ''} HTTP/1.1",
                f"Host: {u.netloc.rpartition('@')[2]}",
                "Content-Type: application/json", "Accept: text/event-stream", f"Content-Length: {len(self.body)}",
                "Connection: close", "User-Agent: skillchat"]
        if self.api_key:
            head.append(f"Authorization: Bearer {self.api_key}")
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + self.body)
        await self._io(self._writer.drain())
        status_line = (await self._io(self._reader.readline())).decode("latin-1").strip()
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise CallFailed(f"{self.api_base} does not speak HTTP: {status_line[:80]!r}", "server")
        while line := (await self._io(self._reader.readline())).decode("latin-1").strip():
            name, _, value = line.partition(":")
            self._headers[name.strip().lower()] = value.strip()
        status = int(parts[1])
        if not 200 <= status < 300:
            raise CallFailed(f"HTTP {status}: {await self._error_text() or (parts[2] if len(parts) > 2 else '')}",
                             status_code=status)

    async def _body(self) -> AsyncIterator[bytes]:
        reader = self._reader
        assert reader is not None
        if "chunked" in self._headers.get("transfer-encoding", "").lower():
            while True:
                line = (await self._io(reader.readline())).split(b";")[0].strip()
                try:
                    size = int(line, 16)
                except ValueError:  # b"" at the end of the connection: it broke off
                    raise CallFailed(f"the connection to {self.api_base} broke mid-answer", "server") from None
                if size == 0:
                    return
                data = await self._io(reader.readexactly(size + 2))
                yield data[:-2]
        elif "content-length" in self._headers:
            left = int(self._headers["content-length"])
            while left > 0:
                data = await self._io(reader.read(min(left, 65536)))
                if not data:
                    raise CallFailed(f"the connection to {self.api_base} broke with {left} bytes still to come",
                                     "server")
                left -= len(data)
                yield data
        else:
            while data := await self._io(reader.read(65536)):
                yield data

    async def _error_text(self) -> str:
        raw = b""
        with contextlib.suppress(CallFailed):
            async for part in self._body():
                raw += part
                if len(raw) > _ERROR_BODY_LIMIT:
                    break
        text = raw.decode("utf-8", "replace").strip()
        try:
            text = _message_of(json.loads(text)) or text
        except ValueError:  # not JSON, or a long JSON body cut at the limit: its message may still be there
            text = _message_in_cut_json(text) or text
        return text[:300]

    async def deltas(self) -> AsyncIterator[str]:
        pending, data = b"", []
        async for block in self._body():
            pending += block
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.rstrip(b"\r").decode("utf-8", "replace")
                if line:
                    field, _, value = line.partition(":")
                    if field == "data":
                        data.append(value[1:] if value.startswith(" ") else value)
                    continue
                if data:  # a blank line ends an event
                    event, data = "\n".join(data), []
                    if event.strip() == "[DONE]":
                        return
                    for piece in self._take(event):
                        yield piece
        if pending.strip().startswith(b"data:"):  # a last event without its line end
            data.append(pending.decode("utf-8", "replace").partition(":")[2].strip())
        if data and "\n".join(data).strip() != "[DONE]":
            for piece in self._take("\n".join(data)):
                yield piece

    def _take(self, event: str) -> list[str]:
        try:
            chunk = json.loads(event)
        except ValueError:
            raise CallFailed(f"the server sent something that is not JSON: {event[:80]!r}", "stream") from None
        if not isinstance(chunk, dict):
            raise CallFailed(f"the server sent something that is not a chunk: {event[:80]!r}", "stream")
        if chunk.get("error") is not None:
            err = chunk["error"]
            code = str(err.get("code")) if isinstance(err, dict) else ""
            raise CallFailed(f"the server reported an error: {_message_of(chunk) or event[:200]}",
                             status_code=int(code) if code.isdigit() else None)
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            self.usage = (int(usage.get("prompt_tokens") or 0), int(usage["completion_tokens"]))
        pieces = []
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            if choice.get("finish_reason") is not None:
                self.finished = True
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str) and content:
                pieces.append(content)
        return pieces

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()  # closing is enough: waiting for the peer would delay a cancelled turn


def _reason(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, asyncio.IncompleteReadError):
        return "it closed mid-answer"
    return str(e) or type(e).__name__


_MESSAGE_START = re.compile(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)')


def _message_in_cut_json(text: str) -> str:
    """The "message" string of an OpenAI-style error body that was cut short, decoded as far as it goes."""
    m = _MESSAGE_START.search(text)
    if m is None:
        return ""
    fragment = m.group(1)
    for end in range(len(fragment), max(len(fragment) - 6, -1), -1):  # drop a cut-off escape such as \u00
        with contextlib.suppress(ValueError):
            return str(json.loads('"' + fragment[:end] + '"'))
    return ""


def _message_of(doc: Any) -> str:
    """The human part of an error body: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or a bare string."""
    if isinstance(doc, dict):
        for key in ("error", "detail", "message"):
            inner = doc.get(key)
            if isinstance(inner, dict):
                return _message_of(inner)
            if isinstance(inner, str) and inner:
                return inner
    return ""
