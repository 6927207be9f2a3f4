"""A long conversation: only a window of it is mounted, the rest comes from the log on demand.

Conversations are written through the real store's functions (the ones the service uses for a
turn), then resumed in the real app.
"""

from __future__ import annotations

import random

from app_driver import SIZE, db_rows, make_app, ready, send, start_a_long_answer, wait_for

from skillchat.core import Message, Router
from skillchat.events import Attempt
from skillchat.ui.widgets import transcript as transcript_mod
from skillchat.ui.widgets.answer import last_block_start
from skillchat.ui.widgets.transcript import PAGE_TURNS, EarlierTurns
from skillchat.ui.widgets.turn import AssistantTurn, UserMessage


def write_conversation(app, n: int) -> tuple[int, list[int]]:
    """n logged turns ("question i" / an answer with a table and code); returns the turn ids."""
    store = app.service.store
    router = Router(app.service.handbook)
    rng = random.Random(2)
    cid = store.new_conversation(demo=True)
    ids = []
    for i in range(n):
        d = router.route([Message("user", f"question {i}")], rng=rng)
        mid = store.add_message(cid, "user", f"question {i}")
        tid = store.start_turn(cid, mid, d, demo=True)
        store.finish_turn(tid, "answered", attempts=[Attempt(d.chosen, d.winner.model, True)], agent_id=d.chosen,
                          model=d.winner.model, text=f"answer {i}\n\n| a | b |\n|---|---|\n| {i} | x |\n\n```py\nx = {i}\n```",
                          prompt_tokens=10, completion_tokens=20, cost_usd=0.001, cost_known=True, latency_s=1.0)
        ids.append(tid)
    return cid, ids


def shown(app) -> list[tuple[str, object]]:
    """The transcript's exchanges, top to bottom, as (kind, text or turn id)."""
    out = []
    for w in app.chat.transcript.children:
        if isinstance(w, UserMessage):
            out.append(("user", w.text))
        elif isinstance(w, AssistantTurn):
            out.append(("answer", w.turn_id))
    return out


