"""ChatService: one turn = route -> stream from a provider -> write the trace -> learn. UI-free, async.

The contract the UI codes against is skillchat/service_api.py (docs/architecture.md says more). Each
part is its own module, and ChatService puts them together over one shared state (session.py):

* turns.py      the turn runner: route, stream, fall back, cancel (compare.py: two answers side by side)
* outcomes.py   writing a turn: its outcome, its progress while streaming, a broken call's partial cost
* holds.py      hard budgets: each call reserves the most it can cost before it is made
* lifecycle.py  which handbook routes: load, switch, relearn, activate; ratings applied to it
* demo.py       demo mode, whose ratings never reach a handbook file
* records.py    the log read back: conversations, turns, spend, exports

Invariants kept here:
* the user's message is committed before any provider is called, whatever happens next;
* the routing decision is logged before the first token, with every agent's probability;
* the in-memory handbook = its file + every rating newer than its `evidence_through` (applied at
  start-up) + ratings given in this session, each credited to the skills stored with its turn;
* a hard budget is never crossed: each call first reserves, in the database and atomically with
  the check, the most it can cost (max_tokens makes that finite), and settles to its real cost after;
* a running turn saves what it has streamed (text, estimated cost) every second or so, so a turn
  whose process is killed is closed on the next start with that (TraceStore.mark_interrupted);
* a rating changes the in-memory evidence by what the log says the handbook held for that turn,
  never by what this process last saw (another process may have rated it meanwhile).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from skillchat import config as config_mod
from skillchat import handbooks
from skillchat.config import Config
from skillchat.core.handbook import Handbook
from skillchat.pricing import LitellmPriceBook
from skillchat.providers import demo as demo_script
from skillchat.providers import local_model
from skillchat.providers.detect import Environment, detect
from skillchat.providers.litellm_client import LitellmProvider, litellm_loaded
from skillchat.providers.pool import build_pool, with_config_agents
from skillchat.service.compare import Comparing
from skillchat.service.demo import DemoMode
from skillchat.store import TraceStore
from skillchat.store.budget import Reservations
from skillchat.store.comparisons import Comparisons
from skillchat.tokens import TiktokenCounter


class ChatService(Comparing, DemoMode):
    def __init__(
        self,
        *,
        config: Config,
        store: TraceStore,
        handbook: Handbook,
        environment: Environment | None,
        demo: bool,
        demo_reason: str = "",
        provider: LitellmProvider | None = None,
        rng: random.Random | None = None,
        chunk_delay_s: float | None = None,
        env: Mapping[str, str] | None = None,
        handbook_ref: str | None = None,
        local: local_model.LocalServer | None = None,
    ) -> None:
        self.config = config
        # The embedded local model's server: started when first needed, stopped by close(). It reads
        # the process's environment, as with_config_agents does (`env` is for provider keys).
        self.local = local if local is not None else (None if local_model.disabled() else local_model.LocalServer())
        self.handbook_ref = handbook_ref or handbook.ref
        self.store = store
        self._reservations = Reservations.of(store)
        self.comparisons = Comparisons(store)
        self.environment = environment
        self.demo_reason = demo_reason
        self._env = env
        # Variables the config names as holding keys: their values are secrets, whatever the names.
        self._key_names = tuple(sorted({a.api_key_env for a in config.agents if a.api_key_env}))
        self._counter = TiktokenCounter()
        self._prices = LitellmPriceBook()
        self.provider = provider or LitellmProvider(timeout_s=config.timeout_s, token_counter=self._counter, env=env)
        self.rng = rng or random.Random()
        self.chunk_delay_s = demo_script.CHUNK_DELAY_S if chunk_delay_s is None else chunk_delay_s
        self.lam = config.lam
        self.policy = config_mod.explore_policy(config.explore)
        self._pinned = None
        self._demo = demo
        self._ready = litellm_loaded()
        self.cancel_reason = "cancelled by the user"
        self._unsaved = {}
        self._unsaved_error = ""
        self._unsettled = set()
        self._through = None
        self._adopt(handbook)

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        config: Config | None = None,
        demo: bool | None = None,
        *,
        store: TraceStore | None = None,
        environment: Environment | None = None,
        probe: bool = True,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> ChatService:
        """Open the store, load the active handbook, detect the pool.

        demo=None: the config's `demo`, or demo agents when no real agent is usable (say so via
        `demo_reason`); True/False force it. Probing a local Ollama or a proxy takes < 2 s.
        """
        cfg = config or config_mod.load()
        store = store or TraceStore.open()
        store.mark_interrupted()
        ref = handbooks.active_ref(cfg.handbook, store)
        hb = with_config_agents(handbooks.load(ref), cfg)
        environment = environment if environment is not None else detect(env, probe=probe)
        reason = ""
        if demo is None:
            demo = cfg.demo
            if not demo and not build_pool(hb, cfg, environment, env=env).usable:
                demo, reason = True, "no provider key, Ollama model or proxy was found; running demo agents"
        return cls(config=cfg, store=store, handbook=hb, environment=environment, demo=demo, demo_reason=reason,
                   env=env, handbook_ref=ref, **kwargs)

    def close(self) -> None:
        self.save_unsaved()  # if the database is still locked, the next start closes those turns
        self.store.close()
        if self.local is not None:
            self.local.stop()
