"""User configuration: a TOML file in the config dir (SKILLCHAT_CONFIG or --config name another).

Every problem is reported as one ConfigError naming the file and the key. A missing file is not an
error: defaults apply and providers are detected from the environment.

    handbook = "general"          # active handbook: NAME or NAME@VERSION
    lambda = 0.1                  # cost weight in routing (0 = ignore cost)
    demo = false                  # scripted agents instead of real providers
    timeout = 60                  # seconds before a silent model call counts as failed
    explore = true                # "gentle": stray from the best expected model on at most 1 turn in 4;
                                  # false: always take the best expected model (no Thompson draw)

    [budget]
    daily_usd = 2.0               # hard limits: a turn that would break one is refused
    monthly_usd = 30.0
    soft_daily_usd = 1.0          # soft limits: warn, but go on
    soft_monthly_usd = 20.0

    [[agents]]                    # add an agent, or change one of the handbook's (same id)
    id = "my-llama"
    model = "openai/llama-3.1-8b" # a litellm model string
    api_base = "http://127.0.0.1:8080/v1"
    api_key_env = "MY_SERVER_KEY" # the NAME of an environment variable, never the key itself
    input_per_mtok = 0.0          # price, when litellm's list does not know the model
    output_per_mtok = 0.0
    context_window = 8192
    enabled = true

    [keymap]                      # binding id = keys
    rate_up = "plus"
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillchat import paths, reading
from skillchat.errors import INT64_MAX, ConfigError, expected_number, number_problem
from skillchat.text_safety import os_reason, shown

DEFAULT_HANDBOOK = "general"
# The cost weight routing uses unless the user sets another (config `lambda`, `--lambda`, /lambda).
# Chosen on validation folds of the replay sets (benchmarks/bench_tune.py): a user who teaches at
# 0.2 calls the dearest model too rarely to keep its record, and the learned router then falls
# below the best single model at its cost (-0.041 and -0.020 on the two sets, against -0.008 and
# +0.000 at 0.1), with worse answers while teaching (0.767 and 0.575 against 0.792 and 0.583).
DEFAULT_LAMBDA = 0.1
DEFAULT_TIMEOUT_S = 60.0
# Costs are normalised to [0, 1] and competences live in [0, 1], so beyond 10 the cost term swamps
# competence entirely and the cheapest agent always wins; inf and nan make every score nan or -inf.
MAX_LAMBDA = 10.0
# Bounds of the other numbers a config holds. NaN and the infinities are never accepted: a NaN
# budget would compare false with every spend and so switch the limit off, a NaN price would record
# every call as $0. Past these bounds a value can only be a typo.
MAX_TIMEOUT_S = 86_400.0  # a day
MAX_USD = 1e9  # a budget
MAX_PER_MTOK = 1e6  # a price per million tokens: a dollar a token
MAX_TOKENS = 10**9  # a context window


@dataclass(frozen=True)
class AgentConfig:
    id: str
    model: str | None = None
    api_base: str | None = None
    api_key_env: str | None = None
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    context_window: int | None = None
    enabled: bool = True
    name: str | None = None


@dataclass(frozen=True)
class Budget:
    daily_usd: float | None = None
    monthly_usd: float | None = None
    soft_daily_usd: float | None = None
    soft_monthly_usd: float | None = None


# The routing policy each `explore` value asks for (core/router.py POLICIES), and the value each
# word of `/explore on|gentle|off` (and `bench --explore`) stands for.
EXPLORE_POLICIES: dict[bool | str, str] = {True: "thompson", "gentle": "gentle", False: "greedy"}
EXPLORE_WORDS: dict[str, bool | str] = {"on": True, "gentle": "gentle", "off": False}


def explore_policy(explore: bool | str) -> str:
    return EXPLORE_POLICIES[explore]


@dataclass(frozen=True)
class Config:
    path: Path | None = None  # the file it came from, if any
    handbook: str = DEFAULT_HANDBOOK
    lam: float = DEFAULT_LAMBDA
    demo: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    # Exploration is how ratings teach the router about cheaper models; without it, routing only
    # learns about the models it already prefers. True, "gentle" or False: see EXPLORE_POLICIES.
    explore: bool | str = True
    budget: Budget = field(default_factory=Budget)
    agents: tuple[AgentConfig, ...] = ()
    keymap: dict[str, str] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        """The file this config came from, or where it is looked for."""
        return self.path or paths.config_file()


def _num(where: str, key: str, v: Any, lo: float | None = 0.0, hi: float | None = None, *,
         lo_open: bool = False) -> float:
    problem = number_problem(v, lo=lo, hi=hi, lo_open=lo_open)
    if problem:
        raise ConfigError(f"{where}: {key}: {problem}")
    return float(v)


def _whole(where: str, key: str, v: Any, lo: int, hi: int) -> int:
    problem = number_problem(v, lo=lo, hi=hi, whole=True)
    if problem:
        raise ConfigError(f"{where}: {key}: {problem}")
    return int(v)


def check_lambda(value: Any) -> float:
    """The cost weight as a float, or a ConfigError saying what is wrong with it.

    The one check behind every way of setting lambda (config file, --lambda, /lambda, the service),
    so they all accept and refuse the same values. Text is parsed, as typed on a command line.
    """
    shown = repr(value)
    if isinstance(value, str):
        shown = value.strip() or repr(value)
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"lambda must be a number between 0 and {MAX_LAMBDA:g}, got {shown}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"lambda must be a number between 0 and {MAX_LAMBDA:g}, got {shown}")
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= MAX_LAMBDA):
        raise ConfigError(f"lambda must be a finite number between 0 and {MAX_LAMBDA:g}, got {value:g}")
    return value + 0.0  # -0.0 would print as "-0"


def lambda_arg(text: str) -> float:
    """argparse type for --lambda: a bad value is a usage error (exit 2), not a traceback."""
    import argparse

    try:
        return check_lambda(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def whole_arg(lo: int | None = None, hi: int | None = INT64_MAX) -> Any:
    """An argparse type for a whole-number flag within bounds (ids, counts, seeds)."""
    import argparse

    def parse(text: str) -> int:
        digits = text.strip().lstrip("+-")
        if len(digits) > 40 and digits.isascii() and digits.isdigit():  # int() refuses past 4300 digits
            raise argparse.ArgumentTypeError(f"expected {expected_number(lo=lo, hi=hi, whole=True)}, "
                                             f"got an integer of {len(digits)} digits")
        try:
            value: Any = int(text.strip())
        except ValueError:
            value = text.strip()
            try:  # say "got 1.5" or "got nan" rather than "got '1.5'"
                value = float(value)
            except ValueError:
                pass
        problem = number_problem(value, lo=lo, hi=hi, whole=True)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return int(value)

    return parse


def number_arg(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Any:
    """An argparse type for a number flag within bounds; NaN and the infinities are refused."""
    import argparse

    def parse(text: str) -> float:
        value: Any = text.strip()
        try:
            value = float(value)
        except ValueError:
            pass
        problem = number_problem(value, lo=lo, hi=hi, lo_open=lo_open)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return float(value)

    return parse


def _str(where: str, key: str, v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{where}: {key}: expected a non-empty string, got {v!r}")
    return v


_TOP = {"handbook", "lambda", "demo", "timeout", "explore", "budget", "agents", "keymap"}
_AGENT_KEYS = {"id", "model", "api_base", "api_key_env", "input_per_mtok", "output_per_mtok", "context_window", "enabled", "name"}
_BUDGET_KEYS = {"daily_usd", "monthly_usd", "soft_daily_usd", "soft_monthly_usd"}


def parse(data: dict[str, Any], where: str) -> Config:
    unknown = set(data) - _TOP
    if unknown:
        raise ConfigError(f"{where}: unknown setting {sorted(unknown)[0]!r} (known: {', '.join(sorted(_TOP))})")
    handbook = _str(where, "handbook", data["handbook"]) if "handbook" in data else DEFAULT_HANDBOOK
    lam = DEFAULT_LAMBDA
    if "lambda" in data:
        v = data["lambda"]
        if isinstance(v, bool) or not isinstance(v, (int, float)):  # TOML text is not a number, even "0.5"
            raise ConfigError(f"{where}: lambda: {number_problem(v, lo=0.0, hi=MAX_LAMBDA)}")
        try:
            lam = check_lambda(v)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    demo = data.get("demo", False)
    if not isinstance(demo, bool):
        raise ConfigError(f"{where}: demo: expected true or false, got {demo!r}")

    explore = data.get("explore", True)
    if not (isinstance(explore, bool) or explore == "gentle"):
        raise ConfigError(f"{where}: explore: expected true, false or \"gentle\", got {explore!r}")
    timeout_s = DEFAULT_TIMEOUT_S
    if "timeout" in data:
        timeout_s = _num(where, "timeout", data["timeout"], lo=0.0, hi=MAX_TIMEOUT_S, lo_open=True)

    b = data.get("budget", {})
    if not isinstance(b, dict):
        raise ConfigError(f"{where}: budget: expected a table")
    for k in b:
        if k not in _BUDGET_KEYS:
            raise ConfigError(f"{where}: budget.{k}: unknown setting (known: {', '.join(sorted(_BUDGET_KEYS))})")
    budget = Budget(**{k: _num(where, f"budget.{k}", v, lo=0.0, hi=MAX_USD) for k, v in b.items()})

    agents = []
    raw_agents = data.get("agents", [])
    if not isinstance(raw_agents, list):
        raise ConfigError(f"{where}: agents: expected [[agents]] tables")
    seen: set[str] = set()
    for i, a in enumerate(raw_agents):
        key = f"agents[{i}]"
        if not isinstance(a, dict):
            raise ConfigError(f"{where}: {key}: expected a table")
        for k in a:
            if k not in _AGENT_KEYS:
                raise ConfigError(f"{where}: {key}.{k}: unknown setting (known: {', '.join(sorted(_AGENT_KEYS))})")
        if "api_key" in a:
            raise ConfigError(f"{where}: {key}.api_key: put keys in the environment and name the variable in api_key_env")
        aid = _str(where, f"{key}.id", a.get("id"))
        if aid in seen:
            raise ConfigError(f"{where}: {key}.id: duplicate agent id {aid!r}")
        seen.add(aid)
        cw = a.get("context_window")
        if cw is not None:
            cw = _whole(where, f"{key}.context_window", cw, 1, MAX_TOKENS)
        enabled = a.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where}: {key}.enabled: expected true or false, got {enabled!r}")
        agents.append(
            AgentConfig(
                id=aid,
                model=_str(where, f"{key}.model", a["model"]) if "model" in a else None,
                api_base=_str(where, f"{key}.api_base", a["api_base"]) if "api_base" in a else None,
                api_key_env=_str(where, f"{key}.api_key_env", a["api_key_env"]) if "api_key_env" in a else None,
                input_per_mtok=(_num(where, f"{key}.input_per_mtok", a["input_per_mtok"], hi=MAX_PER_MTOK)
                                if "input_per_mtok" in a else None),
                output_per_mtok=(_num(where, f"{key}.output_per_mtok", a["output_per_mtok"], hi=MAX_PER_MTOK)
                                 if "output_per_mtok" in a else None),
                context_window=cw,
                enabled=enabled,
                name=_str(where, f"{key}.name", a["name"]) if "name" in a else None,
            )
        )

    keymap = data.get("keymap", {})
    if not isinstance(keymap, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keymap.items()):
        raise ConfigError(f"{where}: keymap: expected a table of binding id = \"keys\"")
    return Config(handbook=handbook, lam=lam, demo=demo, timeout_s=timeout_s, explore=explore, budget=budget,
                  agents=tuple(agents), keymap=dict(keymap))


def _toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not valid TOML: {e}") from None
    except RecursionError:  # the parser recurses once per level: 200,000 '[' exhaust the stack
        raise ConfigError(f"{where}: not valid TOML: nested too deeply") from None
    except ValueError:  # int() refuses to read more than 4300 digits
        raise ConfigError(f"{where}: not valid TOML: a number too long to read") from None


def load(path: Path | None = None) -> Config:
    path = path or paths.config_file()
    where = shown(path, 200)
    try:
        # A link that leads nowhere (a loop, a file that is gone) is a broken config, not a missing
        # one: the budgets it sets must not silently lapse.
        if not path.exists() and not path.is_symlink():
            return Config()
        data = _toml(reading.read_text(path, reading.MAX_CONFIG_BYTES, "a config file"), where)
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: cannot read it ({os_reason(e)})") from None
    cfg = parse(data, where)
    return Config(**{**cfg.__dict__, "path": path})


# --- changing one setting ---------------------------------------------------------------------

_KEY_LINE = r"""^(\s*{key}\s*=\s*)("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s#]+)(\s*(?:#.*)?)$"""


def _toml_value(value: str | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def set_value(key: str, value: str | float | bool, path: Path | None = None) -> Path:
    """Set one top-level setting (e.g. `handbook`) in the config file, atomically.

    Everything else in the file (other settings, tables, comments, order) is kept as it is. A
    missing file is created. A file that is not valid TOML or not a valid config is left untouched
    and reported as a ConfigError naming it; so is a result that would not read back the same.
    """
    import re

    from skillchat import atomic

    if key not in _TOP or key in ("budget", "agents", "keymap"):
        raise ConfigError(f"cannot set {key!r}: only top-level settings ({', '.join(sorted(_TOP))}) can be set")
    path = path or paths.config_file()
    where = shown(path, 200)
    try:
        exists = path.exists() or path.is_symlink()
        text = reading.read_text(path, reading.MAX_CONFIG_BYTES, "a config file") if exists else ""
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: cannot read it ({os_reason(e)})") from None
    try:
        data = _toml(text, where)
    except ConfigError as e:
        raise ConfigError(f"{e}; it was left unchanged") from None
    parse(data, where)

    lines = text.splitlines(keepends=True)
    pattern = re.compile(_KEY_LINE.format(key=re.escape(key)))
    new_line = f"{key} = {_toml_value(value)}"
    done = False
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith("["):
            break  # past the top-level settings
        if re.match(rf"^\s*{re.escape(key)}\s*=", line):
            m = pattern.match(line.rstrip("\r\n"))
            if m is None:
                raise ConfigError(f"{where}: {key}: cannot rewrite this value automatically; edit the file")
            ending = line[len(line.rstrip("\r\n")):] or "\n"
            lines[i] = m.group(1) + _toml_value(value) + m.group(3) + ending
            done = True
            break
    if not done:
        # Insert before the first table, after any leading comments and settings.
        at = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("[")), len(lines))
        while at > 0 and not lines[at - 1].strip():
            at -= 1
        if at > 0 and not lines[at - 1].endswith("\n"):
            lines[at - 1] += "\n"
        lines.insert(at, new_line + "\n")
    new_text = "".join(lines)
    try:
        data = _toml(new_text, where)
        parse(data, where)
    except ConfigError as e:
        raise ConfigError(f"{where}: setting {key} would break the file ({e}); it was left unchanged") from None
    if data.get(key) != value:
        raise ConfigError(f"{where}: {key}: the change did not read back; it was left unchanged")
    try:
        atomic.write_text(path, new_text)
    except OSError as e:
        raise ConfigError(f"{where}: cannot write it ({os_reason(e)}); it was left unchanged") from None
    return path
