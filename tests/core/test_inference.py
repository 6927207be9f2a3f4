import pytest

from skillchat import handbooks
from skillchat.core import KeywordInferrer, Message, from_dict, profile_from_weights
from skillchat.core.handbook import to_dict
from skillchat.core.inference import turn_kind


def infer(hb, *texts, roles=None, **kw):
    """The profile of a conversation whose turns alternate user, assistant (unless `roles` says)."""
    roles = roles or ["user" if i % 2 == 0 else "assistant" for i in range(len(texts))]
    return KeywordInferrer(hb, **kw).infer([Message(r, t) for r, t in zip(roles, texts, strict=True)])


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


# --- exact weights: how much each kind of evidence counts ------------------------------------------
# With similarity_weight 0 only indicators count, and a skill scores log2(1 + its hits), so the
# weights below are worked by hand from the rules in core/inference.py's docstring.
def keywords_only(hb, *texts, roles=None, **kw):
    return infer(hb, *texts, roles=roles, similarity_weight=0.0, **kw)


def shares(p):
    return {s.id: round(s.weight, 4) for s in p.skills}


def test_an_indicator_inside_quotes_counts_half(tiny):
    assert shares(keywords_only(tiny, "optimize the traceback")) == {"code.debugging": 0.5, "code.performance": 0.5}
    # log2(1 + 0.5) against log2(2): 0.585 / 1.585 of the weight.
    assert shares(keywords_only(tiny, "optimize the 'traceback'")) == {"code.performance": 0.6309, "code.debugging": 0.3691}


def test_a_longer_phrase_counts_more_than_one_word(tiny):
    # "stack trace" is two words: 1.25 hits, log2(2.25) = 1.17 against "faster"'s 1.
    assert shares(keywords_only(tiny, "stack trace and faster")) == {"code.debugging": 0.5392, "code.performance": 0.4608}


def test_a_follow_up_weighs_itself_half_and_the_turn_it_follows_fully(tiny):
    p = keywords_only(tiny, "Why does this raise TypeError: unsupported operand?", "Because ...", "now make it faster")
    # "faster" counts 0.5, the TypeError question 1.0; the weaker one is exactly at min_share of the top and stays.
    assert shares(p) == {"code.debugging": 0.6667, "code.performance": 0.3333}
    assert p.weights() == {s.id: s.weight for s in p.skills}


def test_a_message_sent_after_one_that_got_no_answer_still_has_its_context(tiny):
    # A failed turn leaves the user's message unanswered; the next one follows it all the same.
    p = keywords_only(tiny, "Why does this raise TypeError: unsupported operand?", "now make it faster", roles=["user", "user"])
    assert shares(p) == {"code.debugging": 0.6667, "code.performance": 0.3333}


def test_a_message_with_nothing_of_its_own_takes_the_decayed_context(tiny):
    # The previous question counts 0.5, the last answer 0.25 ("optimize"): 0.25 is half the top, so it stays.
    p = keywords_only(tiny, "Why does this raise TypeError?", "You should optimize it", "zxqv blorp")
    assert shares(p) == {"code.debugging": 0.6667, "code.performance": 0.3333}
    assert all("earlier in the conversation" in s.evidence for s in p.skills)


def test_one_full_indicator_hit_is_enough_to_stand_alone(tiny):
    p = keywords_only(tiny, "Why does this raise TypeError?", "Because ...", "What is the derivative?")
    assert shares(p) == {"math.calculus": 1.0}


def test_a_follow_up_that_names_a_strong_topic_of_its_own_stands_alone(tiny):
    # It starts like a follow-up ("and what about"), but three calculus hits (log2(4) = strong_topic) are a subject.
    p = keywords_only(tiny, "Why does this raise TypeError?", "Because ...",
                      "and what about the derivative, the integral and the limit?")
    assert shares(p) == {"math.calculus": 1.0}


def test_what_a_follow_up_asks_for_stays_within_max_skills(tiny):
    p = keywords_only(tiny, "Why does this raise TypeError in my pandas code?", "Because ...", "now make it faster", max_skills=2)
    # The context's two skills outscore "faster", which takes the weaker one's place.
    assert shares(p) == {"code.debugging": 0.6667, "code.performance": 0.3333}


