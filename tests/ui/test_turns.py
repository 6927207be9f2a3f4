"""A full turn through the real service (demo agents, real SQLite): typed, routed, streamed, rated."""

from __future__ import annotations

import pytest
from app_driver import SIZE, db_rows, make_app, plain, ready, run_command, send, start_a_long_answer, wait_for
from textual.widgets import Collapsible

from skillchat.errors import StoreError
from skillchat.ui.widgets.answer import AnswerView
from skillchat.ui.widgets.turn import AssistantTurn, RateButton


async def test_full_turn_routes_streams_and_rates(tmp_path, monkeypatch):
    app = make_app(tmp_path, chunk_delay_s=0.002)
    shown_before_first_token: list[str] = []
    original_append = AssistantTurn.append

    async def spy(self, chunk):
        if not self.text:  # the first token: the decision must already be on screen
            shown_before_first_token.append(str(self.query_one(".routing").render()))
        await original_append(self, chunk)

    monkeypatch.setattr(AssistantTurn, "append", spy)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.click("#prompt")
        await pilot.press(*"Why does my Python loop raise KeyError?", "enter")
        turn = await wait_for(pilot, lambda: app.chat.transcript.last_turn(), what="a turn")
        await wait_for(pilot, lambda: turn.status == "done", 30, "the answer")

        d = turn.decision
        assert d is not None and d.mode == "code"
        winner = d.winner.name
        assert shown_before_first_token and winner in shown_before_first_token[0]
        assert "DEMO" in shown_before_first_token[0]
        assert "Debugging" in shown_before_first_token[0]  # the active skill, with its weight
        # The streamed text is the answer the service stored, and the prompt is empty again.
        stored = db_rows(app, "SELECT content FROM messages WHERE role = 'assistant'")
        assert stored == [(turn.text,)]
        assert "Demo answer from" in turn.text and app.chat.prompt.text == ""
        assert "out ·" in str(turn.query_one(".stats").render())

        # Rate by key: stored at once.
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: turn.rating == "up", what="the rating")
        assert db_rows(app, "SELECT turn_id, value, replaced_by FROM ratings") == [(turn.turn_id, 1.0, None)]
        assert "rated good" in str(turn.query_one(".rate-up", RateButton).render())

        # Rate by mouse: the new rating replaces the old one.
        await pilot.click(".rate-down")
        await wait_for(pilot, lambda: turn.rating == "down", what="the new rating")
        rows = db_rows(app, "SELECT value, replaced_by FROM ratings ORDER BY id")
        assert rows[-1] == (0.0, None) and rows[0][1] is not None
        assert "rated bad" in str(turn.query_one(".rate-down", RateButton).render())


async def test_why_expands_to_the_full_ranking(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        turn = await send(pilot, "What is the integral of x squared?")
        why = turn.query_one(Collapsible)
        assert why.collapsed
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: not why.collapsed, what="the ranking")
        ranking = turn.query_one(".ranking")
        text = plain(ranking.content)
        for agent in app.service.handbook.agents.values():
            assert agent.name in text
        assert "competence" in text and "chosen:" in text and "because" in text


