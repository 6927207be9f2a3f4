"""Which agents are usable, how they are reached, and why the others are not."""

from __future__ import annotations

import pytest

from skillchat.config import AgentConfig, Config
from skillchat.errors import ConfigError
from skillchat.providers.detect import Environment, Server
from skillchat.providers.pool import build_pool, with_config_agents


def env_with(keys=(), ollama=None, proxy=None):
    return Environment(frozenset(keys), ollama, proxy, "LITELLM_PROXY_API_KEY" if proxy else None)


def status(pool, agent_id):
    return next(s for s in pool.statuses if s.agent_id == agent_id)


def test_a_provider_key_makes_its_agents_usable_and_the_rest_say_what_they_need(tiny):
    pool = build_pool(tiny, Config(), env_with(["OPENAI_API_KEY"], Server("http://o", False, problem="down")))
    assert set(pool.usable) == {"big", "mid"}  # gpt-5 and gpt-5-mini are OpenAI's
    assert pool.endpoints["big"].api_key_env == "OPENAI_API_KEY" and pool.endpoints["big"].via == "key"
    assert "Ollama at http://o is down" in status(pool, "small").how


def test_ollama_needs_the_model_pulled(tiny):
    pulled = build_pool(tiny, Config(), env_with(ollama=Server("http://o:1", True, frozenset({"llama3.1:latest"}))))
    assert pulled.usable == ["small"] and pulled.endpoints["small"].api_base == "http://o:1"
    missing = build_pool(tiny, Config(), env_with(ollama=Server("http://o:1", True, frozenset({"qwen:7b"}))))
    assert "ollama pull llama3.1" in status(missing, "small").how


def test_a_proxy_serves_what_it_lists(tiny):
    proxy = Server("http://proxy", True, frozenset({"gpt-5"}))
    pool = build_pool(tiny, Config(), env_with(proxy=proxy))
    ep = pool.endpoints["big"]
    assert (ep.model, ep.cost_model, ep.api_base, ep.via) == ("litellm_proxy/gpt-5", "gpt-5", "http://proxy", "proxy")
    assert "does not serve 'gpt-5-mini'" in status(pool, "mid").how and "OPENAI_API_KEY" in status(pool, "mid").how


def test_config_agents_add_change_disable_and_point_at_servers(tiny):
    cfg = Config(agents=(
        AgentConfig(id="local", model="openai/alpha", api_base="http://127.0.0.1:9/v1", api_key_env="LOCAL_KEY",
                    input_per_mtok=1.0, output_per_mtok=2.0),
        AgentConfig(id="mid", name="Renamed", context_window=123),
        AgentConfig(id="big", enabled=False),
    ))
    hb = with_config_agents(tiny, cfg)
    assert hb.agents["local"].price.input == pytest.approx(1e-6) and hb.agents["local"].prior.mean == 0.5
    assert (hb.agents["mid"].name, hb.agents["mid"].context_window, hb.agents["mid"].model) == ("Renamed", 123, "gpt-5-mini")
    without = build_pool(hb, cfg, env_with(["OPENAI_API_KEY"]), env={})
    assert "LOCAL_KEY" in status(without, "local").how and not status(without, "local").usable
    pool = build_pool(hb, cfg, env_with(["OPENAI_API_KEY"]), env={"LOCAL_KEY": "x"})
    assert pool.endpoints["local"].api_base == "http://127.0.0.1:9/v1" and pool.endpoints["local"].via == "config"
    assert status(pool, "big").how == "disabled in the config" and "big" not in pool.endpoints


def test_a_new_config_agent_without_a_model_is_a_config_error(tiny):
    with pytest.raises(ConfigError, match=r"agents\[0\].model"):
        with_config_agents(tiny, Config(agents=(AgentConfig(id="nobody"),)))


def test_demo_makes_every_enabled_agent_a_scripted_one(tiny):
    pool = build_pool(tiny, Config(agents=(AgentConfig(id="small", enabled=False),)), None, demo=True)
    assert set(pool.usable) == {"big", "mid"} and all(e.via == "demo" for e in pool.endpoints.values())
