"""The routing core: handbook model, skill inference, scoring and learning.

Pure Python and standard library only: no UI, database or provider code is imported here
(tests/test_architecture.py enforces it), so the core is fast to import and easy to test.
"""

from skillchat.core.competence import Posterior, posterior
from skillchat.core.decision import AgentScore, RoutingDecision
from skillchat.core.handbook import Agent, Handbook, Mode, Prior, Settings, Skill, from_dict, to_dict
from skillchat.core.inference import ActiveSkill, KeywordInferrer, SkillInferrer, SkillProfile, profile_from_weights
from skillchat.core.learning import RatedTurn, apply_rating, rating_score, replace_rating
from skillchat.core.ports import HeuristicCounter, Message, Price, PriceBook, TokenCounter
from skillchat.core.router import NoEligibleAgent, Router, estimate_cost, win_probabilities

__all__ = [
    "ActiveSkill", "Agent", "AgentScore", "Handbook", "HeuristicCounter", "KeywordInferrer", "Message",
    "Mode", "NoEligibleAgent", "Posterior", "Price", "PriceBook", "Prior", "RatedTurn", "Router", "RoutingDecision",
    "Settings", "Skill", "SkillInferrer", "SkillProfile", "TokenCounter", "apply_rating", "estimate_cost",
    "from_dict", "posterior", "profile_from_weights", "rating_score", "replace_rating", "to_dict",
    "win_probabilities",
]