def test_at_most_max_skills_are_active_and_ties_go_alphabetically(tiny):
    p = keywords_only(tiny, "bug faster python derivative percent")
    assert shares(p) == {"code.debugging": 0.25, "code.performance": 0.25, "code.python": 0.25, "math.arithmetic": 0.25}
    assert shares(keywords_only(tiny, "faster bug", max_skills=1)) == {"code.debugging": 1.0}


def fruit_handbook(tiny, **fruit):
    """Two skills, "Fruit" (apple pear) and the fallback "Chat" (hello pear), small enough to work
    tf-idf out by hand: idf is log(3/2) + 1 = 1.405 for a word in one skill's text, 1 for "pear"."""
    doc = to_dict(tiny)
    doc["modes"] = [m for m in doc["modes"] if m["id"] in ("math", "chat")]
    doc["skills"] = [
        {"id": "math.fruit", "mode": "math", "name": "Fruit", "description": "apple pear", "indicators": [], "examples": [],
         **fruit},
        {"id": "chat.general", "mode": "chat", "name": "Chat", "description": "hello pear", "indicators": [], "examples": []},
    ]
    for a in doc["agents"]:
        a["prior"]["modes"], a["prior"]["skills"] = {}, {}
    return from_dict(doc)


def similarity(hb, text):
    p = KeywordInferrer(hb, min_share=0.0).infer([Message("user", text)])
    return p.confident, [(s.id, round(s.weight, 4)) for s in p.skills], p.skills[0].evidence


def test_similarity_is_tf_idf_cosine_to_each_skills_text(tiny):
    hb = fruit_handbook(tiny)
    # The query (1, 1.405) against fruit's unit vector (1.405, 1.405, 1) / 2.225 and chat's (pear
    # 1/2.225): cosines 0.775 and 0.261, so the weights are 0.775 / 1.036 and 0.261 / 1.036.
    assert similarity(hb, "pear apple") == (True, [("math.fruit", 0.7484), ("chat.general", 0.2516)],
                                            ("similar to its examples (0.78)",))
    # A word no skill has weighs log(3) + 1 = 2.099 and dilutes every cosine alike: 1.337 / 2.717.
    assert similarity(hb, "pear apple zorb")[1:] == ([("math.fruit", 0.7484), ("chat.general", 0.2516)],
                                                  ("similar to its examples (0.49)",))
    # A quoted word counts half: the query is (0.5, 1.405).
    assert similarity(hb, "'pear' apple")[1] == [("math.fruit", 0.832), ("chat.general", 0.168)]
    # A repeated word counts 1 + log(count), in the query and in a skill's text alike.
    assert similarity(hb, "apple apple pear")[1:] == ([("math.fruit", 0.8129), ("chat.general", 0.1871)],
                                                   ("similar to its examples (0.76)",))
    assert similarity(fruit_handbook(tiny, description="apple apple pear"), "pear apple")[2] == (
        "similar to its examples (0.86)",)


def test_a_faint_similarity_alone_is_not_a_confident_match(tiny):
    # Cosine 0.119 with either skill: 2.5 x 0.119 is below the threshold of 0.5.
    assert similarity(fruit_handbook(tiny), "pear zorb quux blah") == (
        False, [("chat.general", 1.0)], ("no skill matched confidently",))
    # A pattern is matched, not read as words of the skill's text: the same cosines, plus one hit.
    assert similarity(fruit_handbook(tiny, indicators=["re:zorb"]), "pear zorb quux blah")[:2] == (
        True, [("math.fruit", 0.8133), ("chat.general", 0.1867)])


def test_a_learned_signature_weighs_its_terms_by_idf(tiny):
    # Signature terms are stems; (1 x 1.405, 1 x 1) normalised, against the query "apple": 0.815.
    hb = fruit_handbook(tiny, name="x", description="x", signature={"appl": 1.0, "pear": 1.0})
    assert similarity(hb, "apple") == (True, [("math.fruit", 1.0)], ("similar to its examples (0.81)",))


def test_a_pattern_hit_counts_as_much_as_a_phrase(tiny):
    assert shares(keywords_only(tiny, "TypeError faster")) == {"code.debugging": 0.5, "code.performance": 0.5}