async def test_answer_markdown_highlights_code(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        turn = await send(pilot, "Fix this Python traceback: TypeError in my loop")
        assert "def check" in turn.text
        # The fenced block is drawn as highlighted code: `def` in a colour of its own.
        lines = [line for view in turn.query(AnswerView) for line in view.lines(80)]
        code = next(line for line in lines if "def check" in "".join(s.text for s in line))
        keyword = next(s for s in code if s.text.strip() == "def")
        assert keyword.style is not None and keyword.style.color is not None


async def test_prompt_history_recalls_earlier_messages(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "first question")
        await send(pilot, "second question")
        prompt = app.chat.prompt
        await pilot.press("up")
        assert prompt.text == "second question"
        await pilot.press("up")
        assert prompt.text == "first question"
        await pilot.press("down", "down")
        assert prompt.text == ""


async def test_copy_and_regenerate(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        first = await send(pilot, "Write a haiku about autumn")
        await pilot.press("ctrl+y")
        assert app.clipboard == first.text
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(app.chat.transcript.turns()) == 2, what="a second turn")
        second = app.chat.transcript.turns()[-1]
        await wait_for(pilot, lambda: second.status == "done", what="the regenerated answer")
        assert second.turn_id != first.turn_id
        assert db_rows(app, "SELECT count(*) FROM turns WHERE status = 'answered'") == [(2,)]


async def test_escape_stops_a_running_answer(tmp_path):
    app = make_app(tmp_path, chunk_delay_s=0.05)  # slow enough to stop half-way
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        turn = await start_a_long_answer(pilot)
        await pilot.press("escape")
        await wait_for(pilot, lambda: turn.status == "stopped", what="the stop")
        await wait_for(pilot, lambda: db_rows(app, "SELECT status FROM turns") == [("cancelled",)], what="the log")
        assert not app.chat.busy


async def test_a_message_sent_before_providers_load_waits_then_goes(tmp_path):
    """litellm loads in the background; an early message says so and is sent once it is ready."""
    from fakes import ScriptedService

    from skillchat.ui.app import SkillchatApp

    svc = ScriptedService(answer="ready now", load_delay=None)  # loads only when the test says so
    app = SkillchatApp(service_factory=lambda cfg, demo: svc, cwd=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.service is not None, what="the service")
        await pilot.click("#prompt")
        app.chat.prompt.insert("hello early")
        await pilot.press("enter")
        turn = await wait_for(pilot, lambda: app.chat.transcript.last_turn(), what="a turn")
        await wait_for(pilot, lambda: "still loading" in str(turn.query_one(".turn-notes").render()),
                       what="the waiting note")
        assert app.providers == "loading" and "loading" in str(app.chat.query_one("#status").render())
        svc.release.set()
        await wait_for(pilot, lambda: turn.status == "done", what="the queued answer")
        assert turn.text == "ready now"
        assert str(turn.query_one(".turn-notes").render()) == ""


async def test_the_timing_fake_shows_its_demo_spend_in_the_status_line(tmp_path):
    """The header reads spend() in demo mode; the fake answers it (benchmarks/bench_ui_stream.py runs on it)."""
    from fakes import ScriptedService

    from skillchat.ui.app import SkillchatApp

    app = SkillchatApp(service_factory=lambda cfg, demo: ScriptedService(), cwd=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "(demo)" in str(app.chat.query_one("#status").render()), what="the demo spend")


async def test_select_an_earlier_answer_and_rate_it_by_key(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        first = await send(pilot, "What is 2+2?")
        await send(pilot, "And 3+3?")
        await pilot.press("alt+up", "alt+up")
        assert app.focused is first
        await pilot.press("minus")
        await wait_for(pilot, lambda: first.rating == "down", what="the rating")
        assert db_rows(app, "SELECT turn_id, value FROM ratings") == [(first.turn_id, 0.0)]


async def test_a_service_that_cannot_open_fails_turns_and_commands_with_its_reason(tmp_path):
    """Nothing reaches for a service that never opened: a message fails saying why, a command that
    needs the service says it could not start (not "still starting up", forever), and code that
    asks for it anyway gets a clear error rather than an AttributeError on None."""
    from skillchat.ui.app import ServiceNotOpen, SkillchatApp

    def cannot_open(cfg, demo):
        raise StoreError("the trace database is locked by another program")

    app = SkillchatApp(service_factory=cannot_open, cwd=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.providers == "failed", what="the failure")
        turn = await send(pilot, "hello")
        assert turn.status == "failed"
        assert "Models cannot be reached: the trace database is locked" in str(turn.query_one(".turn-notes").render())
        await run_command(pilot, "/spend")
        said = "/spend: skillchat could not start its service: the trace database is locked by another program"
        await wait_for(pilot, lambda: said in [n.message for n in app._notifications], what="the reason")
        assert not any("Still starting up" in n.message for n in app._notifications)
        with pytest.raises(ServiceNotOpen, match="the chat service is not open"):
            app.require_service()


async def test_a_turn_removed_while_its_mount_is_queued_does_not_crash_the_app(tmp_path):
    # A turn scrolled out of the mounted window can lose its children before its Mount event runs
    # (seen under load in CI): showing its rating then has no buttons to show it on.
    app = make_app(tmp_path)
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "hello")
        turn = app.chat.transcript.last_turn()
        assert isinstance(turn, AssistantTurn)
        await turn.query(RateButton).remove()
        turn.on_mount()
        turn.rating = "up"
        await pilot.pause()
        assert app.is_running and app.return_code is None
