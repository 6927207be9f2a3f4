"""Every number skillchat reads (config, handbooks, flags, environment) is finite and within bounds,
and a wrong one gets a message that says what was expected and what was found.

Table-driven: one row per field. The bounds are documented in README.md ("Limits").
"""

from __future__ import annotations

import json
import math
import random

import pytest

from skillchat import config, handbooks
from skillchat.cli import main
from skillchat.core.handbook import from_dict
from skillchat.core.ports import Message, Price
from skillchat.errors import INT64_MAX, ConfigError, HandbookError, number_problem, show_number

NAN, INF = float("nan"), float("inf")


# --- the wording ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, kw, message", [
    (NAN, dict(lo=0), "expected a finite number ≥ 0, got nan"),
    (INF, dict(lo=0, hi=1e9), "expected a finite number ≥ 0 and ≤ 1e9, got inf"),
    (-INF, dict(lo=0), "expected a finite number ≥ 0, got -inf"),
    (-1, dict(lo=0, hi=1e9), "expected a finite number ≥ 0 and ≤ 1e9, got -1"),
    (1e308, dict(lo=0, hi=1e9), "expected a finite number ≥ 0 and ≤ 1e9, got 1e308"),
    (0, dict(lo=0, lo_open=True, hi=86400), "expected a finite number > 0 and ≤ 86400, got 0"),
    (10**30, dict(lo=1, hi=INT64_MAX, whole=True),
     "expected a whole number ≥ 1 and ≤ 9223372036854775807, got 1000000000000000000000000000000"),
    (10**5000, dict(lo=1, hi=INT64_MAX, whole=True),
     "expected a whole number ≥ 1 and ≤ 9223372036854775807, got an integer of about 5001 digits"),
    (2.5, dict(lo=1, whole=True), "expected a whole number ≥ 1, got 2.5"),
    ("12", dict(lo=0), "expected a finite number ≥ 0, got '12'"),
    (True, dict(lo=0), "expected a finite number ≥ 0, got a boolean (true)"),
    (None, dict(lo=0), "expected a finite number ≥ 0, got nothing (null)"),
    ([1], dict(lo=0), "expected a finite number ≥ 0, got a list"),
], ids=lambda v: v[-40:] if isinstance(v, str) else "-")
def test_a_wrong_number_is_described_not_just_refused(value, kw, message):
    assert number_problem(value, **kw) == message
    assert "got a number" not in message


@pytest.mark.parametrize("value, kw", [(0, dict(lo=0)), (1e9, dict(lo=0, hi=1e9)),
                                       (INT64_MAX, dict(lo=1, hi=INT64_MAX, whole=True)),
                                       (0.5, dict(lo=0, hi=1, lo_open=True, hi_open=True))])
def test_numbers_within_bounds_pass(value, kw):
    assert number_problem(value, **kw) is None


def test_numbers_are_shown_as_people_write_them():
    assert [show_number(x) for x in (0, 0.5, 86400.0, 1e9, 1e-5, 12345678.0, 2.5e6, -3e7, 1e308, 0.1)] == [
        "0", "0.5", "86400", "1e9", "1e-5", "12345678", "2500000", "-3e7", "1e308", "0.1"]


# --- config ------------------------------------------------------------------------------------------

AGENT = '[[agents]]\nid = "x"\nmodel = "openai/x"\n'
# key as named in messages, how to write a value of it, what it expects, values at its bounds.
CONFIG_FIELDS = [
    ("timeout", "timeout = {}\n", "a finite number > 0 and ≤ 86400", ["0.001", "86400"]),
    ("budget.daily_usd", "[budget]\ndaily_usd = {}\n", "a finite number ≥ 0 and ≤ 1e9", ["0", "1e9"]),
    ("budget.monthly_usd", "[budget]\nmonthly_usd = {}\n", "a finite number ≥ 0 and ≤ 1e9", ["0", "1e9"]),
    ("budget.soft_daily_usd", "[budget]\nsoft_daily_usd = {}\n", "a finite number ≥ 0 and ≤ 1e9", ["0", "1e9"]),
    ("budget.soft_monthly_usd", "[budget]\nsoft_monthly_usd = {}\n", "a finite number ≥ 0 and ≤ 1e9", ["0", "1e9"]),
    ("agents[0].input_per_mtok", AGENT + "input_per_mtok = {}\n", "a finite number ≥ 0 and ≤ 1e6", ["0", "1e6"]),
    ("agents[0].output_per_mtok", AGENT + "output_per_mtok = {}\n", "a finite number ≥ 0 and ≤ 1e6", ["0", "1e6"]),
    ("agents[0].context_window", AGENT + "context_window = {}\n", "a whole number ≥ 1 and ≤ 1000000000",
     ["1", "1000000000"]),
]
BAD_TOML = [("nan", "nan"), ("+inf", "inf"), ("-inf", "-inf"), ("-1", "-1"), ("1e308", "1e308"),
            ("9223372036854775807", "9223372036854775807"), ('"5"', "'5'"), ("true", "a boolean (true)")]


