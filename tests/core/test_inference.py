import pytest

from skillchat import handbooks
from skillchat.core import KeywordInferrer, Message, profile_from_weights


def infer(hb, *texts):
    msgs = [Message("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(texts)]
    return KeywordInferrer(hb).infer(msgs)


def test_indicator_and_pattern_give_skill_with_evidence(tiny):
    p = infer(tiny, "Why does this raise TypeError: unsupported operand?")
    assert p.mode == "code" and p.confident
    top = max(p.skills, key=lambda s: s.weight)
    assert top.id == "code.debugging"
    assert any("TypeError" in e for e in top.evidence)


def test_weights_are_normalised_and_bounded(tiny):
    p = infer(tiny, "my python pandas script has a bug and is too slow, please optimize and fix the traceback")
    assert sum(s.weight for s in p.skills) == pytest.approx(1.0)
    assert 1 <= len(p.skills) <= 4
    assert {"code.debugging", "code.performance", "code.python"} <= {s.id for s in p.skills}


def test_word_forms_match(tiny):
    assert infer(tiny, "it keeps optimizing nothing").skills[0].id == "code.performance"


def test_no_confident_match_falls_back_to_general_skill(tiny):
    p = infer(tiny, "zxqv blorp")
    assert not p.confident
    assert [s.id for s in p.skills] == ["chat.general"]
    assert p.skills[0].weight == 1.0
    assert "no skill matched confidently" in p.skills[0].evidence


def test_follow_up_keeps_the_conversation_context():
    hb = handbooks.load("general")
    alone = infer(hb, "now make it faster")
    after_code = infer(
        hb,
        "Write a python function that parses a CSV file and sums the second column",
        "```python\ndef total(path):\n    import csv\n    return sum(float(r[1]) for r in csv.reader(open(path)))\n```",
        "now make it faster",
    )
    assert after_code.mode == "code"
    ids = {s.id for s in after_code.skills}
    assert "code.performance" in ids
    assert any("earlier in the conversation" in e for s in after_code.skills for e in s.evidence)
    # Without the context, the same words still point at performance but carry no earlier-turn evidence.
    assert not any("earlier in the conversation" in e for s in alone.skills for e in s.evidence)


def test_small_talk_after_code_is_small_talk():
    hb = handbooks.load("general")
    p = infer(hb, "Fix this segfault in my C code", "Here is the fix ...", "thanks, that's great!")
    assert p.mode == "chat"


@pytest.mark.parametrize(
    "text, mode",
    [
        ("What is the derivative of x^2 * sin(x)?", "math"),
        ("Write a short poem about autumn leaves", "writing"),
        ("Translate 'good morning, how are you' into Spanish", "language"),
        ("My SQL query with three joins is very slow, how do I add an index?", "code"),
        ("Who was the first emperor of Rome?", "factual"),
        ("hi there!", "chat"),
    ],
)
def test_general_handbook_modes(text, mode):
    assert infer(handbooks.load("general"), text).mode == mode


def test_profile_from_weights_drops_unknown_ids_and_falls_back(tiny):
    p = profile_from_weights(tiny, {"code.debugging": 3, "made.up": 5})
    assert [(s.id, s.weight) for s in p.skills] == [("code.debugging", 1.0)]
    assert profile_from_weights(tiny, {"made.up": 1}).skills[0].id == "chat.general"


def test_huge_paste_is_bounded(tiny):
    text = "def f(x):\n    return x\n" * 20000 + "\nwhy is there a TypeError?"
    p = infer(tiny, text)
    assert p.mode == "code"
