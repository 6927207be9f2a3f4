"""The pool: which of the handbook's agents (plus the config's) can be called here, and how.

An agent is usable through, in this order: an endpoint of its own from the config (api_base), its
provider's key in the environment, a running Ollama that has the model, or a LiteLLM proxy that
serves it. Every unusable agent gets a reason `skillchat doctor` can show. Routing excludes the
unusable ones, so a missing key never costs a failed call.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from skillchat.config import AgentConfig, Config
from skillchat.core.handbook import Agent, Handbook, Prior
from skillchat.core.ports import Price
from skillchat.errors import ConfigError
from skillchat.pricing import LitellmPriceBook
from skillchat.providers import keys, local_model
from skillchat.providers.detect import Environment

# An agent added only in the config has no leaderboard prior: start neutral and let ratings decide.
CONFIG_PRIOR = 0.5
DEFAULT_CONTEXT = 8192


@dataclass(frozen=True)
class Endpoint:
    agent_id: str
    model: str  # what litellm is called with (ollama/..., litellm_proxy/..., or the agent's own model)
    cost_model: str  # whose price applies: the agent's model, whatever the route to it
    via: str  # key | ollama | proxy | config | local | demo
    api_base: str | None = None
    api_key_env: str | None = None  # the NAME of the variable; its value is read at call time only
    price: Price | None = None  # the configured price, used when litellm's list lacks the model
    mock_response: Any = None  # demo and tests: litellm's mock_response (text or an exception)


@dataclass(frozen=True)
class AgentStatus:
    agent_id: str
    name: str
    model: str
    usable: bool
    how: str  # how it is reached, or why not


@dataclass
class Pool:
    endpoints: dict[str, Endpoint]
    statuses: list[AgentStatus]
    environment: Environment | None
    demo: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def usable(self) -> list[str]:
        return [s.agent_id for s in self.statuses if s.usable]

    @property
    def unusable(self) -> list[str]:
        return [s.agent_id for s in self.statuses if not s.usable]

    def why_not(self, agent_ids: Iterable[str]) -> dict[str, str]:
        """Of these agents, those that cannot be called now, each with why (a missing key, say)."""
        how = {st.agent_id: st.how for st in self.statuses if not st.usable}
        return {a: how.get(a, "not reachable") for a in agent_ids if a not in self.endpoints}


def with_config_agents(hb: Handbook, cfg: Config, prices: LitellmPriceBook | None = None) -> Handbook:
    """The handbook's agents, changed or extended by the config's [[agents]] (the handbook is modified).

    The embedded local model joins them unless SKILLCHAT_LOCAL_MODEL=off (if it is not installed,
    the pool says how to install it)."""
    prices = prices or LitellmPriceBook()
    if not local_model.disabled() and local_model.AGENT_ID not in hb.agents:
        hb.agents[local_model.AGENT_ID] = local_model.agent()
    where = str(cfg.path) if cfg.path else "config"
    for i, ac in enumerate(cfg.agents):
        price = _config_price(ac)
        if ac.id in hb.agents:
            a = hb.agents[ac.id]
            hb.agents[ac.id] = dataclasses.replace(
                a,
                model=ac.model or a.model,
                name=ac.name or a.name,
                context_window=ac.context_window or a.context_window,
                price=price or a.price,
            )
            continue
        if not ac.model:
            raise ConfigError(f"{where}: agents[{i}].model: required for {ac.id!r}, which is not in handbook {hb.name!r}")
        hb.agents[ac.id] = Agent(
            id=ac.id,
            model=ac.model,
            name=ac.name or ac.id,
            context_window=ac.context_window or prices.context_window(ac.model) or DEFAULT_CONTEXT,
            prior=Prior(CONFIG_PRIOR, "added in the config: neutral prior"),
            price=price,
        )
    return hb


def _config_price(ac: AgentConfig) -> Price | None:
    if ac.input_per_mtok is None and ac.output_per_mtok is None:
        return None
    return Price.per_million(ac.input_per_mtok or 0.0, ac.output_per_mtok or 0.0)


def _ollama_has(models: frozenset[str], name: str) -> bool:
    return name in models or (":" not in name and f"{name}:latest" in models)


def build_pool(hb: Handbook, cfg: Config, environment: Environment | None, *, demo: bool = False,
               env: Mapping[str, str] | None = None, local: local_model.LocalServer | None = None) -> Pool:
    """`local`: the local model's server, if this process runs one (it says whether it failed to start)."""
    prices = LitellmPriceBook()
    by_id = {a.id: a for a in cfg.agents}
    endpoints: dict[str, Endpoint] = {}
    statuses: list[AgentStatus] = []
    for agent in hb.agents.values():
        ac = by_id.get(agent.id)
        price = agent.price
        if ac is not None and not ac.enabled:
            statuses.append(AgentStatus(agent.id, agent.name, agent.model, False, "disabled in the config"))
            continue
        if demo:
            endpoints[agent.id] = Endpoint(agent.id, agent.model, agent.model, "demo", price=price)
            statuses.append(AgentStatus(agent.id, agent.name, agent.model, True, "demo: scripted answers, no model called"))
            continue
        if agent.id == local_model.AGENT_ID and agent.model == local_model.MODEL and not (ac and ac.api_base):
            ep, how = _route_local(agent, local)
        else:
            ep, how = _route(agent, ac, environment, prices, env)
        if ep is not None:
            endpoints[agent.id] = dataclasses.replace(ep, price=price)
        statuses.append(AgentStatus(agent.id, agent.name, agent.model, ep is not None, how))
    return Pool(endpoints, statuses, environment, demo)


