import json
import subprocess
import sys

import pytest

from skillchat.cli import main


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
        ('{"schema_version": 1, "metadata": {"name": "x", "version": 1}, "modes": []}', "$.modes: a handbook needs at least one mode"),
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
    assert r.stderr.strip() == f"skillchat: {cfg}: lambda: expected a number, got 'high'"


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


def test_explore_must_be_a_boolean(tmp_path):
    from skillchat import config
    from skillchat.errors import ConfigError

    f = tmp_path / "c.toml"
    f.write_text('explore = "yes"\n')
    with pytest.raises(ConfigError, match=r"c.toml: explore: expected true or false, got 'yes'"):
        config.load(f)