def weak_question_mark_on(hb, sid):
    doc = to_dict(hb)
    next(s for s in doc["skills"] if s["id"] == sid)["indicators"].append("re:(?P<weak>\\?\\s*$)")
    return from_dict(doc)


def test_a_follow_ups_own_form_is_no_topic(tiny):
    # "why?" ends with a question mark, a weak hint of code.python here; after a debugging question
    # the turn is about that question, not about python.
    hb = weak_question_mark_on(tiny, "code.python")
    assert shares(keywords_only(hb, "Why does this raise TypeError here", "Because ...", "why?")) == {"code.debugging": 1.0}


def test_a_weak_hint_of_another_mode_is_dropped_once_the_mode_is_decided(tiny):
    hb = weak_question_mark_on(tiny, "math.arithmetic")
    p = keywords_only(hb, "Why does this raise TypeError?")
    assert p.mode == "code" and shares(p) == {"code.debugging": 1.0}


def test_a_conversation_without_a_user_message_falls_back(tiny):
    for msgs in ([], [Message("assistant", "Hello! How can I help?")]):
        p = KeywordInferrer(tiny).infer(msgs)
        assert not p.confident and shares(p) == {"chat.general": 1.0}
        assert p.skills[0].evidence == ("no user message",)


@pytest.mark.parametrize(
    "text, kind",
    [
        ("", "new"),
        ("?!", "new"),
        ("Paris?", "follow-up"),
        ("Paris, really?", "follow-up"),
        ("Paris seriously, really?", "new"),
        ("the tests pass with it now", "follow-up"),
        ("the tests pass with it now too", "new"),
        ("and " + "word " * 11, "follow-up"),
        ("and " + "word " * 12, "new"),
        ("thanks " * 8, "closing"),
        ("thanks " * 9, "new"),
    ],
)
def test_turn_kind_boundaries(text, kind):
    # Follow-ups are short: at most 12 words, 6 for one that only refers back ("it", "that"), 2 for a
    # bare question; a closing is at most 8 words of thanks and the like.
    assert turn_kind(text) == kind


def test_explicit_weights_keep_positive_known_skills_and_are_confident(tiny):
    p = profile_from_weights(tiny, {"code.debugging": 0.6, "code.python": 0.4, "code.performance": 0.0})
    assert p.confident and p.mode == "code"
    assert shares(p) == {"code.debugging": 0.6, "code.python": 0.4}
    fb = profile_from_weights(tiny, {"code.debugging": 0.0})
    assert not fb.confident and shares(fb) == {"chat.general": 1.0}


def test_a_tie_between_modes_does_not_depend_on_the_order_given(tiny):
    one = profile_from_weights(tiny, {"math.calculus": 1.0, "code.debugging": 1.0})
    other = profile_from_weights(tiny, {"code.debugging": 1.0, "math.calculus": 1.0})
    assert one.mode == other.mode


def test_earlier_turns_count_less_the_further_back_they_are(tiny):
    # Nothing of its own: the previous three questions count 0.5, 0.25 and 0.125 (the answers, "ok", nothing).
    p = keywords_only(tiny, "what's the derivative", "ok", "and the percent", "ok", "a bug", "ok", "zxqv blorp", min_share=0.0)
    assert shares(p) == {"code.debugging": 0.5714, "math.arithmetic": 0.2857, "math.calculus": 0.1429}
    # A follow-up: the question it follows counts fully, the one before 0.25, the last answer 0.5.
    p = keywords_only(tiny, "what's the derivative", "ok", "a bug", "you should optimize it", "why?", min_share=0.0)
    assert shares(p) == {"code.debugging": 0.5714, "code.performance": 0.2857, "math.calculus": 0.1429}


def test_a_long_pattern_is_shown_by_its_start(tiny):
    doc = to_dict(tiny)
    long = r"\b(zorbulate|frobnicate|quuxify|blorpinate|snarfle)\b"
    next(s for s in doc["skills"] if s["id"] == "code.python")["indicators"] = [f"re:{long}", r"re:\bdef \w+\("]
    p = keywords_only(from_dict(doc), "please frobnicate it, def go(")
    assert p.skills[0].evidence == (f"pattern /{long[:38]}…/", r"pattern /\bdef \w+\(/")
