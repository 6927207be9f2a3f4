"""Lambda (the cost weight) is a finite number in [0, 10] wherever it can be set.

inf made every score -inf (or nan at zero cost) and nan made every comparison false, so routing
silently picked by tie-breaks; every entry point now refuses such values with one clear message.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys

import pytest

from skillchat import config
from skillchat.cli import main
from skillchat.errors import ConfigError, SkillchatError

BAD = ["inf", "-inf", "nan", "-0.1", "10.5", "1e400"]


@pytest.mark.parametrize("value", [0, 0.0, 0.2, 1, 10, "0", " 3.5 ", "10"])
def test_finite_numbers_from_0_to_10_are_accepted(value):
    assert config.check_lambda(value) == float(value)


@pytest.mark.parametrize("value", [*BAD, math.inf, math.nan, -1, 11])
def test_anything_else_is_one_clear_error(value):
    with pytest.raises(ConfigError, match=r"^lambda must be a finite number between 0 and 10, got "):
        config.check_lambda(value)


@pytest.mark.parametrize("value", ["lots", "", True, None, [0.2]])
def test_non_numbers_are_refused(value):
    with pytest.raises(ConfigError, match=r"^lambda must be a number between 0 and 10, got "):
        config.check_lambda(value)


@pytest.mark.parametrize("toml, shown", [("inf", "inf"), ("nan", "nan"), ("-1", "-1"), ("11", "11"), ("+inf", "inf")])
def test_the_config_file_names_itself_and_the_key(tmp_path, toml, shown):
    f = tmp_path / "config.toml"
    f.write_text(f"lambda = {toml}\n")
    with pytest.raises(ConfigError) as e:
        config.load(f)
    assert str(e.value) == f"{f}: lambda must be a finite number between 0 and 10, got {shown}"


def test_the_config_file_keeps_a_good_lambda(tmp_path):
    f = tmp_path / "config.toml"
    f.write_text("lambda = 10\n")
    assert config.load(f).lam == 10.0


@pytest.mark.parametrize("command", [["route", "hi"], ["ask", "--demo", "hi"], ["relearn", "--dry-run"]])
@pytest.mark.parametrize("value", ["inf", "nan", "-1", "11", "lots"])
def test_every_lambda_option_is_a_usage_error(capsys, command, value):
    with pytest.raises(SystemExit) as e:
        main([*command, "--lambda", value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --lambda/-l: lambda must be a" in err and f"got {value}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("option", ["--lambdas", "--train-lambda", "--curve-lambda"])
@pytest.mark.parametrize("value", ["inf", "nan", "-1", "11", "lots"])
def test_the_bench_lambda_options_are_checked_the_same_way(capsys, tmp_path, option, value):
    given = f"0.1,{value}" if option == "--lambdas" else value
    with pytest.raises(SystemExit) as e:
        main(["bench", str(tmp_path), option, given])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {option}: lambda must be a" in err and f"got {value}" in err


def test_a_bad_lambda_exits_2_without_a_traceback():
    r = subprocess.run([sys.executable, "-m", "skillchat", "route", "hi", "-l", "inf"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines()[-1] == ("skillchat route: error: argument --lambda/-l: "
                                         "lambda must be a finite number between 0 and 10, got inf")


def test_route_uses_a_good_lambda(capsys):
    import json

    assert main(["route", "hi", "--lambda", "10", "--json", "--greedy"]) == 0
    assert json.loads(capsys.readouterr().out)["lam"] == 10.0


def test_the_service_refuses_with_the_projects_error(tiny_path):
    from skillchat.providers.detect import Environment
    from skillchat.service import ChatService

    svc = ChatService.create(config.Config(handbook=str(tiny_path)), demo=True,
                             environment=Environment(frozenset(), None, None), env={})
    for bad in (math.inf, math.nan, -0.5, 10.01):
        with pytest.raises(SkillchatError, match="lambda must be a finite number between 0 and 10"):
            svc.set_lambda(bad)
        assert svc.lam == config.DEFAULT_LAMBDA  # unchanged
    svc.set_lambda(7)
    assert svc.lam == 7.0 and isinstance(svc.lam, float)


@pytest.mark.parametrize("lam", [math.inf, math.nan, -0.1, -math.inf])
def test_the_router_refuses_what_slipped_through(tiny, lam):
    from skillchat.core import Message, Router

    with pytest.raises(ValueError, match="lambda"):
        Router(tiny).route([Message("user", "hi")], lam=lam, rng=random.Random(0))
