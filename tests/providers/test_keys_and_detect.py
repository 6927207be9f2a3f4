"""Key names per provider, redaction, and detection of Ollama and a LiteLLM proxy over real HTTP."""

from __future__ import annotations

import pytest
from openai_server import closed_port

from skillchat.providers import keys
from skillchat.providers.detect import detect, ollama_url, probe_ollama, probe_proxy


@pytest.mark.parametrize("model, cost_map, expected", [
    ("gpt-5", "openai", "openai"), ("claude-haiku-4-5", "anthropic", "anthropic"),
    ("gemini/gemini-2.5-pro", None, "gemini"), ("ollama/llama3.1", None, "ollama"),
    ("openai/whatever", None, "openai"), ("mystery", None, None),
])
def test_provider_of(model, cost_map, expected):
    assert keys.provider_of(model, cost_map) == expected


def test_redact_removes_key_values_and_key_shaped_strings():
    env = {"OPENAI_API_KEY": "sk-live-1234567890abcdef", "MY_SERVER_SECRET": "hunter2hunter2", "SHORT_KEY": "abc"}
    text = "bad key sk-live-1234567890abcdef; Authorization: Bearer zzzzzzzzzzzz; pw hunter2hunter2; abc stays"
    out = keys.redact(text, env)
    assert "sk-live-1234567890abcdef" not in out and "zzzzzzzzzzzz" not in out and "hunter2hunter2" not in out
    assert "abc stays" in out  # too short to be a key: redacting it would mangle ordinary words
    assert keys.redact("value CUSTOMVALUE123", {"ODD_NAME": "CUSTOMVALUE123"}, ["ODD_NAME"]) == "value [redacted]"


@pytest.mark.parametrize("host, url", [
    (None, "http://127.0.0.1:11434"), ("0.0.0.0", "http://127.0.0.1:11434"), ("example:1234", "http://example:1234"),
    ("https://box:99/", "https://box:99"), ("127.0.0.1", "http://127.0.0.1:11434"),
])
def test_ollama_host_is_read_as_ollama_reads_it(host, url):
    assert ollama_url({"OLLAMA_HOST": host} if host else {}) == url


def test_ollama_probe_lists_models_or_says_why_not(openai_server):
    up = probe_ollama(openai_server.url)
    assert up.up and "llama3.1:latest" in up.models
    down = probe_ollama(f"http://127.0.0.1:{closed_port()}")
    assert not down.up and "not reachable" in down.problem


def test_proxy_probe_sends_the_key_and_lists_models(openai_server):
    p = probe_proxy(openai_server.url, "proxy-key-123456")
    assert p.up and p.models == {"alpha", "beta", "gamma"}
    assert openai_server.requests[-1]["headers"]["authorization"] == "Bearer proxy-key-123456"


def test_detect_reports_key_names_only_and_both_servers(openai_server):
    env = {"OPENAI_API_KEY": "sk-abcdefghijkl", "ANTHROPIC_API_KEY": "", "OLLAMA_HOST": openai_server.url,
           "LITELLM_PROXY_URL": openai_server.url, "LITELLM_PROXY_API_KEY": "pk-123456789"}
    e = detect(env)
    assert e.keys_set == {"OPENAI_API_KEY"}  # an empty variable is not a key
    assert e.ollama.up and e.proxy.up and e.proxy_key_env == "LITELLM_PROXY_API_KEY"
    assert "sk-abcdefghijkl" not in repr(e)
