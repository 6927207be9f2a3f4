"""`skillchat relearn` and `skillchat handbook history|diff|use|rollback` against a real SQLite store."""

from __future__ import annotations

import json
import random
import tomllib

import pytest

from skillchat import handbooks, paths
from skillchat.cli import main
from skillchat.core import Message, Router
from skillchat.events import Attempt
from skillchat.store import TraceStore

KEYERROR = "keyerror dict lookup missing key json config mapping dictionary field".split()
SEGFAULT = "segfault pointer malloc core dump segmentation null memory address".split()
SHARED = "why does my program fail here error crash bug".split()
TRUE = {"keyerror": {"big": 0.8, "mid": 0.95, "small": 0.5}, "segfault": {"big": 0.8, "mid": 0.1, "small": 0.5}}


@pytest.fixture
def installed(tiny_path):
    """tiny@1 in the user's handbook dir, named (without a version) by the config."""
    hb = handbooks.load_file(tiny_path)
    handbooks.save_version(hb)
    cfg = paths.config_file()
    cfg.write_text('# my settings\nhandbook = "tiny"\nlambda = 0.1\n\n[budget]\ndaily_usd = 3.0\n')
    return hb


def populate(hb, n: int, seed: int = 0, rate_every: int = 1) -> list[int]:
    """Turns routed by the real Router (Thompson, logged propensities), answered and rated via the store."""
    rng = random.Random(seed)
    store = TraceStore.open()
    router = Router(hb)
    ids = []
    try:
        cid = store.new_conversation()
        for i in range(n):
            topic = "keyerror" if i % 2 else "segfault"
            vocab = KEYERROR if topic == "keyerror" else SEGFAULT
            text = " ".join([rng.choice(vocab) for _ in range(6)] + [rng.choice(SHARED) for _ in range(3)])
            mid = store.add_message(cid, "user", text)
            d = router.route([Message("user", text)], lam=0.1, rng=rng)
            tid = store.start_turn(cid, mid, d, demo=False)
            store.finish_turn(tid, "answered", attempts=[Attempt(d.chosen, "m", True, cost_usd=0.001)],
                              agent_id=d.chosen, model=d.winner.model, text="answer", prompt_tokens=40,
                              completion_tokens=80, cost_usd=0.001, cost_known=True, latency_s=0.3, ttft_s=0.1)
            if i % rate_every == 0:
                # Ratings follow the truth, whatever skills the router saw.
                y = 1.0 if rng.random() < TRUE[topic][d.chosen] else 0.0
                store.rate(tid, y)
            ids.append(tid)
    finally:
        store.close()
    return ids


def config_text() -> str:
    return paths.config_file().read_text()


def user_versions(name="tiny"):  # type: ignore[no-untyped-def]
    return sorted(p.name for p in (paths.user_handbooks_dir() / name).glob("v*.json"))


