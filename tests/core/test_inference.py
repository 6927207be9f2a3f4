import pytest

from skillchat import handbooks
from skillchat.core import KeywordInferrer, Message, from_dict, profile_from_weights
from skillchat.core.handbook import to_dict
from skillchat.core.inference import turn_kind


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


# --- which turns count: the latest message decides unless it is a follow-up -----------------------
CODE_REVIEW = (
    "Can you review this function? def avg(xs): return sum(xs)/len(xs)",
    "It crashes on an empty list with ZeroDivisionError; guard it with `if not xs: return 0.0`.",
)
CALCULUS = ("What's the integral of x*e^x?", "Integrate by parts with u = x: the result is x e^x - e^x + C.")
CODE_WRITE = (
    "Write a python function that parses a CSV file and sums the second column",
    "```python\nimport csv\ndef total(path):\n    with open(path) as f:\n"
    "        return sum(float(r[1]) for r in csv.reader(f))\n```",
)
WORD_PROBLEM = (
    "A train travels 120 km in 1.5 hours. What is its average speed?",
    "Average speed = distance / time = 120 / 1.5 = 80 km/h.",
)


@pytest.mark.parametrize(
    "context, latest, mode",
    [
        (CODE_REVIEW, "What is 15% of 240?", "math"),
        (CALCULUS, "hey, how's it going?", "chat"),
        (CALCULUS, "Write a haiku about spring rain", "writing"),
        (CODE_WRITE, "now make it faster", "code"),
        (WORD_PROBLEM, "and if it were 3x?", "math"),
        (CALCULUS, "why?", "math"),
        (CODE_WRITE, "shorter please", "code"),
        (("Write an email to my manager asking to work from home on Fridays", "Subject: Request ..."), "shorter please",
         "writing"),
    ],
)
def test_latest_message_decides_unless_it_is_a_follow_up(context, latest, mode):
    assert infer(handbooks.load("general"), *context, latest).mode == mode


def test_a_confident_new_topic_ignores_the_context():
    hb = handbooks.load("general")
    p = infer(hb, *CODE_REVIEW, "What is 15% of 240?")
    # Not even a minor code skill: the review is over.
    assert p.mode == "math" and "code" not in {hb.skills[s.id].mode for s in p.skills}
    assert not any("earlier in the conversation" in e for s in p.skills for e in s.evidence)


def test_a_follow_up_keeps_what_it_asks_for_next_to_the_context():
    hb = handbooks.load("general")
    p = infer(hb, *CODE_WRITE, "now make it faster")
    ids = {s.id for s in p.skills}
    assert {"code.write_program", "code.performance"} <= ids


def test_an_explicit_switch_drops_the_context(tiny):
    # "unrelated" says the earlier turns no longer matter, even though nothing else matches.
    p = infer(tiny, "Why does this raise TypeError: unsupported operand?", "Because ...", "unrelated question: zxqv blorp")
    assert p.skills[0].id == "chat.general" and not p.confident


def test_a_switch_is_read_by_what_follows_the_announcement():
    # The announcement used to hide the question from patterns anchored at its start.
    hb = handbooks.load("general")
    alone = infer(hb, "how long do dogs usually live?")
    switched = infer(hb, "Give me feedback on my essay intro", "Start with a fact instead.",
                     "Different question: how long do dogs usually live?")
    assert switched.mode == alone.mode == "factual"
    assert [s.id for s in switched.skills] == [s.id for s in alone.skills]


def test_a_greeting_opens_a_new_exchange_however_stretched():
    hb = handbooks.load("general")
    p = infer(hb, "What's the derivative of ln(x^2)?", "2/x", "hiii how's your day going")
    assert p.mode == "chat"


def test_a_weak_new_message_still_leans_on_the_context(tiny):
    p = infer(tiny, "Why does this raise TypeError: unsupported operand?", "Because ...", "zxqv blorp")
    assert p.mode == "code"


@pytest.mark.parametrize(
    "text, kind",
    [
        ("unrelated: what is 7% of 300?", "switch"),
        ("different question, how tall is Everest?", "switch"),
        ("thanks, that's great!", "closing"),
        ("ok cool", "closing"),
        ("now make it faster", "follow-up"),
        ("and if it were 3x?", "follow-up"),
        ("why?", "follow-up"),
        ("shorter please", "follow-up"),
        ("what about in miles per hour?", "follow-up"),
        ("it still happens", "follow-up"),
        ("Write a Python function that checks whether a string is a palindrome", "new"),
        ("hey, how's it going?", "switch"),
        ("hiii how's your day going", "switch"),
        ("heyyy what's up", "switch"),
        ("haha same, I'm starving", "new"),
        ("What is the capital of Australia?", "new"),
    ],
)
def test_turn_kind(text, kind):
    assert turn_kind(text) == kind


# --- fallback: exam questions and plain questions are not small talk --------------------------
@pytest.mark.parametrize(
    "text, mode",
    [
        ("Which of these came first?\nA. the wheel\nB. the zorbulator\nC. writing\nD. bronze", "factual"),
        ("Who discovered penicillin?", "factual"),
        ("How do bees make honey?", "factual"),
        ("Is it normal to have a headache every day after waking up?", "factual"),
        ("do you ever get tired of answering questions?", "chat"),
        ("I had such a long day today", "chat"),
        ("Sam buys 3 packs of pencils with 12 pencils in each pack. He gives 8 away. How many are left?", "math"),
        ("Maria earns $18 an hour and works 35 hours a week. How much does she earn in 4 weeks?", "math"),
        ("If 3x - 5 = 16, what is x?\nA. 5\nB. 7\nC. 9\nD. 11", "math"),
        ("Write a function to find the volume of a cone.", "code"),
    ],
)
def test_general_handbook_questions(text, mode):
    assert infer(handbooks.load("general"), text).mode == mode


def test_weak_patterns_decide_alone_but_never_outvote_a_real_indicator(tiny):
    doc = to_dict(tiny)
    fb = doc["settings"]["fallback_skill"]
    other = next(s for s in doc["skills"] if s["id"] != fb and s["mode"] != "code")
    other["indicators"] = ["re:(?P<weak>\\?\\s*$)"]
    hb = from_dict(doc)
    alone = KeywordInferrer(hb).infer([Message("user", "zxqv blorp?")])
    assert alone.confident and alone.skills[0].id == other["id"]
    both = KeywordInferrer(hb).infer([Message("user", "Why does this raise TypeError?")])
    assert both.mode == "code"
    assert "weak" in __import__("skillchat.core.inference", fromlist=["x"]).__doc__


def test_the_coding_handbook_still_reads_small_talk_and_code():
    hb = handbooks.load("coding")
    assert infer(hb, "hi there").mode == "chat"
    assert infer(hb, "ok so the build passes but now it segfaults in valgrind").mode != "chat"


def test_a_weak_hint_that_lost_the_mode_is_not_one_of_the_skills():
    hb = handbooks.load("general")
    p = infer(hb, "Why does my Python code raise KeyError?")
    # It ends with "?", a weak hint of factual QA; the turn is code, so only code skills are active.
    assert p.mode == "code" and {hb.skills[s.id].mode for s in p.skills} == {"code"}
    assert sum(s.weight for s in p.skills) == pytest.approx(1.0)
