import json
import subprocess
import sys

import pytest

from skillchat.cli import main
from skillchat.core import RoutingDecision


def test_route_prints_a_readable_table(capsys, tiny_path):
    assert main(["route", "Why does this raise TypeError?", "-H", str(tiny_path), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    for word in ("mode", "Code", "Debugging", "competence", "est. cost", "chosen:"):
        assert word in out


def test_route_json_is_a_full_decision(capsys):
    assert main(["route", "integrate x^2 from 0 to 1", "--json", "--greedy"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["mode"] == "math" and d["policy"] == "greedy" and d["probability"] == 1.0
    assert d["handbook"] == "general"
    assert len(d["ranking"]) >= 6
    assert all({"competence", "cost_usd", "score", "probability"} <= set(a) for a in d["ranking"])


def test_route_honours_config_lambda_and_handbook(capsys, skillchat_home):
    cfg = skillchat_home / "config" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('handbook = "coding"\nlambda = 0.7\n')
    assert main(["route", "hello", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["handbook"] == "coding" and d["lam"] == 0.7


def test_handbook_list_and_show(capsys):
    assert main(["handbook", "list"]) == 0
    out = capsys.readouterr().out
    assert "general" in out and "coding" in out and "shipped" in out
    assert main(["handbook", "show", "coding"]) == 0
    assert "modes and skills" in capsys.readouterr().out


def test_validate_ok(capsys, tiny_path):
    assert main(["handbook", "validate", str(tiny_path)]) == 0
    assert "ok (tiny@1: 3 modes, 6 skills, 3 agents" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2"),
        ('{"schema_version": 1, "metadata": {"name": "x", "version": 1}, "modes": []}',
         "$.modes: a handbook needs at least one mode"),
    ],
)
def test_malformed_handbook_exits_2_with_one_line_and_no_traceback(tmp_path, content, message):
    f = tmp_path / "broken.json"
    f.write_text(content)
    before = f.read_bytes()
    r = subprocess.run([sys.executable, "-m", "skillchat", "handbook", "validate", str(f)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == f"skillchat: {f}: {message}"
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert f.read_bytes() == before


def test_malformed_config_exits_2(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("lambda = 'high'\n")
    r = subprocess.run([sys.executable, "-m", "skillchat", "--config", str(cfg), "route", "hi"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == f"skillchat: {cfg}: lambda: expected a finite number ≥ 0 and ≤ 10, got 'high'"


def test_unknown_handbook_is_a_clear_error(capsys):
    assert main(["route", "hi", "-H", "nosuch"]) == 2
    assert "no handbook named 'nosuch'" in capsys.readouterr().err


def test_explore_false_routes_to_the_best_expected_model(capsys, skillchat_home):
    cfg = skillchat_home / "config" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("explore = false\n")
    chosen = set()
    for seed in range(8):
        assert main(["route", "Prove that sqrt(2) is irrational", "--json", "--seed", str(seed)]) == 0
        d = json.loads(capsys.readouterr().out)
        assert d["policy"] == "greedy" and d["probability"] == 1.0
        chosen.add(d["chosen"])
    assert len(chosen) == 1


def test_explore_gentle_strays_from_the_best_expected_model_on_at_most_a_quarter_of_turns(capsys, skillchat_home):
    cfg = skillchat_home / "config" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('explore = "gentle"\n')
    assert main(["route", "hey, how's it going?", "--json", "--seed", "1"]) == 0
    d = json.loads(capsys.readouterr().out)
    best = next(a for a in d["ranking"] if a["agent_id"] == d["best_expected"])
    assert d["policy"] == "gentle" and best["probability"] == pytest.approx(0.75)


def test_explore_must_be_true_false_or_gentle(tmp_path):
    from skillchat import config
    from skillchat.errors import ConfigError

    f = tmp_path / "c.toml"
    f.write_text('explore = "yes"\n')
    with pytest.raises(ConfigError, match=r"c.toml: explore: expected true, false or \"gentle\", got 'yes'"):
        config.load(f)
    f.write_text('explore = "gentle"\n')
    assert config.load(f).explore == "gentle"


# --- route --batch / --conversation ----------------------------------------------------------

def _conv(*turns):
    """A conversation object from alternating (role, content) pairs."""
    return {"messages": [{"role": r, "content": c} for r, c in turns]}


def _jsonl(path, *objs, raw=()):
    path.write_text("".join(json.dumps(o) + "\n" for o in objs) + "".join(raw), encoding="utf-8")
    return path


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "skillchat", *args], capture_output=True, text=True, input=stdin)


def test_batch_prints_one_json_decision_a_line_in_input_order(tmp_path, capsys):
    f = tmp_path / "in.jsonl"
    f.write_text(
        json.dumps(_conv(("user", "How do I reverse a list in Python?"))) + "\n"
        + "\n   \n"  # blank lines are skipped
        + json.dumps(_conv(("user", "What is 15% of 240?"))) + "\n"
        + json.dumps(_conv(("system", "Be brief."), ("user", "Integrate x^2 from 0 to 1"),
                           ("assistant", "1/3"), ("user", "Now what is the derivative of x^3?"))) + "\n"
        + json.dumps(_conv(("user", "hello, how are you?"))) + "\n",
        encoding="utf-8",
    )
    assert main(["route", "--batch", str(f), "--json", "--greedy"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == "" and len(lines) == 4
    decisions = [json.loads(line) for line in lines]  # each line is a whole decision on its own
    assert [d["mode"] for d in decisions] == ["code", "math", "math", "chat"]
    for d in decisions:
        assert d["policy"] == "greedy" and d["chosen"] and d["reason"] and len(d["ranking"]) >= 6
        assert RoutingDecision.from_dict(d).to_dict() == d  # the same JSON as `route --json`


def test_batch_json_matches_route_json_for_a_single_message(tmp_path, capsys):
    f = _jsonl(tmp_path / "in.jsonl", _conv(("user", "integrate x^2 from 0 to 1")))
    assert main(["route", "--batch", str(f), "--json", "--greedy"]) == 0
    batch = json.loads(capsys.readouterr().out)
    assert main(["route", "integrate x^2 from 0 to 1", "--json", "--greedy"]) == 0
    assert json.loads(capsys.readouterr().out) == batch


def test_batch_with_a_seed_is_reproducible_and_uses_one_generator(tmp_path, capsys):
    f = _jsonl(tmp_path / "in.jsonl", *[_conv(("user", "Write a haiku about the sea"))] * 12)

    def chosen(seed):
        assert main(["route", "--batch", str(f), "--json", "--seed", str(seed)]) == 0
        return [json.loads(line)["chosen"] for line in capsys.readouterr().out.splitlines()]

    first = chosen(3)
    assert first == chosen(3)
    # One generator for the batch: identical lines still get different draws.
    assert len(set(first)) > 1


def test_batch_reads_stdin_and_prints_a_compact_table(tmp_path):
    text = "".join(json.dumps(_conv(("user", q))) + "\n" for q in ("How do I reverse a list in Python?", "What is 15% of 240?"))
    r = _cli("route", "--batch", "-", "--greedy", stdin=text)
    assert r.returncode == 0 and r.stderr == ""
    head, *rows = r.stdout.splitlines()
    assert head.split()[:4] == ["line", "mode", "agent", "p"] and "top skills" in head
    assert len(rows) == 2
    assert rows[0].split()[:2] == ["1", "Code"] and rows[1].split()[:2] == ["2", "Math"]
    assert "Arithmetic" in rows[1] and "1.00" in rows[1]


@pytest.mark.parametrize(
    "line, problem",
    [
        ("{not json", "not valid JSON: Expecting property name enclosed in double quotes at column 2"),
        ("[1, 2]", 'expected an object {"messages": [...]}, got a list'),
        ('{"text": "hi"}', 'missing "messages"'),
        ('{"messages": []}', "$.messages: no messages"),
        ('{"messages": "hi"}', "$.messages: expected a list of messages, got a string"),
        ('{"messages": ["hi"]}', '$.messages[0]: expected a message {"role": ..., "content": ...}, got a string'),
        ('{"messages": [{"content": "hi"}]}', "$.messages[0]: missing 'role'"),
        ('{"messages": [{"role": "user"}]}', "$.messages[0]: missing 'content'"),
        ('{"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}',
         '$.messages[1].role: unknown role "bot" (expected user, assistant or system)'),
        ('{"messages": [{"role": "user", "content": ["a"]}]}', "$.messages[0].content: expected a string, got a list"),
        ('{"messages": [{"role": "system", "content": "a"}, {"role": "assistant", "content": "b"}]}',
         "$.messages: no user message to route"),
        ('{"messages": [{"role": "user", "content": "  "}]}', "$.messages[0].content: the last user message is empty"),
        # The test id, not the 200,000 '[' (pytest puts it in the environment of the subprocess).
        pytest.param("[" * 200_000, "not valid input: nested too deeply", id="deep-nesting"),
    ],
)
def test_a_bad_batch_line_is_named_and_nothing_is_routed(tmp_path, line, problem):
    f = tmp_path / "in.jsonl"
    good = json.dumps(_conv(("user", "What is 15% of 240?")))
    f.write_text(f"{good}\n\n{good}\n{line}\n{good}\n", encoding="utf-8")
    r = _cli("route", "--batch", str(f), "--json")
    assert r.returncode == 2
    assert r.stderr == f"skillchat: {f}:4: {problem}\n"
    # Checked whole before routing: no half batch on stdout that a script could take for all of it.
    assert r.stdout == ""


def test_batch_file_problems_exit_2_with_one_line(tmp_path):
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(json.dumps(_conv(("user", "hi"))).encode() + b"\n" + '{"messages": "caf\xe9"}'.encode("latin-1") + b"\n")
    for target, message in [
        (tmp_path / "missing.jsonl", "no such file"),
        (tmp_path, "is a directory, not a file"),
        (bad, "not valid UTF-8 (byte 0xe9 at offset"),
    ]:
        r = _cli("route", "--batch", str(target), "--json")
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.startswith(f"skillchat: {target}") and message in r.stderr
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    assert _cli("route", "--batch", str(bad)).stderr.startswith(f"skillchat: {bad}:2: not valid UTF-8")


def test_a_line_no_agent_can_take_is_named(tmp_path, tiny_path):
    # tiny's agents have context windows of 2k-200k tokens: 1M characters exceed them all.
    f = _jsonl(tmp_path / "in.jsonl", _conv(("user", "hi")), _conv(("user", "word " * 200_000)))
    r = _cli("route", "--batch", str(f), "--json", "-H", str(tiny_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"skillchat: {f}:2: no agent can take this turn")


def test_conversation_routes_the_last_user_turn_given_the_whole_conversation(tmp_path, capsys):
    f = tmp_path / "conv.json"
    turns = [("system", "You are helpful."), ("user", "My Python script raises KeyError in a loop"),
             ("assistant", "Show me the traceback."), ("user", "Here it is: Traceback ... KeyError: 'x'")]
    f.write_text(json.dumps(_conv(*turns)), encoding="utf-8")
    assert main(["route", "--conversation", str(f), "--json", "--greedy"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["mode"] == "code"
    # The whole conversation is the prompt, not just its last message.
    assert main(["route", turns[-1][1], "--json", "--greedy"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert d["prompt_tokens"] > alone["prompt_tokens"] + 15

    # A bare list works too, and the answer after the last user message is not part of the turn.
    g = tmp_path / "bare.json"
    g.write_text(json.dumps(_conv(*turns)["messages"] + [{"role": "assistant", "content": "hello, how are you?"}]))
    assert main(["route", "--conversation", str(g), "--json", "--greedy"]) == 0
    assert json.loads(capsys.readouterr().out) == d

    assert main(["route", "-c", str(f), "--greedy"]) == 0
    out = capsys.readouterr().out
    assert "chosen:" in out and "competence" in out


@pytest.mark.parametrize(
    "content, problem",
    [
        (b'{"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": null}]}',
         ": $.messages[1].content: expected a string, got null"),
        (b'[{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]',
         ': $[1].role: unknown role "robot" (expected user, assistant or system)'),
        (b'"hello"', ': expected an object {"messages": [...]} or a list of messages, got a string'),
        (b'{"messages": [\n  {"role": "user", "content": "hi"},\n]}', ": not valid JSON: Expecting value at line 3, column 1"),
        (b'{"messages": [\n{"role": "user", "content": "caf\xe9"}]}', ":2: not valid UTF-8 (byte 0xe9 at offset 47)"),
        pytest.param(b"[" * 200_000, ": not valid input: nested too deeply", id="deep-nesting"),
        (b"", ": not valid JSON: Expecting value at line 1, column 1"),
    ],
)
def test_a_bad_conversation_file_is_one_clear_line(tmp_path, content, problem):
    f = tmp_path / "conv.json"
    f.write_bytes(content)
    r = _cli("route", "--conversation", str(f))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"skillchat: {f}{problem}\n"


def test_conversation_file_missing_or_a_directory(tmp_path, capsys):
    assert main(["route", "--conversation", str(tmp_path / "nope.json")]) == 2
    assert capsys.readouterr().err == f"skillchat: {tmp_path / 'nope.json'}: no such file\n"
    assert main(["route", "--conversation", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"skillchat: {tmp_path}: is a directory, not a file\n"


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "one of the arguments text --conversation/-c --batch/-b is required"),
        (["hi", "--batch", "x.jsonl"], "argument --batch/-b: not allowed with argument text"),
        (["--batch", "x.jsonl", "--conversation", "y.json"], "not allowed with argument"),
    ],
)
def test_exactly_one_of_text_batch_conversation(args, message):
    r = _cli("route", *args)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert message in r.stderr.splitlines()[-1]


def test_route_uses_the_configs_own_agents_and_leaves_out_those_it_cannot_call(capsys, skillchat_home, monkeypatch):
    """As the app does: [[agents]] join the pool, and an agent without its key is not chosen but
    listed with why."""
    from openai_server import FakeOpenAIServer, closed_port

    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")
    monkeypatch.setenv("MY_SERVER_KEY", "k" * 12)
    with FakeOpenAIServer() as server:
        agents = "".join(f'\n[[agents]]\nid = "{a}"\nmodel = "openai/{a}"\napi_base = "{server.api_base}"\n'
                         f'api_key_env = "MY_SERVER_KEY"\ninput_per_mtok = 0.1\noutput_per_mtok = 0.2\n'
                         for a in ("alpha", "beta"))
        cfg = skillchat_home / "config" / "config.toml"
        cfg.parent.mkdir(parents=True)
        cfg.write_text(f'handbook = "general"\n{agents}', encoding="utf-8")
        for _ in range(5):
            assert main(["route", "Why does my Python loop raise KeyError?", "--json"]) == 0
            d = json.loads(capsys.readouterr().out)
            eligible = {a["agent_id"] for a in d["ranking"] if a["eligible"]}
            assert eligible == {"alpha", "beta"} and d["chosen"] in eligible
        why = {a["agent_id"]: a["excluded"] for a in d["ranking"] if not a["eligible"]}
        assert why and all("needs" in w or "not reachable" in w for w in why.values()), why


def test_route_with_no_usable_agent_routes_as_the_demo_would(capsys):
    assert main(["route", "hello", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert all(a["eligible"] for a in d["ranking"])