@pytest.mark.parametrize("key, template, expected, ok", CONFIG_FIELDS, ids=[f[0] for f in CONFIG_FIELDS])
@pytest.mark.parametrize("text, shown", BAD_TOML, ids=[b[0] for b in BAD_TOML])
def test_every_config_number_refuses_what_is_not_a_sane_number(tmp_path, key, template, expected, ok, text, shown):
    f = tmp_path / "config.toml"
    f.write_text(template.format(text), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        config.load(f)
    assert str(e.value) == f"{f}: {key}: expected {expected}, got {shown}"


@pytest.mark.parametrize("key, template, expected, ok", CONFIG_FIELDS, ids=[f[0] for f in CONFIG_FIELDS])
def test_every_config_number_takes_the_values_at_its_bounds(tmp_path, key, template, expected, ok):
    f = tmp_path / "config.toml"
    for text in ok:
        f.write_text(template.format(text), encoding="utf-8")
        config.load(f)


@pytest.mark.parametrize("text, shown", [("nan", "nan"), ("inf", "inf"), ("-0.5", "-0.5"), ("11", "11")])
def test_lambda_in_the_config_is_checked_like_every_other_lambda(tmp_path, text, shown):
    f = tmp_path / "config.toml"
    f.write_text(f"lambda = {text}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"lambda must be a finite number between 0 and 10, got {shown}$"):
        config.load(f)


def test_a_nan_budget_is_a_config_error_in_every_command(capsys, tmp_path, monkeypatch):
    f = tmp_path / "config.toml"
    f.write_text("[budget]\ndaily_usd = nan\n", encoding="utf-8")
    monkeypatch.setenv("SKILLCHAT_CONFIG", str(f))
    for argv in (["ask", "--demo", "hi"], ["spend"], ["doctor", "--no-probe"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == f"skillchat: {f}: budget.daily_usd: expected a finite number ≥ 0 and ≤ 1e9, got nan\n"


# --- handbooks ---------------------------------------------------------------------------------------

def _set(path):
    """A function setting the value at a dotted path of the tiny handbook (list indexes as [i])."""
    def setter(d, v):
        keys = path.replace("[", ".").replace("]", "").split(".")
        for k in keys[:-1]:
            d = d[int(k)] if k.isdigit() else d.setdefault(k, {})
        d[keys[-1]] = v
    return setter


C = 1e9
# JSON path, expected, values at the bounds that must pass.
HANDBOOK_FIELDS = [
    ("metadata.version", f"a whole number ≥ 1 and ≤ {INT64_MAX}", [1, INT64_MAX]),
    ("metadata.parent_version", f"a whole number ≥ 1 and ≤ {INT64_MAX} or null", [1, INT64_MAX, None]),
    ("metadata.evidence_through", f"a whole number ≥ 0 and ≤ {INT64_MAX} or null", [0, INT64_MAX, None]),
    ("modes[0].completion_tokens", "a finite number ≥ 1 and ≤ 1000000000", [1, 10**9]),
    ("skills[0].signature.word", "a finite number ≥ 0 and ≤ 1e9", [0, C]),
    ("settings.prior_strength", "a finite number > 0 and < 1e9", [0.001, C - 1]),
    ("settings.mode_strength", "a finite number > 0 and < 1e9", [0.001, C - 1]),
    ("settings.skill_strength", "a finite number > 0 and < 1e9", [0.001, C - 1]),
    # 0.85: the two floors together may not pass 1, and the quality floor's default is 0.15.
    ("settings.exploration_floor", "a finite number ≥ 0 and ≤ 1", [0, 0.85]),
    ("settings.quality_floor", "a finite number ≥ 0 and ≤ 1", [0, 0.9]),
    ("settings.challenge_z", "a finite number ≥ 0 and ≤ 10", [0, 10]),
    ("agents[0].context_window", "a whole number ≥ 1 and ≤ 1000000000", [1, 10**9]),
    ("agents[0].price.input_per_mtok", "a finite number ≥ 0 and ≤ 1e6", [0, 1e6]),
    ("agents[0].price.output_per_mtok", "a finite number ≥ 0 and ≤ 1e6", [0, 1e6]),
    ("agents[0].prior.mean", "a finite number > 0 and < 1", [0.001, 0.999]),
    ("agents[0].prior.modes.code", "a finite number > 0 and < 1", [0.001, 0.999]),
    ("agents[0].prior.skills.code.python", "a finite number > 0 and < 1", [0.001, 0.999]),
    ("competence.big.code.debugging.successes", "a finite number ≥ 0 and ≤ 1e9", [0, C]),
    ("competence.big.code.debugging.failures", "a finite number ≥ 0 and ≤ 1e9", [0, C]),
    ("costs.big.code.n", "a finite number ≥ 0 and ≤ 1e9", [0, C]),
    ("costs.big.code.prompt_tokens", "a finite number ≥ 0 and ≤ 1000000000", [0, 10**9]),
    ("costs.big.code.completion_tokens", "a finite number ≥ 0 and ≤ 1000000000", [0, 10**9]),
    ("costs.big.code.usd", "a finite number ≥ 0 and ≤ 1e6", [0, 1e6]),
]
BAD_JSON = [(NAN, "nan"), (INF, "inf"), (-INF, "-inf"), (-1, "-1"), (1e308, "1e308"),
            (10**30, "1000000000000000000000000000000"), ("1", "a string"), (True, "a boolean"), ([], "a list")]


@pytest.mark.parametrize("path, expected, ok", HANDBOOK_FIELDS, ids=[f[0] for f in HANDBOOK_FIELDS])
@pytest.mark.parametrize("value, shown", BAD_JSON, ids=[b[1] for b in BAD_JSON])
def test_every_handbook_number_refuses_what_is_not_a_sane_number(tiny_path, path, expected, ok, value, shown):
    data = json.loads(tiny_path.read_text())
    _put(data, path, value)
    with pytest.raises(HandbookError) as e:
        from_dict(data, "t.json")
    assert e.value.problem == f"expected {expected}, got {shown}", e.value
    assert "got a number" not in str(e.value)


@pytest.mark.parametrize("path, expected, ok", HANDBOOK_FIELDS, ids=[f[0] for f in HANDBOOK_FIELDS])
def test_every_handbook_number_takes_the_values_at_its_bounds(tiny_path, path, expected, ok):
    for value in ok:
        data = json.loads(tiny_path.read_text())
        _put(data, path, value)
        from_dict(data, "t.json")


def _put(data, path, value):
    """Set a field of the tiny handbook, creating what the path needs (competence, costs, signature)."""
    if path.startswith("competence."):
        data["competence"] = {"big": {"code.debugging": {"successes": 1, "failures": 1}}}
        data["competence"]["big"]["code.debugging"][path.rsplit(".", 1)[1]] = value
    elif path.startswith("costs."):
        data["costs"] = {"big": {"code": {"n": 1, "prompt_tokens": 1, "completion_tokens": 1, "usd": 0.1}}}
        data["costs"]["big"]["code"][path.rsplit(".", 1)[1]] = value
    elif path.startswith("agents[0].prior.skills."):
        data["agents"][0]["prior"]["skills"] = {"code.python": value}
    elif path.startswith("skills[0].signature."):
        data["skills"][0]["signature"] = {"word": value}
    else:
        _set(path)(data, value)


def test_json_nan_infinity_and_huge_literals_in_a_file_are_reported_with_the_path(tmp_path, tiny_path):
    text = tiny_path.read_text()
    for literal, shown in (("NaN", "nan"), ("Infinity", "inf"), ("1e400", "inf"), ("1" + "0" * 30, "1" + "0" * 30)):
        f = tmp_path / "h.json"
        f.write_text(text.replace('"version": 1,', f'"version": 1, "evidence_through": {literal},', 1), encoding="utf-8")
        with pytest.raises(HandbookError, match=rf"\$\.metadata\.evidence_through: expected a whole number .* got {shown}$"):
            handbooks.load_file(f)


def test_a_handbook_with_every_number_at_its_bound_routes_learns_and_is_logged(tiny_path, tmp_path):
    """1e308 successes used to crash routing, and version 10**30 to overflow SQLite: the bounds are safe."""
    from skillchat.core.learning import apply_rating
    from skillchat.core.router import Router
    from skillchat.store import TraceStore

    data = json.loads(tiny_path.read_text())
    data["metadata"].update(version=INT64_MAX, parent_version=INT64_MAX - 1, evidence_through=INT64_MAX)
    data["settings"].update(prior_strength=C - 1, mode_strength=C - 1, skill_strength=C - 1)
    for m in data["modes"]:
        m["completion_tokens"] = 10**9
    for a in data["agents"]:
        a.update(context_window=10**9, price={"input_per_mtok": 1e6, "output_per_mtok": 1e6})
    data["competence"] = {a["id"]: {s["id"]: {"successes": C, "failures": C if i % 2 else 0}
                                    for i, s in enumerate(data["skills"])} for a in data["agents"]}
    data["costs"] = {a["id"]: {m["id"]: {"n": C, "prompt_tokens": 10**9, "completion_tokens": 10**9, "usd": 1e6}
                               for m in data["modes"]} for a in data["agents"]}
    hb = from_dict(data, "max.json")
    router = Router(hb)
    for policy in ("thompson", "greedy"):
        d = router.route([Message("user", "Why does my python script raise KeyError?")], lam=10.0, policy=policy,
                         rng=random.Random(1))
        assert all(math.isfinite(a.score) and math.isfinite(a.cost_usd) for a in d.ranking)
        assert math.isclose(sum(a.probability for a in d.ranking), 1.0)
    apply_rating(hb, d.chosen, d.skill_weights(), 1.0)
    store = TraceStore.open(tmp_path / "t.db")
    cid = store.new_conversation()
    mid = store.add_message(cid, "user", "hi")
    tid = store.start_turn(cid, mid, d, demo=False)
    assert store.turn(tid).handbook_version == INT64_MAX
    store.add_handbook_event("switch", hb.name, hb.version)


# --- command-line flags and the environment ----------------------------------------------------------

SEED = f"a whole number ≥ {-INT64_MAX - 1} and ≤ {INT64_MAX}"
FLAGS = [
    (["ask", "--demo", "--seed", "9" * 5000, "hi"], "argument --seed", SEED, "an integer of 5000 digits"),
    (["ask", "--demo", "--seed", "nan", "hi"], "argument --seed", SEED, "nan"),
    (["spend", "--limit", "-1"], "argument --limit", "a whole number ≥ 0 and ≤ 1000000000", "-1"),
    (["route", "--seed", "1e400", "hi"], "argument --seed", SEED, "inf"),
    (["relearn", "--half-life", "nan"], "argument --half-life", "a finite number > 0 and ≤ 1e6", "nan"),
    (["relearn", "--min-split", "10000000000"], "argument --min-split", "a whole number ≥ 2 and ≤ 1000000000",
     "10000000000"),
    (["bench", ".", "--knn", "-3"], "argument --knn", "a whole number ≥ 1 and ≤ 1000000", "-3"),
    (["ask", "--lambda", "nan", "hi"], "argument --lambda/-l", None, "nan"),
]


@pytest.mark.parametrize("argv, flag, expected, shown", FLAGS, ids=[" ".join(f[0][:3]) for f in FLAGS])
def test_every_numeric_flag_is_a_usage_error_when_wrong(capsys, argv, flag, expected, shown):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    if expected is None:
        assert last.endswith(f"error: {flag}: lambda must be a finite number between 0 and 10, got {shown}")
    else:
        assert last.endswith(f"error: {flag}: expected {expected}, got {shown}")
    assert "Traceback" not in err


@pytest.mark.parametrize("host", ["127.0.0.1:99999999", "127.0.0.1:0", "127.0.0.1:http", "localhost:-5"])
def test_an_ollama_host_with_an_impossible_port_is_explained(host):
    from skillchat.providers.detect import ollama_url, probe_ollama

    s = probe_ollama(ollama_url({"OLLAMA_HOST": host}), timeout=0.2)
    assert not s.up and "port must be a whole number ≥ 1 and ≤ 65535" in s.problem and "OLLAMA_HOST" in s.problem


# --- prices from litellm's list and from providers ----------------------------------------------------

def test_a_price_list_entry_that_is_not_a_sane_number_is_no_price():
    from skillchat.pricing import _count, _rate

    assert [_rate(v) for v in (None, 0, 1e-6, NAN, INF, -1e-6, "0.1", True)] == [0.0, 0.0, 1e-6, None, None, None, None, None]
    assert [_count(v) for v in (8192, 8192.0, 0, NAN, INF, "8192", None)] == [8192, 8192, None, None, None, None, None]


def test_a_cost_that_comes_out_nan_is_unknown_never_zero():
    from skillchat.providers.litellm_client import actual_cost
    from skillchat.providers.pool import Endpoint

    class Broken:
        @staticmethod
        def cost_per_token(**kw):
            return NAN, 0.0

    ep = Endpoint("x", "openai/x", "openai/x", "config", price=Price(NAN, 1e-6))
    assert actual_cost(Broken, ep, 10, 10) == (0.0, False)
    good = Endpoint("x", "openai/x", "openai/x", "config", price=Price(1e-6, 2e-6))
    assert actual_cost(Broken, good, 10, 10) == (pytest.approx(3e-5), True)
