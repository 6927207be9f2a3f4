"""litellm's real code paths: mock_response streaming and errors, and a real local HTTP server.

Every test against the local server runs twice: through litellm, and through the direct path for
OpenAI-compatible servers (openai_compat); both must give the same text, usage, cost and fault kinds.
"""

from __future__ import annotations

import pytest
from openai_server import closed_port

from skillchat.core.ports import Message, Price
from skillchat.errors import ProviderError
from skillchat.providers.litellm_client import CallStats, LitellmProvider, classify, load_litellm
from skillchat.providers.pool import Endpoint

MSGS = [Message("user", "say hello to the tests")]


@pytest.fixture(scope="module")
def litellm():
    return load_litellm()


async def collect(provider, ep, **kw):
    stats = CallStats()
    pieces = [p async for p in provider.stream(ep, MSGS, stats, **kw)]
    return pieces, stats


async def test_mock_stream_has_text_usage_cost_and_timings(litellm):
    ep = Endpoint("a", "gpt-4o-mini", "gpt-4o-mini", "demo", mock_response="Hello there, general tests!")
    pieces, stats = await collect(LitellmProvider(), ep)
    assert len(pieces) > 3 and "".join(pieces) == stats.text == "Hello there, general tests!"
    assert stats.usage_reported and stats.completion_tokens > 0 and stats.prompt_tokens > 0
    p, c = litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=stats.prompt_tokens,
                                  completion_tokens=stats.completion_tokens)
    assert stats.cost_known and stats.cost_usd == pytest.approx(p + c) and stats.cost_usd > 0
    assert 0 <= stats.ttft_s <= stats.latency_s


@pytest.mark.parametrize("make, kind", [
    (lambda L: L.RateLimitError("slow down", llm_provider="openai", model="gpt-4o-mini"), "rate_limit"),
    (lambda L: L.AuthenticationError("bad key", llm_provider="openai", model="gpt-4o-mini"), "auth"),
    (lambda L: L.InternalServerError("boom", llm_provider="openai", model="gpt-4o-mini"), "server"),
    (lambda L: L.BadRequestError("nope", llm_provider="openai", model="gpt-4o-mini"), "other"),
])
async def test_mocked_provider_errors_become_provider_errors_of_the_right_kind(litellm, make, kind):
    ep = Endpoint("a", "gpt-4o-mini", "gpt-4o-mini", "key", mock_response=make(litellm))
    with pytest.raises(ProviderError) as e:
        await collect(LitellmProvider(), ep)
    assert e.value.kind == kind and e.value.agent_id == "a" and str(e.value).startswith("a: ")


async def test_a_mocked_timeout_is_a_timeout(litellm):
    provider = LitellmProvider(timeout_s=0.2)
    ep = Endpoint("a", "gpt-4o-mini", "gpt-4o-mini", "key", mock_response="late")
    kwargs = provider._kwargs(ep, MSGS) | {"mock_timeout": True}
    with pytest.raises(litellm.Timeout) as e:
        await litellm.acompletion(**kwargs)
    assert classify(e.value) == "timeout"


async def test_unmapped_model_uses_the_configured_price_or_costs_zero_marked_unknown(litellm):
    priced = Endpoint("a", "openai/not-a-real-model", "openai/not-a-real-model", "config",
                      price=Price.per_million(1.0, 2.0), mock_response="one two three")
    _, stats = await collect(LitellmProvider(), priced)
    assert stats.cost_known
    assert stats.cost_usd == pytest.approx(stats.prompt_tokens * 1e-6 + stats.completion_tokens * 2e-6)
    unpriced = Endpoint("a", "openai/not-a-real-model", "openai/not-a-real-model", "config", mock_response="x y z")
    _, stats = await collect(LitellmProvider(), unpriced)
    assert (stats.cost_usd, stats.cost_known) == (0.0, False)


def endpoint(server, model="alpha", key_env="FAKE_SERVER_KEY", price=None):
    return Endpoint("agent-" + model, f"openai/{model}", f"openai/{model}", "config", server.api_base, key_env, price)


@pytest.fixture(params=["litellm", "direct"])
def via(request):
    """Which path calls the OpenAI-compatible server: litellm, or skillchat's own HTTP client."""
    return request.param


def provider_via(via, **kw):
    return LitellmProvider(direct=via == "direct", **kw)