def _route_local(agent: Agent, local: local_model.LocalServer | None) -> tuple[Endpoint | None, str]:
    if local_model.disabled():  # a relearned handbook keeps the agent
        return None, f"the local model is off ({local_model.MODEL_ENV}=off)"
    why = (local.error if local is not None else None) or local_model.problem()
    if why:
        return None, why if why.startswith("the local model") else f"the local model: {why}"
    if local is not None and local.running():
        return Endpoint(agent.id, agent.model, agent.model, "local", local.url), f"local model at {local.url}"
    # The address is the server's once it runs: the service asks it at call time.
    return (Endpoint(agent.id, agent.model, agent.model, "local", "http://127.0.0.1:0/v1"),
            "local model, started by skillchat when needed")


def _route(agent: Agent, ac: AgentConfig | None, environment: Environment | None, prices: LitellmPriceBook,
           env: Mapping[str, str] | None) -> tuple[Endpoint | None, str]:
    env = os.environ if env is None else env
    model = agent.model
    if ac is not None and ac.api_base:
        if ac.api_key_env and not env.get(ac.api_key_env):
            return None, f"needs {ac.api_key_env} (named in the config) to be set"
        return Endpoint(agent.id, model, model, "config", ac.api_base, ac.api_key_env), f"config endpoint {ac.api_base}"
    info = prices.info(model) or {}
    provider = keys.provider_of(model, info.get("litellm_provider"))
    if provider in ("ollama", "ollama_chat"):
        name = model.partition("/")[2]
        o = environment.ollama if environment else None
        if o is None:
            return None, "Ollama was not checked"
        if not o.up:
            return None, f"Ollama at {o.url} is {o.problem or 'not running'}"
        if not _ollama_has(o.models, name):
            return None, f"Ollama is running but has no {name!r} (run: ollama pull {name})"
        return Endpoint(agent.id, model, model, "ollama", o.url), f"Ollama at {o.url}"
    if ac is not None and ac.api_key_env:
        if env.get(ac.api_key_env):
            return Endpoint(agent.id, model, model, "key", api_key_env=ac.api_key_env), f"key in {ac.api_key_env}"
        return None, f"needs {ac.api_key_env} (named in the config) to be set"
    names = keys.key_names(provider)
    found = environment.has_key(names) if environment else None
    if found:
        return Endpoint(agent.id, model, model, "key", api_key_env=found), f"key in {found}"
    proxy = environment.proxy if environment else None
    if environment is not None and proxy is not None:
        bare = model.partition("/")[2] if "/" in model else model
        served = next((m for m in (model, bare) if m in proxy.models), None)
        if proxy.up and served:
            return (Endpoint(agent.id, f"litellm_proxy/{served}", model, "proxy", proxy.url, environment.proxy_key_env),
                    f"LiteLLM proxy at {proxy.url}")
        if not proxy.up:
            return None, f"LiteLLM proxy at {proxy.url} {proxy.problem}" + _needs(names)
        return None, f"LiteLLM proxy at {proxy.url} does not serve {model!r}" + _needs(names)
    if provider in keys.KEYLESS:
        return Endpoint(agent.id, model, model, "key"), "local provider, no key needed"
    if names:
        return None, f"needs {' or '.join(names)}"
    return None, f"unknown provider for {model!r}: add an [[agents]] entry with api_base or api_key_env"


def _needs(names: tuple[str, ...]) -> str:
    return f"; or set {' or '.join(names)}" if names else ""
