"""The one router: every place that routes a turn (the app, `route`, `ask`, `bench`) builds it here.

The app and the replay benchmark used to construct their own inferrer with different settings, so
the benchmark measured a router users never met. Anything that changes how turns are read or scored
by default changes here, and both see it.
"""

from __future__ import annotations

import logging

from skillchat.core.handbook import Handbook
from skillchat.core.inference import KeywordInferrer, SkillInferrer
from skillchat.core.ports import PriceBook, TokenCounter
from skillchat.core.router import Router


def build_inferrer(handbook: Handbook) -> SkillInferrer:
    """The default skill inferrer for a handbook.

    Skills learned from texts (with a `signature`) partition those texts like clusters, so a text
    goes to its nearest skill however weak the match; falling back to the general skill there
    would lump half of all turns into one bucket and hide who is good at what. Hand-written
    skills keep a confidence floor, below which the general skill is the honest answer.

    Hand-written skills are read by keywords and, where the keywords do not decide, by meaning
    (skillchat.dense_inference: embeddings of each skill's examples, loaded in the background).
    Without wordllama installed they are read by keywords alone, and a warning says so once.
    """
    learned = [s for s in handbook.skills.values() if s.id != handbook.settings.fallback_skill]
    if learned and all(s.signature for s in learned):
        return KeywordInferrer(handbook, threshold=0.0)
    from skillchat import dense_inference

    if dense_inference.available():
        return dense_inference.DenseInferrer(handbook)
    global _warned
    if not _warned:
        _warned = True
        logging.getLogger(__name__).warning(NO_DENSE)
    return KeywordInferrer(handbook)


NO_DENSE = "skill inference reads keywords only: wordllama is not installed"
_warned = False


def build_router(
    handbook: Handbook, *, token_counter: TokenCounter | None = None, prices: PriceBook | None = None
) -> Router:
    """The app's router for a handbook."""
    return Router(handbook, inferrer=build_inferrer(handbook), token_counter=token_counter, prices=prices)
