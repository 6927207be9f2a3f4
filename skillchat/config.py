"""User configuration: a TOML file in the config dir (SKILLCHAT_CONFIG or --config name another).

Every problem is reported as one ConfigError naming the file and the key. A missing file is not an
error: defaults apply and providers are detected from the environment.

    handbook = "general"          # active handbook: NAME or NAME@VERSION
    lambda = 0.2                  # cost weight in routing (0 = ignore cost)
    demo = false                  # scripted agents instead of real providers

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

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillchat import paths
from skillchat.errors import ConfigError

DEFAULT_HANDBOOK = "general"
DEFAULT_LAMBDA = 0.2


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


@dataclass(frozen=True)
class Config:
    path: Path | None = None  # the file it came from, if any
    handbook: str = DEFAULT_HANDBOOK
    lam: float = DEFAULT_LAMBDA
    demo: bool = False
    budget: Budget = field(default_factory=Budget)
    agents: tuple[AgentConfig, ...] = ()
    keymap: dict[str, str] = field(default_factory=dict)


def _num(where: str, key: str, v: Any, lo: float | None = 0.0) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where}: {key}: expected a number, got {v!r}")
    if lo is not None and v < lo:
        raise ConfigError(f"{where}: {key}: must be >= {lo:g}, got {v!r}")
    return float(v)


def _str(where: str, key: str, v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{where}: {key}: expected a non-empty string, got {v!r}")
    return v


_TOP = {"handbook", "lambda", "demo", "budget", "agents", "keymap"}
_AGENT_KEYS = {"id", "model", "api_base", "api_key_env", "input_per_mtok", "output_per_mtok", "context_window", "enabled", "name"}
_BUDGET_KEYS = {"daily_usd", "monthly_usd", "soft_daily_usd", "soft_monthly_usd"}


def parse(data: dict[str, Any], where: str) -> Config:
    unknown = set(data) - _TOP
    if unknown:
        raise ConfigError(f"{where}: unknown setting {sorted(unknown)[0]!r} (known: {', '.join(sorted(_TOP))})")
    handbook = _str(where, "handbook", data["handbook"]) if "handbook" in data else DEFAULT_HANDBOOK
    lam = _num(where, "lambda", data["lambda"]) if "lambda" in data else DEFAULT_LAMBDA
    demo = data.get("demo", False)
    if not isinstance(demo, bool):
        raise ConfigError(f"{where}: demo: expected true or false, got {demo!r}")

    b = data.get("budget", {})
    if not isinstance(b, dict):
        raise ConfigError(f"{where}: budget: expected a table")
    for k in b:
        if k not in _BUDGET_KEYS:
            raise ConfigError(f"{where}: budget.{k}: unknown setting (known: {', '.join(sorted(_BUDGET_KEYS))})")
    budget = Budget(**{k: _num(where, f"budget.{k}", v) for k, v in b.items()})

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
        if cw is not None and (isinstance(cw, bool) or not isinstance(cw, int) or cw < 1):
            raise ConfigError(f"{where}: {key}.context_window: expected a positive integer, got {cw!r}")
        enabled = a.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where}: {key}.enabled: expected true or false, got {enabled!r}")
        agents.append(
            AgentConfig(
                id=aid,
                model=_str(where, f"{key}.model", a["model"]) if "model" in a else None,
                api_base=_str(where, f"{key}.api_base", a["api_base"]) if "api_base" in a else None,
                api_key_env=_str(where, f"{key}.api_key_env", a["api_key_env"]) if "api_key_env" in a else None,
                input_per_mtok=_num(where, f"{key}.input_per_mtok", a["input_per_mtok"]) if "input_per_mtok" in a else None,
                output_per_mtok=_num(where, f"{key}.output_per_mtok", a["output_per_mtok"]) if "output_per_mtok" in a else None,
                context_window=cw,
                enabled=enabled,
                name=_str(where, f"{key}.name", a["name"]) if "name" in a else None,
            )
        )

    keymap = data.get("keymap", {})
    if not isinstance(keymap, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keymap.items()):
        raise ConfigError(f"{where}: keymap: expected a table of binding id = \"keys\"")
    return Config(handbook=handbook, lam=lam, demo=demo, budget=budget, agents=tuple(agents), keymap=dict(keymap))


def load(path: Path | None = None) -> Config:
    path = path or paths.config_file()
    if not path.exists():
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read it ({e})") from None
    cfg = parse(data, str(path))
    return Config(**{**cfg.__dict__, "path": path})