def test_relearn_yes_writes_a_version_and_activates_it(installed, capsys):
    populate(installed, 240)
    assert main(["relearn", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "tiny@1 -> tiny@2" in out and "Activated tiny@2" in out
    assert user_versions() == ["v1.json", "v2.json"]
    cfg = tomllib.loads(config_text())
    assert cfg["handbook"] == "tiny@2" and cfg["lambda"] == 0.1 and cfg["budget"]["daily_usd"] == 3.0
    assert config_text().startswith("# my settings\n")  # the rest of the file is kept as it was
    v2 = handbooks.load("tiny@2")
    assert v2.parent_version == 1 and v2.evidence_through is not None
    assert v2.evidence.total() == pytest.approx(240)
    rec = v2.history[-1]
    assert rec["kind"] == "relearn" and rec["counts"]["used"] == 240 and "evaluation" in rec
    assert v2.costs and all(c.usd == pytest.approx(0.001) for c in v2.costs.values())


def test_relearn_splits_from_real_history_and_reports_the_estimate(installed, capsys):
    populate(installed, 400, seed=3)
    assert main(["relearn", "--yes", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["activated"] is True and d["to"] == "tiny@2"
    kinds = [c["kind"] for c in d["changes"]]
    assert "split" in kinds
    ev = d["evaluation"]
    assert ev["candidate"]["n"] > 0 and ev["candidate"]["ess"] > 0
    assert ev["delta"]["low"] <= ev["delta"]["value"] <= ev["delta"]["high"]
    v2 = handbooks.load("tiny@2")
    assert any(s.parent == "code.debugging" for s in v2.skills.values())


def test_without_a_terminal_the_new_version_is_saved_but_not_activated(installed, capsys):
    populate(installed, 60)
    assert main(["relearn"]) == 0
    out = capsys.readouterr().out
    assert "Kept tiny@1" in out and "skillchat handbook use tiny@2" in out
    assert user_versions() == ["v1.json", "v2.json"]
    # The config now pins the version in use, so the newer one does not become active by itself.
    assert tomllib.loads(config_text())["handbook"] == "tiny@1"
    assert main(["route", "hello", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["handbook_version"] == 1


def test_dry_run_writes_nothing(installed, capsys):
    populate(installed, 60)
    before = config_text()
    assert main(["relearn", "--dry-run"]) == 0
    assert "Dry run: nothing was written" in capsys.readouterr().out
    assert user_versions() == ["v1.json"] and config_text() == before


def test_nothing_new_writes_no_version(installed, capsys):
    populate(installed, 60)
    assert main(["relearn", "--yes"]) == 0
    capsys.readouterr()
    assert main(["relearn", "--yes"]) == 0
    assert "Nothing new since tiny@2" in capsys.readouterr().out
    assert user_versions() == ["v1.json", "v2.json"]


def test_auto_activates_a_plain_recount(installed, capsys):
    populate(installed, 20)
    assert main(["relearn", "--auto", "--no-evolve"]) == 0
    out = capsys.readouterr().out
    assert "Activated tiny@2" in out
    assert tomllib.loads(config_text())["handbook"] == "tiny@2"


def test_auto_keeps_the_current_version_when_it_cannot_tell(installed, capsys, monkeypatch):
    from skillchat import relearning

    populate(installed, 40)
    monkeypatch.setattr(relearning, "auto_decision", lambda o: (False, "estimated worse"))
    assert main(["relearn", "--auto"]) == 0
    assert "Kept tiny@1 (estimated worse)" in capsys.readouterr().out
    assert tomllib.loads(config_text())["handbook"] == "tiny@1"


def test_cancel_leaves_nothing_written(installed, capsys, monkeypatch):
    from skillchat import relearning

    populate(installed, 60)
    before = config_text()
    real = relearning.relearn

    def interrupted(*a, **kw):  # type: ignore[no-untyped-def]
        def progress(stage, done, total):  # type: ignore[no-untyped-def]
            if stage == "evolve":
                raise KeyboardInterrupt  # Ctrl-C in the middle of the work
        kw["progress"] = progress
        return real(*a, **kw)

    monkeypatch.setattr(relearning, "relearn", interrupted)
    assert main(["relearn", "--yes"]) == 130
    assert "cancelled; nothing was written" in capsys.readouterr().err
    assert user_versions() == ["v1.json"] and config_text() == before


def test_cancel_through_the_event_leaves_nothing_written(installed):
    import threading

    from skillchat import config, relearning
    from skillchat.core.relearn import RelearnCancelled

    populate(installed, 60)
    before = config_text()
    ev = threading.Event()
    store = TraceStore.open()
    try:
        with pytest.raises(RelearnCancelled):
            relearning.run(config.load(), store, progress=lambda s, d, t: ev.set() if s == "evaluate" else None, cancel=ev)
    finally:
        store.close()
    assert user_versions() == ["v1.json"] and config_text() == before


def test_history_diff_use_and_rollback(installed, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    populate(installed, 300, seed=1)
    assert main(["relearn", "--yes"]) == 0
    capsys.readouterr()
    assert main(["handbook", "history"]) == 0
    out = capsys.readouterr().out
    assert "v1" in out and "v2" in out and "relearned from 300 rated turns" in out
    assert main(["handbook", "diff", "1", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["from"] == "tiny@1" and d["to"] == "tiny@2" and d["observations_after"] == pytest.approx(300)
    assert main(["handbook", "diff", "tiny@1", "tiny@2"]) == 0
    out = capsys.readouterr().out
    assert "rated observations by skill" in out
    # v1 holds no rating yet: said in words, not "#None".
    assert "ratings through none -> #" in out and "None" not in out
    assert main(["handbook", "rollback"]) == 0
    assert "Rolled back tiny@2 -> tiny@1" in capsys.readouterr().out
    assert tomllib.loads(config_text())["handbook"] == "tiny@1"
    assert main(["handbook", "rollback"]) == 2  # v1 has no parent
    assert "nothing to roll back to" in capsys.readouterr().err
    assert main(["handbook", "use", "tiny@2"]) == 0
    assert tomllib.loads(config_text())["handbook"] == "tiny@2"
    assert main(["handbook", "use", "tiny@9"]) == 2
    assert "no version 9" in capsys.readouterr().err
    assert tomllib.loads(config_text())["handbook"] == "tiny@2"


def test_handbook_use_of_a_file_names_the_file(tiny_path, tmp_path, monkeypatch, capsys):
    """A handbook file that is no saved version is named by its path: its name@version would name
    nothing, and every later command would fail."""
    monkeypatch.chdir(tiny_path.parent)
    assert main(["handbook", "use", tiny_path.name]) == 0
    assert tomllib.loads(config_text())["handbook"] == str(tiny_path.resolve())
    monkeypatch.chdir(tmp_path)  # an absolute path: it does not depend on where the next command runs
    capsys.readouterr()
    assert main(["route", "hello"]) == 0
    assert "tiny" in capsys.readouterr().out


def test_a_second_relearn_builds_on_the_active_version(installed, capsys):
    populate(installed, 300, seed=2)
    assert main(["relearn", "--yes"]) == 0
    populate(handbooks.load("tiny@2"), 40, seed=9)
    capsys.readouterr()
    assert main(["relearn", "--yes"]) == 0
    v3 = handbooks.load("tiny@3")
    assert v3.parent_version == 2 and v3.evidence.total() == pytest.approx(340)
    assert [h["version"] for h in v3.history if h.get("kind") == "relearn"] == [2, 3]


def test_a_malformed_handbook_is_named_and_nothing_is_written(installed, capsys):
    populate(installed, 30)
    bad = paths.user_handbooks_dir() / "tiny" / "v1.json"
    bad.write_text('{"schema_version": 1, "metadata": {"name": "tiny", "version": "one"}}')
    before = config_text()
    assert main(["relearn", "--yes"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "$.metadata.version" in err
    assert user_versions() == ["v1.json"] and config_text() == before


def test_a_malformed_config_is_named_and_not_overwritten(installed, capsys):
    paths.config_file().write_text('handbook = "tiny"\nlambda = [\n')
    before = config_text()
    for argv in (["relearn", "--yes"], ["handbook", "use", "tiny@1"], ["handbook", "rollback"]):
        assert main(argv) == 2
        assert str(paths.config_file()) in capsys.readouterr().err
        assert config_text() == before
    assert user_versions() == ["v1.json"]


@pytest.mark.parametrize("argv, problem", [
    (["--half-life", "0"], "argument --half-life: expected a finite number > 0 and ≤ 1e6, got 0"),
    (["--half-life", "nan"], "argument --half-life: expected a finite number > 0 and ≤ 1e6, got nan"),
    (["--half-life", "inf"], "got inf"),
    (["--min-split", "1"], "argument --min-split: expected a whole number ≥ 2 and ≤ 1000000000, got 1"),
    (["--min-split", "1e30"], "got 1e30"),
    (["--seed", "99999999999999999999"], "argument --seed: expected a whole number"),
])
def test_bad_options_exit_2(installed, capsys, argv, problem):
    with pytest.raises(SystemExit) as e:
        main(["relearn", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err


def test_relearn_with_an_empty_store(installed, capsys):
    assert main(["relearn", "--yes"]) == 0
    assert "Nothing new since tiny@1" in capsys.readouterr().out
    assert user_versions() == ["v1.json"]


def test_the_service_relearns_without_switching_and_activates_on_request(installed):
    from skillchat import config
    from skillchat.core.relearn import RelearnCancelled
    from skillchat.providers.detect import Environment
    from skillchat.service import ChatService

    populate(installed, 300, seed=4)
    store = TraceStore.open()
    try:
        svc = ChatService.create(config.load(), demo=False, store=store, environment=Environment(frozenset(), None, None))
        assert svc.handbook.ref == "tiny@1" and svc.handbook.evidence.total() == pytest.approx(300)  # online catch-up
        seen = []
        result = svc.relearn(progress=lambda s, d, t: seen.append(s))
        assert {"read", "evolve", "evaluate", "done"} <= set(seen)
        assert result.handbook.ref == "tiny@2" and result.path is not None and result.evaluation is not None
        assert "satisfaction" in result.evaluation.summary and result.summary
        assert svc.handbook.ref == "tiny@1"  # saved, not active
        assert svc.config.handbook == "tiny@1" and tomllib.loads(config_text())["handbook"] == "tiny@1"
        # A restart still routes with v1 until the user activates v2.
        again = ChatService.create(config.load(), demo=False, store=store, environment=Environment(frozenset(), None, None))
        assert again.handbook.ref == "tiny@1"
        hb = svc.activate(result)
        assert hb.ref == "tiny@2" and svc.handbook.ref == "tiny@2"
        assert tomllib.loads(config_text())["handbook"] == "tiny@2"
        assert store.last_handbook_event(("activate",))["version"] == 2
        # Nothing rated since: the online catch-up adds nothing to the relearned evidence.
        assert svc.handbook.evidence.total() == pytest.approx(300)
        import threading

        ev = threading.Event()
        ev.set()
        with pytest.raises(RelearnCancelled):
            svc.relearn(cancel=ev)
        assert user_versions() == ["v1.json", "v2.json"]
    finally:
        store.close()


def test_a_handbook_given_as_a_file_gets_versions_in_the_user_dir(tiny_path, capsys):
    paths.config_file().write_text(f'handbook = "{tiny_path}"\n')
    populate(handbooks.load_file(tiny_path), 40)
    assert main(["relearn"]) == 0
    assert "Kept tiny@1" in capsys.readouterr().out
    assert user_versions() == ["v2.json"]
    assert tomllib.loads(config_text())["handbook"] == str(tiny_path)  # a file is not "the newest version"
    assert main(["handbook", "use", "tiny@2"]) == 0
    assert tomllib.loads(config_text())["handbook"] == "tiny@2"


def test_llm_namer_names_skills_and_falls_back_offline():
    from skillchat.relearning import LLMNamer

    prompts = []

    def complete(prompt):  # type: ignore[no-untyped-def]
        prompts.append(prompt)
        return 'Sure! {"id": "Baking Bread", "name": "Baking", "description": "Recipes.", "mode": "chat"}', 0.0002

    n = LLMNamer(complete)
    name = n.name(["how long to bake bread"], ["bake", "bread"], ["code", "chat"])
    assert (name.slug, name.name, name.mode) == ("baking_bread", "Baking", "chat")
    assert n.calls == 1 and n.cost_usd == pytest.approx(0.0002) and "bake, bread" in prompts[0]
    garbage = LLMNamer(lambda p: ("no idea", 0.0001)).name(["x"], ["bake", "bread"], ["chat"])
    assert garbage.slug == "bake_bread"  # the offline name
    broken = LLMNamer(lambda p: (_ for _ in ()).throw(RuntimeError("timeout")))
    assert broken.name(["x"], ["oven"], ["chat"]).slug == "oven" and broken.failures == ["timeout"]
