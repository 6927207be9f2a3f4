"""`skillchat ask` as a real process against a real loopback OpenAI-compatible server, on the direct path.

What users see must not depend on which path called the server: the answer, the stored turn and
its cost, fallback and fault kinds, Ctrl+C. And litellm (four seconds to import) must stay out of
the process once it has said it has no price for the model.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest
from openai_server import closed_port
from terminal import Terminal, interruptible

from skillchat import paths
from skillchat.core.ports import Message
from skillchat.providers import unpriced
from skillchat.providers.litellm_client import actual_cost, load_litellm
from skillchat.providers.pool import Endpoint
from skillchat.store import TraceStore
from skillchat.tokens import TiktokenCounter

MODELS = {"big": "alpha", "mid": "beta", "small": "gamma"}
BIG_PRICE = (10e-6, 30e-6)  # tests/data/tiny.json: per token, in and out


@pytest.fixture(autouse=True)
def setup(monkeypatch, tiny_path, openai_server):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")
    monkeypatch.setenv("FAKE_SERVER_KEY", "fake-direct-key-123456")
    agents = "".join(f'\n[[agents]]\nid = "{a}"\nmodel = "openai/{m}"\napi_base = "{openai_server.api_base}"\n'
                     f'api_key_env = "FAKE_SERVER_KEY"\n' for a, m in MODELS.items())
    paths.config_file().write_text(f'handbook = "{tiny_path}"\n{agents}', encoding="utf-8")


def learn_unpriced() -> None:
    """What the app (or a first ask) notes: litellm has no price for these models."""
    litellm = load_litellm()
    for m in MODELS.values():
        actual_cost(litellm, Endpoint("x", f"openai/{m}", f"openai/{m}", "config"), 0, 0)
        assert unpriced.known(f"openai/{m}")


def ask(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "skillchat", "ask", *args],
                          capture_output=True, text=True, timeout=120)


def imported_litellm(stderr: str) -> bool:
    return bool(re.search(r"\|\s+litellm$", stderr, re.MULTILINE))


def messages(stderr: str) -> str:
    return "\n".join(line for line in stderr.splitlines() if not line.startswith("import time:"))


@pytest.mark.slow
def test_ask_answers_directly_and_needs_litellm_only_once_to_learn_a_model_is_unpriced(openai_server):
    first = ask("-m", "big", "hello over http")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "Echo from alpha: hello over http\n"
    assert imported_litellm(first.stderr)  # after the answer, to learn litellm has no price for openai/alpha
    assert unpriced.known("openai/alpha")

    second = ask("-m", "big", "hello again")
    assert second.returncode == 0 and second.stdout == "Echo from alpha: hello again\n"
    assert not imported_litellm(second.stderr)
    assert "turn 2: big, 6+4 tokens, $0.00018," in messages(second.stderr)

    store = TraceStore.open()
    for turn_id in (1, 2):
        t = store.turn(turn_id)
        assert t.status == "answered" and t.agent_id == "big" and t.model == "openai/alpha"
        assert (t.prompt_tokens, t.completion_tokens) == (6, 4)  # the server's usage
        assert t.cost_usd == pytest.approx(6 * BIG_PRICE[0] + 4 * BIG_PRICE[1])  # the handbook's price
        assert t.ttft_s is not None and 0 <= t.ttft_s <= t.latency_s
    assert [r["headers"]["user-agent"] for r in openai_server.chat_requests()] == ["skillchat", "skillchat"]
    assert {r["headers"]["authorization"] for r in openai_server.chat_requests()} == {"Bearer fake-direct-key-123456"}


async def test_the_app_notes_unpriced_models_at_start_up_so_the_first_ask_needs_no_litellm(openai_server):
    from skillchat.service import ChatService

    svc = ChatService.create()
    try:
        await svc.load_providers()  # what the app does in the background when it opens
    finally:
        svc.close()
    assert all(unpriced.known(f"openai/{m}") for m in MODELS.values())
    r = ask("-m", "mid", "hello")
    assert r.returncode == 0 and r.stdout == "Echo from beta: hello\n"
    assert not imported_litellm(r.stderr)


def test_a_broken_answer_falls_back_and_its_partial_cost_is_recorded_without_litellm(openai_server):
    learn_unpriced()
    openai_server.behaviour["alpha"] = "break"
    r = ask("-m", "big", "hello over http")
    assert r.returncode == 0, r.stderr
    assert not imported_litellm(r.stderr)
    err = messages(r.stderr)
    assert "big failed (stream)" in err and "answered by" in err
    t = TraceStore.open().turn(1)
    assert t.status == "answered" and [a.kind for a in t.attempts] == ["stream", None]
    # To a file or a pipe, only the answer that finished: the broken attempt's "Echo from " is not above it.
    assert t.agent_id != "big" and r.stdout == t.answer_text + "\n"
    assert r.stdout in ("Echo from beta: hello over http\n", "Echo from gamma: hello over http\n")
    counter = TiktokenCounter()  # the server never said how many tokens the broken call used: counted here
    prompt = counter.count([Message("user", "hello over http")])
    completion = counter.count([Message("assistant", "Echo from ")]) - 6
    broken = t.attempts[0]
    assert broken.cost_usd > 0 and broken.cost_usd == pytest.approx(prompt * BIG_PRICE[0] + completion * BIG_PRICE[1])
    assert t.cost_usd == pytest.approx(broken.cost_usd + t.attempts[1].cost_usd)


def test_on_a_terminal_the_broken_answer_streams_and_the_fallback_starts_on_its_own_line(openai_server):
    learn_unpriced()
    openai_server.behaviour["alpha"] = "break"
    term = Terminal()
    p = subprocess.Popen([sys.executable, "-m", "skillchat", "ask", "-m", "big", "hello over http"],
                         stdout=term.slave, stderr=subprocess.PIPE, text=True)
    term.opened()
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    lines = term.text().splitlines()
    assert lines[0] == "Echo from "  # what streamed of the broken answer ends its line
    assert lines[1] == TraceStore.open().turn(1).answer_text and len(lines) == 2  # the fallback's, afresh


@pytest.mark.parametrize("behaviour, kind", [("500", "server"), ("429", "rate_limit"), ("stall", "timeout"),
                                             ("break", "stream")])
def test_when_every_agent_fails_ask_exits_1_and_keeps_the_question(openai_server, behaviour, kind):
    learn_unpriced()
    openai_server.stall_s = 3.0
    for m in MODELS.values():
        openai_server.behaviour[m] = behaviour
    paths.config_file().write_text("timeout = 0.5\n" + paths.config_file().read_text(encoding="utf-8"),
                                   encoding="utf-8")
    r = ask("the question")
    assert r.returncode == 1 and r.stdout == ""
    assert not imported_litellm(r.stderr)
    err = messages(r.stderr)
    assert "every agent failed" in err and f"failed ({kind})" in err and "fake-direct-key" not in err
    t = TraceStore.open().turn(1)
    assert t.status == "failed" and {a.kind for a in t.attempts} == {kind}
    assert TraceStore.open().transcript(t.conversation_id)[0].content == "the question"


def test_ctrl_c_mid_answer_stops_the_call_and_keeps_what_arrived_with_its_cost(openai_server):
    learn_unpriced()
    openai_server.answer_words, openai_server.word_interval_s = 400, 0.05  # 20 s of answer
    term = Terminal()  # the answer streams live only to a terminal
    p = subprocess.Popen([sys.executable, "-m", "skillchat", "ask", "-m", "big", "tell me a long story"],
                         stdout=term.slave, stderr=subprocess.PIPE, preexec_fn=interruptible)
    term.opened()
    deadline = time.monotonic() + 60
    while b"w3 " not in term.out and time.monotonic() < deadline:
        time.sleep(0.02)
    seen = b"w3 " in term.out
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert seen, f"no answer streamed within 60 s; terminal: {term.out[-300:]!r}; stderr: {err.decode()[-500:]}"
    assert p.returncode == 130 and "interrupted" in err.decode()
    for _ in range(100):  # the server notices the closed socket at its next write
        if openai_server.hangups:
            break
        time.sleep(0.05)
    assert openai_server.hangups == 1
    t = TraceStore.open().turn(1)
    assert t.status == "cancelled" and t.answer_text.startswith("w0 w1 w2 w3 ")
    assert len(t.answer_text.split()) < 400
    assert t.cost_usd > 0 and t.completion_tokens > 0  # counted here, priced at big's configured price
