"""`skillchat ask`, `rate`, `spend` and `doctor` from the shell's point of view: output, exit status, the log."""

from __future__ import annotations

import io
import json

import pytest
from openai_server import closed_port

from skillchat import paths
from skillchat.cli import main
from skillchat.store import TraceStore


@pytest.fixture(autouse=True)
def no_local_servers(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")


def write_config(text: str) -> None:
    paths.config_file().write_text(text, encoding="utf-8")


def server_config(server, tiny_path, extra: str = "") -> str:
    agents = "".join(
        f'\n[[agents]]\nid = "{a}"\nmodel = "openai/{m}"\napi_base = "{server.api_base}"\napi_key_env = "FAKE_SERVER_KEY"\n'
        for a, m in (("big", "alpha"), ("mid", "beta"), ("small", "gamma")))
    return f'handbook = "{tiny_path}"\n{extra}\n{agents}'


def test_ask_demo_streams_the_answer_to_stdout_and_the_rest_to_stderr(capsys, tiny_path):
    write_config(f'handbook = "{tiny_path}"\n')
    assert main(["ask", "--demo", "Why does my python script raise KeyError?"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("*Demo answer from") and "KeyError" in out
    assert err.startswith("[demo] [code]") and "->" in err
    assert "turn 1:" in err and "skillchat rate 1 up|down" in err
    t = TraceStore.open().turn(1)
    assert t.status == "answered" and t.demo and t.answer_text.strip() == out.strip()


def test_ask_reads_the_question_from_stdin(capsys, monkeypatch, tiny_path):
    write_config(f'handbook = "{tiny_path}"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO("what is 17 * 23?\n"))
    assert main(["ask", "--demo", "-q"]) == 0
    out, err = capsys.readouterr()
    assert "17 * 23" in out and err == ""


def test_rate_later_by_turn_id_and_change_your_mind(capsys, tiny_path):
    write_config(f'handbook = "{tiny_path}"\n')
    main(["ask", "--demo", "hello"])
    capsys.readouterr()
    assert main(["rate", "1", "up"]) == 0
    assert main(["rate", "1", "down"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("turn 1 (") and out[0].endswith(": up")
    assert out[1].endswith(": down (was up)")
    assert TraceStore.open().turn(1).rating == 0.0
    assert main(["rate", "99", "up"]) == 2
    assert "no turn 99" in capsys.readouterr().err


def test_ask_against_a_real_local_server_with_fallback(capsys, monkeypatch, tiny_path, openai_server):
    monkeypatch.setenv("FAKE_SERVER_KEY", "fake-cli-key-1234567")
    openai_server.behaviour["alpha"] = "429"
    write_config(server_config(openai_server, tiny_path))
    assert main(["ask", "--model", "big", "hello over http"]) == 0
    out, err = capsys.readouterr()
    assert "Echo from" in out and "hello over http" in out
    assert "big failed (rate_limit)" in err and "answered by" in err
    t = TraceStore.open().turn(1)
    assert [a.kind for a in t.attempts] == ["rate_limit", None] and t.policy == "pinned"


def test_ask_with_nothing_usable_says_so_instead_of_faking_an_answer(capsys, tiny_path):
    write_config(f'handbook = "{tiny_path}"\n')
    assert main(["ask", "hello"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "no agent can take this turn" in err and "doctor" in err
    assert err.count("no agent can take this turn") == 1
    # Each agent says why it cannot be called (a key it needs, say), and the demo is suggested.
    assert "needs " in err and "--demo" in err
    assert TraceStore.open().transcript(1)[0].content == "hello"  # the question is still logged


def test_ask_refused_by_a_hard_budget_exits_2(capsys, monkeypatch, tiny_path, openai_server):
    monkeypatch.setenv("FAKE_SERVER_KEY", "k" * 12)
    write_config(server_config(openai_server, tiny_path, "[budget]\ndaily_usd = 0.0000000001\n"))
    assert main(["ask", "-m", "big", "hello"]) == 2
    assert "daily budget" in capsys.readouterr().err and openai_server.chat_requests() == []


@pytest.mark.parametrize("text, problem", [
    ("lambda = [\n", "not valid TOML"),
    ("lambda = 'high'\n", "lambda: expected a finite number ≥ 0 and ≤ 10, got 'high'"),
    ("[[agents]]\nid = 'x'\napi_key = 'sk-oops'\n", "api_key_env"),
    ("timeout = 0\n", "timeout: expected a finite number > 0 and ≤ 86400, got 0"),
    ("[budget]\ndaily_usd = nan\n", "budget.daily_usd: expected a finite number ≥ 0 and ≤ 1e9, got nan"),
    ("colour = 'blue'\n", "unknown setting 'colour'"),
])
@pytest.mark.parametrize("command", [["ask", "--demo", "hi"], ["spend"], ["doctor", "--no-probe"]])
def test_a_malformed_config_is_one_line_naming_file_and_problem(capsys, text, problem, command):
    write_config(text)
    before = paths.config_file().read_bytes()
    assert main(command) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and str(paths.config_file()) in err and problem in err
    assert "Traceback" not in err and out == ""
    assert paths.config_file().read_bytes() == before  # never rewritten


def test_spend_shows_totals_breakdowns_budgets_and_json(capsys, monkeypatch, tiny_path, openai_server):
    monkeypatch.setenv("FAKE_SERVER_KEY", "k" * 12)
    write_config(server_config(openai_server, tiny_path, "[budget]\ndaily_usd = 1.0\nsoft_monthly_usd = 0.5\n"))
    for q, m in (("a", "big"), ("b", "big"), ("c", "mid")):
        assert main(["ask", "-q", "-m", m, q]) == 0
    capsys.readouterr()
    assert main(["spend"]) == 0
    out = capsys.readouterr().out
    assert "Spend, all time (real money)" in out and "3 turns (3 answered)" in out
    assert "daily budget" in out and "soft monthly budget" in out and "█" in out
    assert out.index("openai/alpha") < out.index("openai/beta")  # biggest spender first
    assert main(["spend", "--by", "skill", "--since", "today"]) == 0
    assert "By skill" in capsys.readouterr().out
    assert main(["spend", "--json", "--by", "day"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total"]["turns"] == 3 and len(doc["rows"]) == 1
    assert doc["total"]["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in doc["rows"]))
    assert doc["budget"]["daily_usd"] == 1.0 and doc["budget"]["limits"][0]["used"] > 0
    assert main(["spend", "--since", "someday"]) == 2


def test_spend_counts_one_turn_as_one_turn(capsys, tiny_path):
    write_config(f'handbook = "{tiny_path}"\n')
    assert main(["ask", "-q", "--demo", "hi"]) == 0
    capsys.readouterr()
    assert main(["spend", "--demo"]) == 0
    assert "  1 turn (1 answered)   actual" in capsys.readouterr().out


def test_doctor_names_what_it_found_but_never_a_key_value(capsys, monkeypatch, tiny_path, openai_server):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-doctor-secret-0000111122223333")
    monkeypatch.setenv("OLLAMA_HOST", openai_server.url)
    write_config(f'handbook = "{tiny_path}"\n')
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "sk-doctor-secret" not in out
    assert "OPENAI_API_KEY set" in out and "running at" in out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith(("  ok", "  --"))}
    assert lines["big"].startswith("  ok") and "key in OPENAI_API_KEY" in lines["big"]
    assert lines["small"].startswith("  ok") and "Ollama" in lines["small"]


def test_doctor_explains_why_nothing_is_usable(capsys, tiny_path):
    write_config(f'handbook = "{tiny_path}"\n')
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "needs OPENAI_API_KEY" in out and "not reachable" in out and "demo" in out