def served_by(server, via):
    """The request reached the server from the path the test asked for."""
    agent = server.chat_requests()[-1]["headers"].get("user-agent", "")
    return agent == "skillchat" if via == "direct" else "OpenAI" in agent


async def test_real_http_stream_carries_the_servers_usage_and_the_key_from_its_variable(litellm, openai_server, via):
    provider = provider_via(via, env={"FAKE_SERVER_KEY": "fake-key-abcdef123"})
    pieces, stats = await collect(provider, endpoint(openai_server, price=Price.per_million(1, 1)))
    assert "".join(pieces) == "Echo from alpha: say hello to the tests"
    assert (stats.prompt_tokens, stats.completion_tokens, stats.usage_reported) == (6, 4, True)
    assert stats.cost_usd == pytest.approx(10e-6) and stats.cost_known
    assert 0 <= stats.ttft_s <= stats.latency_s
    (req,) = openai_server.chat_requests()
    assert req["headers"]["authorization"] == "Bearer fake-key-abcdef123"
    assert req["body"] == {"model": "alpha", "messages": [{"role": "user", "content": "say hello to the tests"}],
                           "stream": True, "stream_options": {"include_usage": True}}
    assert served_by(openai_server, via)


@pytest.mark.parametrize("behaviour, kind", [
    ("500", "server"), ("429", "rate_limit"), ("401", "auth"), ("break", "stream"), ("truncate", "stream"),
    ("garbage", "stream"), ("html", "stream"),
])
async def test_real_http_failures_map_to_kinds(litellm, openai_server, behaviour, kind, via):
    openai_server.behaviour["alpha"] = behaviour
    stats = CallStats()
    with pytest.raises(ProviderError) as e:
        async for _ in provider_via(via, env={}).stream(endpoint(openai_server), MSGS, stats):
            pass
    assert e.value.kind == kind and e.value.agent_id == "agent-alpha"
    if behaviour in ("break", "truncate", "garbage"):
        assert stats.text.startswith("Echo from")  # the part that arrived is kept for the trace
    if behaviour.isdigit():
        assert f"scripted failure {behaviour}" in str(e.value)  # the server's own words reach the user
    assert served_by(openai_server, via)


async def test_a_silent_server_times_out(litellm, openai_server, via):
    openai_server.behaviour["alpha"] = "stall"
    openai_server.stall_s = 2.0
    with pytest.raises(ProviderError) as e:
        await collect(provider_via(via, timeout_s=0.3, env={}), endpoint(openai_server))
    assert e.value.kind == "timeout"


async def test_a_refused_connection_is_a_server_error(litellm, via):
    ep = Endpoint("a", "openai/alpha", "openai/alpha", "config", f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(ProviderError) as e:
        await collect(provider_via(via, env={}), ep)
    assert e.value.kind == "server"


async def test_an_error_that_echoes_the_key_is_redacted(litellm, openai_server, via):
    openai_server.behaviour["alpha"] = "401"
    openai_server.echo_auth = True
    provider = provider_via(via, env={"ODDLY_NAMED": "zz-secret-value-999"})
    with pytest.raises(ProviderError) as e:
        await collect(provider, endpoint(openai_server, key_env="ODDLY_NAMED"))
    assert "zz-secret-value-999" not in str(e.value) and "[redacted]" in str(e.value)
    assert served_by(openai_server, via)


async def test_an_agent_served_by_a_litellm_proxy_is_called_through_it(litellm, openai_server, tiny):
    from skillchat.config import AgentConfig, Config
    from skillchat.providers.detect import detect
    from skillchat.providers.pool import build_pool, with_config_agents

    env = {"LITELLM_PROXY_URL": openai_server.url, "LITELLM_PROXY_API_KEY": "pk-proxy-123456",
           "OLLAMA_HOST": f"127.0.0.1:{closed_port()}"}
    cfg = Config(agents=(AgentConfig(id="big", model="alpha"),))  # a model name only the proxy knows
    pool = build_pool(with_config_agents(tiny, cfg), cfg, detect(env), env=env)
    ep = pool.endpoints["big"]
    assert ep.via == "proxy" and pool.usable == ["big"]
    stats = CallStats()
    text = "".join([p async for p in LitellmProvider(env=env).stream(ep, MSGS, stats)])
    assert text == "Echo from alpha: say hello to the tests" and stats.completion_tokens == 4
    (req,) = openai_server.chat_requests()
    assert req["headers"]["authorization"] == "Bearer pk-proxy-123456"
