"""Demo agents: scripted answers chosen by the turn's mode and skill, streamed through litellm's
mock_response (the real streaming code path, no network, no key), slowly enough to watch.

Every demo answer says it is one, so a saved transcript or export can never pass it off as a model's.
"""

from __future__ import annotations

from skillchat.core.decision import RoutingDecision
from skillchat.core.handbook import Handbook

CHUNK_DELAY_S = 0.012  # litellm mock chunks are 3 characters: about 250 characters a second

_BY_MODE = {
    "code": (
        "Here is how I would go about it ({skill}):\n\n"
        "1. Reproduce the problem with the smallest input that shows it.\n"
        "2. Read the error from the bottom up: the last frame is usually where it happened, not why.\n"
        "3. Change one thing at a time and keep a test that fails until it is fixed.\n\n"
        "```python\ndef check(example):\n    # a real agent would write the code for your question here\n"
        "    return example\n```"
    ),
    "math": (
        "Let's set it up step by step ({skill}).\n\n"
        "First write down what is known and what is asked, then pick the rule that connects them, "
        "apply it carefully, and finally check the result by substituting it back or estimating its size."
    ),
    "writing": (
        "A draft ({skill}):\n\n"
        "> Start with the point you want the reader to remember, then give the one detail that makes "
        "it believable, and end with what they should do next.\n\n"
        "Shorter sentences and concrete verbs will do most of the work."
    ),
    "factual": (
        "Short answer ({skill}): a real agent would state the fact here, with the date it is valid "
        "for and where it comes from. For anything that changes over time, check a current source."
    ),
    "analysis": (
        "Let's weigh it ({skill}).\n\n"
        "- What matters most: the goal, the constraints, and what it costs to be wrong.\n"
        "- Options: list two or three, with their main upside and risk.\n"
        "- Recommendation: the option that stays acceptable in the worst realistic case."
    ),
    "language": (
        "Translation and notes ({skill}): a real agent would give the translation here, then point "
        "out any idiom that does not carry over literally."
    ),
    "chat": "Happy to help! ({skill}) Ask me anything: code, maths, writing or just a chat.",
}
_DEFAULT = "Here is a scripted answer for {skill}. A real agent would answer your question here."


def answer(hb: Handbook, decision: RoutingDecision, agent_id: str, question: str) -> str:
    top = max(decision.skills, key=lambda s: s.weight, default=None)
    skill = hb.skills[top.id].name if top is not None and top.id in hb.skills else decision.mode
    agent = hb.agents[agent_id].name if agent_id in hb.agents else agent_id
    body = _BY_MODE.get(decision.mode, _DEFAULT).format(skill=skill)
    asked = " ".join(question.split())
    if len(asked) > 80:
        asked = asked[:79] + "…"
    return f"*Demo answer from {agent}: no model was called.*\n\nYou asked: “{asked}”\n\n{body}"
