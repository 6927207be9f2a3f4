"""Demo ratings and real ones are kept apart, and the CLI says so (issue 12, item 7): the app in demo
mode learns from the demo's ratings; `route --demo` and `relearn --demo` show the same, plain `route`
and `relearn` say when only the demo has ratings, and `route` routes with the ratings the app uses."""

from __future__ import annotations

import json
import random

import pytest

from skillchat import handbooks, paths
from skillchat.cli import main
from skillchat.core import Message, Router
from skillchat.events import Attempt
from skillchat.store import TraceStore

TEXT = "why does my program crash with a keyerror on this dict lookup"


@pytest.fixture
def tiny_installed(tiny_path):
    hb = handbooks.load_file(tiny_path)
    handbooks.save_version(hb)
    paths.config_file().write_text('handbook = "tiny"\nlambda = 0.1\n')
    return hb


def rated_turns(hb, n: int, *, demo: bool, good: str) -> None:
    """n turns routed by the real Router and logged; `good` is rated up, every other agent down."""
    rng = random.Random(0)
    store = TraceStore.open()
    router = Router(hb)
    try:
        cid = store.new_conversation(demo=demo)
        for _ in range(n):
            mid = store.add_message(cid, "user", TEXT)
            d = router.route([Message("user", TEXT)], lam=0.1, rng=rng)
            tid = store.start_turn(cid, mid, d, demo=demo)
            store.finish_turn(tid, "answered", attempts=[Attempt(d.chosen, "m", True, cost_usd=0.001)],
                              agent_id=d.chosen, model=d.winner.model, text="answer", prompt_tokens=40,
                              completion_tokens=80, cost_usd=0.001, cost_known=True, latency_s=0.3, ttft_s=0.1)
            store.rate(tid, 1.0 if d.chosen == good else 0.0)
    finally:
        store.close()


def competences(capsys, *args: str) -> dict[str, float]:
    assert main(["route", TEXT, "--json", "--greedy", *args]) == 0
    captured = capsys.readouterr()
    return {a["agent_id"]: a["competence"] for a in json.loads(captured.out)["ranking"]}, captured.err


def test_route_and_relearn_say_when_only_the_demo_has_ratings(tiny_installed, capsys):
    before, _ = competences(capsys)
    rated_turns(tiny_installed, 30, demo=True, good="small")
    real, err = competences(capsys)
    assert real == before  # demo ratings never move real routing
    assert "30 rated demo turns count only in demo mode" in err and "route --demo" in err
    demo, err = competences(capsys, "--demo")
    assert demo["small"] > real["small"] + 0.05 and demo["big"] < real["big"]
    assert "demo" in err

    assert main(["relearn"]) == 0
    out = capsys.readouterr().out
    assert "no rated turns yet" in out and "30 rated demo turns" in out and "relearn --demo" in out
    config_before = paths.config_file().read_text()
    assert main(["relearn", "--demo", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["counts"]["used"] == 30 and d["path"] is None and d["activated"] is None
    # A plain recount: the same as routing with the ratings applied online, and said so.
    assert d["changes"] == [] and "No change, as expected" in d["summary"]
    assert sorted(p.name for p in (paths.user_handbooks_dir() / "tiny").glob("v*.json")) == ["v1.json"]
    assert paths.config_file().read_text() == config_before


def test_route_routes_with_the_ratings_the_app_uses(tiny_installed, capsys):
    before, _ = competences(capsys)
    rated_turns(tiny_installed, 30, demo=False, good="small")
    after, err = competences(capsys)
    assert after["small"] > before["small"] + 0.05 and "demo" not in err


def test_relearn_demo_cannot_activate(tiny_installed, capsys):
    with pytest.raises(SystemExit) as e:
        main(["relearn", "--demo", "--yes"])
    assert e.value.code == 2