async def test_a_long_conversation_opens_at_its_last_turns(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        cid, ids = write_conversation(app, 40)
        await app.resume(cid)
        await pilot.pause()
        turns = app.chat.transcript.turns()
        assert [t.turn_id for t in turns] == ids[-PAGE_TURNS:]
        assert shown(app)[0] == ("user", f"question {40 - PAGE_TURNS}")
        assert app.chat.transcript.query(EarlierTurns), "the window says earlier turns exist"
        assert turns[-1].text.startswith("answer 39") and turns[-1].rateable
        assert app.chat.last_user_text == "question 39"


async def test_scrolling_to_the_top_loads_earlier_turns_in_order(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        cid, ids = write_conversation(app, 2 * PAGE_TURNS + 3)
        await app.resume(cid)
        await pilot.pause()
        transcript = app.chat.transcript
        first = transcript.turns()[0]
        transcript.scroll_home(animate=False)
        await wait_for(pilot, lambda: len(transcript.turns()) == 2 * PAGE_TURNS, what="a page of earlier turns")
        await pilot.pause()
        # What was at the top stays in view: the page appeared above it.
        assert transcript.scroll_y > 0 and first.virtual_region.y >= transcript.scroll_y - 1
        transcript.scroll_home(animate=False)
        await wait_for(pilot, lambda: len(transcript.turns()) == len(ids), what="the first turns")
        await pilot.pause()
        assert [t.turn_id for t in transcript.turns()] == ids
        assert [x for kind, x in shown(app) if kind == "user"] == [f"question {i}" for i in range(len(ids))]
        assert not transcript.query(EarlierTurns) and not transcript.more_before


async def test_alt_up_past_the_window_loads_earlier_turns_and_rates_one(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        cid, ids = write_conversation(app, PAGE_TURNS + 4)
        await app.resume(cid)
        await pilot.pause()
        for _ in range(PAGE_TURNS + 2):
            await pilot.press("alt+up")
        await pilot.pause()
        focused = app.focused
        assert isinstance(focused, AssistantTurn)
        assert focused.turn_id == ids[-(PAGE_TURNS + 2)]
        await pilot.press("plus")
        await wait_for(pilot, lambda: focused.rating == "up", what="the rating")
        rows = db_rows(app, "SELECT value FROM ratings WHERE turn_id = ? AND replaced_by IS NULL", (focused.turn_id,))
        assert rows == [(1.0,)]


async def test_new_turns_unload_the_oldest_and_they_come_back_from_the_log(tmp_path, monkeypatch):
    monkeypatch.setattr(transcript_mod, "MAX_TURNS", 3)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        for i in range(5):
            previous = app.chat.transcript.last_turn()
            await pilot.click("#prompt")
            app.chat.prompt.insert(f"message {i}")
            await pilot.press("enter")
            await wait_for(pilot, lambda previous=previous: app.chat.transcript.last_turn() is not previous and not app.chat.busy,
                           what="the answer")
        transcript = app.chat.transcript
        assert [x for kind, x in shown(app) if kind == "user"] == ["message 2", "message 3", "message 4"]
        assert transcript.more_before
        transcript.scroll_home(animate=False)
        await wait_for(pilot, lambda: len(transcript.turns()) == 5, what="the unloaded turns")
        await pilot.pause()
        assert [x for kind, x in shown(app) if kind == "user"] == [f"message {i}" for i in range(5)]
        assert all(t.rateable for t in transcript.turns())


async def test_an_answer_streams_with_only_the_opening_window_mounted(tmp_path):
    """Each growth of a streaming answer lays out every mounted widget, and keys wait for it: after
    the user has scrolled back through a long conversation, a new turn unloads the pages read,
    down to the window the conversation opened with (they come back from the log on scrolling up)."""
    app = make_app(tmp_path, chunk_delay_s=0.03)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        cid, ids = write_conversation(app, 5 * PAGE_TURNS)
        await app.resume(cid)
        await pilot.pause()
        transcript = app.chat.transcript
        for pages in range(2, 5):
            transcript.scroll_home(animate=False)
            await wait_for(pilot, lambda pages=pages: len(transcript.turns()) == pages * PAGE_TURNS, what="earlier turns")
            await pilot.pause()
        turn = await start_a_long_answer(pilot)
        assert turn.status == "streaming"
        assert len(transcript.turns()) == PAGE_TURNS, "the new answer and the 3 before it"
        assert transcript.more_before
        await wait_for(pilot, lambda: turn.status == "done", 30, "the answer")
        transcript.scroll_home(animate=False)
        await wait_for(pilot, lambda: len(transcript.turns()) == 2 * PAGE_TURNS, what="the unloaded turns")
        assert [t.turn_id for t in transcript.turns()][:-1] == ids[-(2 * PAGE_TURNS - 1):]


def test_the_last_block_of_streamed_markdown():
    text = "para one\n\n```py\nx = 1\n\n```\n\n| a |\n|---|\n| 1 |\n\nthe tail is still"
    assert text[last_block_start(text):] == "the tail is still"
    assert last_block_start("```py\nstill open\n\nmore") == 0


async def test_the_first_message_after_opening_a_conversation_counts_it_in_a_thread(tmp_path, monkeypatch):
    # Routing counts the context's tokens (cached by text). Counted on the event loop, the first new
    # message in a 500-turn conversation held the app for 0.7 s.
    import threading
    import uuid

    from skillchat import tokens

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        marker = uuid.uuid4().hex  # texts no earlier test has counted
        store = app.service.store
        cid = store.new_conversation(demo=True)
        router = Router(app.service.handbook)
        history = []
        for i in range(12):
            question, answer = f"question {i} {marker}", f"answer {i} {marker}\n\n" + "some words " * 50
            d = router.route([Message("user", question)], rng=random.Random(i))
            tid = store.start_turn(cid, store.add_message(cid, "user", question), d, demo=True)
            store.finish_turn(tid, "answered", attempts=[Attempt(d.chosen, d.winner.model, True)], agent_id=d.chosen,
                              model=d.winner.model, text=answer, prompt_tokens=10, completion_tokens=20,
                              cost_usd=0.001, cost_known=True, latency_s=1.0)
            history += [question, answer]

        counted = tokens._count_text
        on_the_loop: list[str] = []
        in_a_thread: list[str] = []

        def recording(text: str) -> int:
            misses = counted.cache_info().misses
            n = counted(text)
            if counted.cache_info().misses > misses:
                (on_the_loop if threading.current_thread() is threading.main_thread() else in_a_thread).append(text)
            return n

        monkeypatch.setattr(tokens, "_count_text", recording)
        await app.resume(cid)
        turn = await send(pilot, f"one more question {marker}")
        assert turn.status == "done"
        assert set(history) <= set(in_a_thread)
        assert not set(on_the_loop) & set(history)
