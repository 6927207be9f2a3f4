"""The app, `route`, `ask` and `bench` must route with the same inferrer and settings: the one
built by skillchat.routing. Swap it for a recording one and check every entry point uses it
(`ask` runs its turn through the service, like the app)."""

import pytest

from skillchat import routing
from skillchat.core.inference import KeywordInferrer


class Recording(KeywordInferrer):
    seen: list[str] = []

    def infer(self, messages):
        Recording.seen.append(messages[-1].content)
        return super().infer(messages)


@pytest.fixture
def recording(monkeypatch):
    Recording.seen = []
    monkeypatch.setattr(routing, "build_inferrer", lambda hb: Recording(hb))
    return Recording


def test_route_command_uses_the_one_router(recording, capsys):
    from skillchat.cli import main

    assert main(["route", "What is 15% of 240?", "--json"]) == 0
    assert recording.seen == ["What is 15% of 240?"]


async def test_the_app_service_uses_the_one_router(recording):
    from skillchat.service import ChatService

    svc = ChatService.create(demo=True, probe=False)
    try:
        assert isinstance(svc.router.inferrer, Recording)
    finally:
        svc.close()


def test_the_bench_uses_the_one_router(recording, tiny):
    from skillchat.bench.runner import Learner

    assert isinstance(Learner(tiny).router.inferrer, Recording)


def test_one_default_cost_weight_for_the_app_the_core_and_the_bench():
    # The bench replays a user who keeps the app's default; the core's default is for callers
    # that name none. All three must be the one chosen on validation (skillchat.config).
    from skillchat.bench.runner import BenchOptions
    from skillchat.config import DEFAULT_LAMBDA, Config
    from skillchat.core import router

    assert router.DEFAULT_LAMBDA == DEFAULT_LAMBDA == Config().lam
    assert BenchOptions().train_lambda == BenchOptions().curve_lambda == DEFAULT_LAMBDA
    assert router.Router.route.__kwdefaults__["lam"] == router.Router.decide.__kwdefaults__["lam"] == DEFAULT_LAMBDA
