"""No API key value ever reaches the database, logs, exports, handbooks or the terminal.

Fake keys are put in the environment, turns are run through demo agents, a local OpenAI-compatible
server (reached directly and as a LiteLLM proxy) that echoes the Authorization header back in its
errors, and then every byte skillchat wrote or printed is searched for the key values.
"""

from __future__ import annotations

import json
import logging

import pytest
from openai_server import closed_port

from skillchat import paths
from skillchat.cli import main
from skillchat.service import ChatService

SECRETS = {
    "OPENAI_API_KEY": "sk-test-OPENAI-aaaaaaaaaaaaaaaa",
    "ANTHROPIC_API_KEY": "sk-ant-test-bbbbbbbbbbbbbbbbbb",
    "GEMINI_API_KEY": "AIzaTEST-cccccccccccccccccccc",
    "LITELLM_PROXY_API_KEY": "proxy-test-dddddddddddddddd",
    "FAKE_SERVER_KEY": "server-test-eeeeeeeeeeeeeeee",
}


@pytest.fixture
def keyed_env(monkeypatch, openai_server):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")
    monkeypatch.setenv("LITELLM_PROXY_URL", openai_server.url)
    return openai_server


def everything_written() -> dict[str, bytes]:
    home = paths.data_dir().parent  # SKILLCHAT_HOME: config, data (db, -wal, -shm, handbooks), cache
    return {str(p): p.read_bytes() for p in home.rglob("*") if p.is_file()}


def test_no_key_value_leaks_anywhere(keyed_env, tiny_path, capsys, caplog):
    server = keyed_env
    caplog.set_level(logging.DEBUG)
    server.echo_auth = True
    server.behaviour["alpha"] = "401"  # reached through the proxy: its error echoes the proxy key
    server.behaviour["beta"] = "500"  # reached directly: its error echoes FAKE_SERVER_KEY
    paths.config_file().write_text(
        f'handbook = "{tiny_path}"\n'
        '[[agents]]\nid = "big"\nmodel = "alpha"\n'  # no key of its own: served by the LiteLLM proxy
        f'[[agents]]\nid = "mid"\nmodel = "openai/beta"\napi_base = "{server.api_base}"\napi_key_env = "FAKE_SERVER_KEY"\n'
        f'[[agents]]\nid = "small"\nmodel = "openai/gamma"\napi_base = "{server.api_base}"\napi_key_env = "FAKE_SERVER_KEY"\n',
        encoding="utf-8",
    )
    outputs = []
    assert main(["ask", "--demo", "hello from the demo"]) == 0
    assert main(["ask", "-m", "big", "through the proxy, then fallback"]) == 0
    assert main(["ask", "-m", "mid", "directly, then fallback"]) == 0
    assert main(["rate", "2", "up"]) == 0
    assert main(["spend", "--json"]) == 0
    assert main(["spend", "--by", "skill"]) == 0
    assert main(["doctor"]) == 0
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err, caplog.text]

    svc = ChatService.create()
    for cid in (1, 2, 3):
        outputs += [svc.export(cid, "markdown"), svc.export(cid, "json")]
    svc.close()

    # The keys did go over the wire (so this test is not vacuous) ...
    auth = [r["headers"].get("authorization", "") for r in server.chat_requests()]
    assert f"Bearer {SECRETS['LITELLM_PROXY_API_KEY']}" in auth and f"Bearer {SECRETS['FAKE_SERVER_KEY']}" in auth
    # ... and the failures that echoed them were logged.
    errors = json.loads(outputs[-1])["turns"][0]["fallback_chain"][0]["error"]
    assert "[redacted]" in errors
    written = everything_written()
    assert any(name.endswith("traces.db") for name in written)
    for name, value in SECRETS.items():
        needle = value.encode()
        for path, data in written.items():
            assert needle not in data, f"{name} found in {path}"
        for text in outputs:
            assert value not in text, f"{name} found in output"


def test_exports_redact_the_key_of_every_configured_api_key_env(monkeypatch, tiny_path):
    """A key variable the config names is a secret whatever its name (no _KEY or _TOKEN suffix)."""
    value = "creds-test-ffffffffffffffff"
    monkeypatch.setenv("LLAMA_CREDS", value)
    paths.config_file().write_text(
        f'handbook = "{tiny_path}"\n'
        '[[agents]]\nid = "mine"\nmodel = "openai/llama"\napi_base = "http://127.0.0.1:9/v1"\n'
        'api_key_env = "LLAMA_CREDS"\n', encoding="utf-8")
    assert main(["ask", "--demo", "-q", f"my key is {value}, keep it out of the export"]) == 0
    svc = ChatService.create()
    try:
        exports = [svc.export(1, "markdown"), svc.export(1, "json")]
    finally:
        svc.close()
    for text in exports:
        assert "keep it out of the export" in text  # the message is there ...
        assert value not in text  # ... its key is not
        assert "[redacted]" in text
