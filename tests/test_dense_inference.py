"""The dense inferrer: the real WordLlama model shipped in the wordllama wheel, loaded offline."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from skillchat import dense_inference, handbooks, routing
from skillchat.core import KeywordInferrer, Message

pytestmark = pytest.mark.skipif(not dense_inference.available(), reason="wordllama is not installed")

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data"


@pytest.fixture(scope="module")
def general():
    return handbooks.load("general")


@pytest.fixture(scope="module")
def dense(general):
    inf = dense_inference.DenseInferrer(general)
    assert inf.wait_ready(60) and inf.dense.active, inf.note
    return inf


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_the_model_loads_without_the_network_and_leaves_logging_alone():
    # A fresh process, with every connection refused: wordllama must find its files in the wheel.
    r = run_python("""
        import logging, socket
        tried = []
        def refuse(*a, **k):
            tried.append(a)
            raise OSError("no network in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from skillchat import dense_inference
        model = dense_inference.load_model()
        print(model.embed(["hello"]).shape, tried, logging.getLogger().handlers, logging.getLogger().level)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(1, 256) [] [] 30", r.stdout  # no handler added; WARNING is still the level
    assert r.stderr == ""


def test_the_embedder_gives_wordllamas_own_vectors():
    # What WordLlama.load(...) gives when pointed at the package folder with downloads disabled, in
    # a fresh process whose connections are refused: the same model, read the documented way.
    texts = ["What is 15% of 240?", "hi", "Write a haiku about the sea, please.", "短い日本語の文", ""]
    r = run_python(f"""
        import json, socket, os
        socket.socket.connect = socket.getaddrinfo = lambda *a, **k: (_ for _ in ()).throw(OSError("offline"))
        import wordllama
        from wordllama import WordLlama
        wl = WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True)
        print(json.dumps(wl.embed({texts[:-1]!r}, norm=True).tolist()))
    """)
    assert r.returncode == 0, r.stderr
    import numpy as np

    theirs = np.array(json.loads(r.stdout))
    ours = dense_inference.load_model().embed(texts, norm=True)
    assert np.allclose(ours[:-1], theirs, atol=1e-5)
    assert np.all(np.isfinite(ours[-1]))  # an empty text is a zero vector, not NaN


# From the tune half of the ninth fresh batch: turns the keywords read wrong and the dense path reads
# right, so a regression in it fails here.
def test_meaning_reads_what_the_keywords_miss(general, dense):
    text = "what is sin(30 degrees) + cos(60 degrees)"
    assert KeywordInferrer(general).infer([Message("user", text)]).mode == "factual"  # "what is ...?" alone
    p = dense.infer([Message("user", text)])
    assert p.mode == "math"
    assert any("close in meaning" in e for s in p.skills for e in s.evidence)


def test_a_follow_up_leans_on_what_meaning_reads(general, dense):
    msgs = [Message("user", "Why am I getting 'NoneType object is not subscriptable'?"),
            Message("assistant", "You're indexing a variable that is None, often the return value of a function "
                                 "that doesn't return anything, like list.sort()."),
            Message("user", "how do I find which line?")]
    assert KeywordInferrer(general).infer(msgs).mode == "chat"
    assert dense.infer(msgs).mode == "code"


def test_keywords_still_win_when_they_fire(general, dense):
    for text in ("Write a Python function that checks whether a string is a palindrome", "What is 15% of 240?",
                 "Translate 'good morning' into French"):
        assert dense.infer([Message("user", text)]) == KeywordInferrer(general).infer([Message("user", text)])


def test_a_turn_before_the_model_is_ready_waits_for_it(general, dense):
    fresh = dense_inference.DenseInferrer(general)  # the shared model is loaded; the centroids are not yet
    msgs = [Message("user", "what is sin(30 degrees) + cos(60 degrees)")]
    assert fresh.infer(msgs) == dense.infer(msgs)


def test_a_model_that_does_not_load_means_keywords_only(general, monkeypatch):
    monkeypatch.setattr(dense_inference, "_model", None)
    monkeypatch.setattr(dense_inference, "_model_error", None)
    monkeypatch.setattr(dense_inference, "_load", lambda: (_ for _ in ()).throw(OSError("weights file is corrupt")))
    inf = dense_inference.DenseInferrer(general, background=False)
    assert not inf.dense.active and "weights file is corrupt" in inf.note
    text = "What would change if the voting age were lowered to 16?"
    assert inf.infer([Message("user", text)]) == KeywordInferrer(general).infer([Message("user", text)])


def test_build_inferrer_is_dense_by_default_and_keywords_without_wordllama(general, monkeypatch, caplog):
    assert isinstance(routing.build_inferrer(general), dense_inference.DenseInferrer)
    monkeypatch.setattr(dense_inference, "available", lambda: False)
    monkeypatch.setattr(routing, "_warned", False)
    inf = routing.build_inferrer(general)
    assert type(inf) is KeywordInferrer
    assert routing.NO_DENSE in caplog.text


def test_learned_skills_keep_the_nearest_skill_rule(tiny):
    from skillchat.core import from_dict
    from skillchat.core.handbook import to_dict

    doc = to_dict(tiny)
    for s in doc["skills"]:
        if s["id"] != doc["settings"]["fallback_skill"]:
            s["signature"] = {"blorp": 1.0}
    inf = routing.build_inferrer(from_dict(doc, "learned"))
    assert type(inf) is KeywordInferrer and inf.threshold == 0.0


def test_fresh_held_out_floor(general, dense):
    """benchmarks/data/fresh_*.jsonl were written before this inferrer and are never tuned on."""
    def items(name):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            msgs = [Message(m["role"], m["content"]) for m in d["messages"]] if "messages" in d else [Message("user", d["text"])]
            yield d["modes"], msgs

    def accuracy(name):
        rows = list(items(name))
        return sum(dense.infer(m).mode in modes for modes, m in rows) / len(rows)

    assert accuracy("fresh_requests.jsonl") >= 0.90
    assert accuracy("fresh_conversations.jsonl") >= 0.90
