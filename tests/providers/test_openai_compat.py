"""The direct path to OpenAI-compatible servers: which endpoints take it, HTTP framing, token counts, prices.

Fault kinds, usage and keys are checked against litellm's path in test_litellm_client.py; this file
covers what only the direct path has.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from skillchat.core.ports import Message, Price
from skillchat.errors import ProviderError
from skillchat.providers import litellm_client, openai_compat, unpriced
from skillchat.providers.litellm_client import CallStats, LitellmProvider, actual_cost, cost_if_known, load_litellm
from skillchat.providers.pool import Endpoint
from skillchat.tokens import TiktokenCounter

MSGS = [Message("user", "say hello to the tests")]


def ep(api_base="http://127.0.0.1:8080/v1", model="openai/local", via="config", **kw):
    return Endpoint("a", model, model, via, api_base, **kw)


@pytest.mark.parametrize("endpoint, direct", [
    (ep(), True),
    (ep("http://localhost:8080/v1"), True),
    (ep("http://[::1]:8080/v1"), True),
    (ep("http://192.168.1.20:8000/v1"), True),  # no proxy in the environment
    (ep("https://127.0.0.1:8443/v1"), False),  # TLS stays with litellm
    (ep(model="litellm_proxy/local"), False),
    (ep(model="ollama/llama3.1"), False),
    (ep(via="local"), True),  # however the pool found it
    (ep(mock_response="hi"), False),
    (ep(api_base=None), False),
])
def test_which_endpoints_are_called_directly(monkeypatch, endpoint, direct):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert openai_compat.handles(endpoint) is direct


def test_a_proxy_in_the_environment_sends_remote_servers_through_litellm_but_never_loopback(monkeypatch):
    monkeypatch.setenv("http_proxy", "http://proxy.corp.example:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert not openai_compat.handles(ep("http://192.168.1.20:8000/v1"))
    assert openai_compat.handles(ep("http://127.0.0.1:8000/v1"))
    monkeypatch.setenv("no_proxy", "192.168.1.20")
    assert openai_compat.handles(ep("http://192.168.1.20:8000/v1"))


@pytest.mark.parametrize("behaviour, kind", [("ok", None), ("break", "stream"), ("truncate", "stream")])
async def test_chunked_transfer_encoding_as_real_servers_send_it(openai_server, behaviour, kind):
    openai_server.chunked = True
    openai_server.behaviour["alpha"] = behaviour
    stats = CallStats()
    provider = LitellmProvider(env={})
    endpoint = Endpoint("a", "openai/alpha", "openai/alpha", "config", openai_server.api_base)
    if kind is None:
        text = "".join([p async for p in provider.stream(endpoint, MSGS, stats)])
        assert text == "Echo from alpha: say hello to the tests" and stats.completion_tokens == 4
    else:
        with pytest.raises(ProviderError) as e:
            async for _ in provider.stream(endpoint, MSGS, stats):
                pass
        assert e.value.kind == kind and stats.text.startswith("Echo from")
    assert openai_server.chat_requests()[0]["headers"]["user-agent"] == "skillchat"


async def test_without_usage_from_the_server_tokens_are_counted_here(openai_server):
    openai_server.behaviour["alpha"] = "nousage"
    counter = TiktokenCounter()
    stats = CallStats()
    endpoint = Endpoint("a", "openai/alpha", "openai/alpha", "config", openai_server.api_base,
                        price=Price.per_million(1, 2))
    text = "".join([p async for p in LitellmProvider(env={}, token_counter=counter).stream(endpoint, MSGS, stats)])
    assert not stats.usage_reported
    assert stats.prompt_tokens == counter.count(MSGS)
    assert stats.completion_tokens == counter.count([Message("assistant", text)]) - 6 > 0
    assert stats.cost_usd == pytest.approx(stats.prompt_tokens * 1e-6 + stats.completion_tokens * 2e-6)


async def test_a_long_answer_arrives_whole_and_in_order(openai_server):
    openai_server.answer_words = 3000
    openai_server.chunked = True
    stats = CallStats()
    endpoint = Endpoint("a", "openai/alpha", "openai/alpha", "config", openai_server.api_base)
    pieces = [p async for p in LitellmProvider(env={}).stream(endpoint, MSGS, stats)]
    assert len(pieces) == 3000 and "".join(pieces).split() == [f"w{i}" for i in range(3000)]
    assert stats.completion_tokens == 3000


async def test_stopping_mid_answer_closes_the_connection(openai_server):
    openai_server.answer_words, openai_server.word_interval_s = 200, 0.02
    endpoint = Endpoint("a", "openai/alpha", "openai/alpha", "config", openai_server.api_base)
    stream = LitellmProvider(env={}).stream(endpoint, MSGS, CallStats())
    assert await anext(stream) == "w0 "
    await stream.aclose()
    for _ in range(100):  # the server finds out at its next writes, well before its 200 words are sent
        if openai_server.hangups:
            break
        await asyncio.sleep(0.05)
    assert openai_server.hangups == 1


# --- prices without litellm -------------------------------------------------------------------

# litellm prices these although its JSON has no such key (case, dated snapshot, fine-tune) ...
PRICED_BY_NAME_RULES = ["openai/GPT-4o-mini", "openai/gpt-4o-mini-2099-01-01",
                        "openai/ft:gpt-4o-mini-2024-07-18:org::x"]
# ... and has no price for these, although a key like "claude-haiku-4-5" is in its JSON.
UNPRICED = ["openai/alpha", "openai/smollm2", "openai/meta-llama/Llama-3-8B", "openai/claude-haiku-4-5"]


@pytest.mark.parametrize("price", [None, Price.per_million(3, 5)])
@pytest.mark.parametrize("name", ["openai/gpt-4o-mini"] + PRICED_BY_NAME_RULES + UNPRICED)
def test_a_price_without_litellm_is_the_one_litellm_gives(monkeypatch, price, name):
    litellm = load_litellm()
    endpoint = Endpoint("a", name, name, "config", "http://127.0.0.1:1/v1", price=price)
    with_litellm = actual_cost(litellm, endpoint, 1000, 500)  # notes the names it has no price for
    monkeypatch.setattr(litellm_client, "_litellm", None)
    without = cost_if_known(endpoint, 1000, 500)
    if name in UNPRICED:
        assert without == with_litellm and with_litellm[1] is (price is not None)
        assert with_litellm[0] == pytest.approx(1000 * 3e-6 + 500 * 5e-6 if price else 0.0)
    else:
        assert without is None and with_litellm[0] > 0  # only litellm can price it: it has to be imported


def test_unpriced_models_are_remembered_for_one_price_list_only(monkeypatch, tmp_path):
    assert not unpriced.known("openai/local")
    unpriced.remember("openai/local")
    unpriced.remember("openai/local")
    assert unpriced.known("openai/local") and not unpriced.known("openai/other")
    copy = tmp_path / "prices.json"
    copy.write_text("{}")
    monkeypatch.setattr(unpriced, "cost_map_path", lambda: str(copy))  # litellm upgraded: a new price list
    assert not unpriced.known("openai/local")


def test_nothing_is_remembered_about_a_remote_price_list(monkeypatch):
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "False")
    unpriced.remember("openai/local")
    assert not unpriced.known("openai/local")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    assert not unpriced.known("openai/local")


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"price_list": 3, "models": "x"}', b"[1, 2]"])
def test_a_damaged_price_note_is_ignored_and_rewritten(skillchat_home, damage):
    path = skillchat_home / "cache" / "litellm-unpriced.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(damage)
    assert not unpriced.known("openai/local")
    unpriced.remember("openai/local")
    assert unpriced.known("openai/local") and json.loads(path.read_text())["models"] == ["openai/local"]


def test_the_message_of_an_error_body_cut_at_the_limit_is_still_found():
    from skillchat.providers.openai_compat import _message_in_cut_json

    body = '{"error": {"message": "quota exceeded \\u00e9 ' + "x" * 100 + '\\u00'
    assert _message_in_cut_json(body) == "quota exceeded é " + "x" * 100
    assert _message_in_cut_json("<html>captive portal</html>") == ""
