"""An answer streaming in: what is drawn matches the whole answer, typing keeps working, links and
mouse selection work on the drawn text.

The answer view draws complete Markdown blocks once and only the growing block again; these tests
hold it to what Rich draws for the whole answer at once, whatever the chunks.
"""

from __future__ import annotations

import random

from app_driver import SIZE, make_app, ready, send, start_a_long_answer, wait_for
from textual.app import App, ComposeResult
from textual.geometry import Region

from skillchat import handbooks
from skillchat.ui.widgets.answer import AnswerView, draw

# Code fences, lists that go on after a blank line ("2." arriving later), tables, a rule, a quote.
TRICKY = (
    "Intro paragraph with `inline code` and a [link](https://example.com/a).\n\n"
    "```python\ndef f(x):\n    return x * 2\n\n\nprint(f(3))\n```\n\n"
    "1. first\n\n2. second, after a blank line\n\n   still the second item\n3. third\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    "---\n\nAfter the rule.\n\n> a quote\n\n"
    "- x\n- y\n\n```\nplain fence\n```\n\nThe end."
)


def text_of(lines) -> list[str]:
    return ["".join(s.text for s in line).rstrip() for line in lines]


class OneAnswer(App):
    def compose(self) -> ComposeResult:
        yield AnswerView()


async def test_any_chunking_draws_what_the_whole_answer_draws():
    rng = random.Random(5)
    # Every split of the first fence's backticks, then random chunkings.
    fence = TRICKY.index("```")
    chunkings = [[TRICKY[:fence + k], TRICKY[fence + k:]] for k in range(4)]
    for _ in range(12):
        chunks, i = [], 0
        while i < len(TRICKY):
            n = rng.choice([1, 2, 3, 7, 40])
            chunks.append(TRICKY[i:i + n])
            i += n
        chunkings.append(chunks)
    app = OneAnswer()
    async with app.run_test(size=(80, 40)) as pilot:
        view = app.query_one(AnswerView)
        whole = text_of(draw(TRICKY, app.console, 80))
        for chunks in chunkings:
            view.set_text("")
            view.write(chunks[0])
            await pilot.pause()  # laid out: from here on each write draws incrementally
            for chunk in chunks[1:]:
                view.write(chunk)
            assert view.source == TRICKY
            assert view._done > 0, "complete blocks were drawn once, not with every update"
            assert text_of(view.lines(80)) == whole, chunks
            view.end()
            await pilot.pause()
            assert view.size.height == len(whole)


async def test_an_update_repaints_the_lines_drawn_again_not_the_room_below():
    app = OneAnswer()
    async with app.run_test(size=(80, 40)) as pilot:
        view = app.query_one(AnswerView)
        view.write("A first paragraph.\n\nA second")
        await pilot.pause()  # laid out, with room kept below the lines for what is still to come
        assert view.size.height > len(view.lines(80)) == 3
        painted: list[Region] = []
        real_refresh = view.refresh
        view.refresh = lambda *regions, **kw: painted.extend(regions) or real_refresh(*regions, **kw)
        view.write(" paragraph goes on")
        assert painted == [Region(0, 1, 80, 2)], "the growing paragraph and the blank line above it"
        assert text_of(view.lines(80))[2] == "A second paragraph goes on"


async def test_a_streamed_answer_is_exactly_what_was_sent(tmp_path, monkeypatch):
    from skillchat.providers import demo as demo_script

    answer = "\n\n".join([TRICKY] * 2)
    monkeypatch.setattr(demo_script, "answer", lambda *a: answer)
    app = make_app(tmp_path, chunk_delay_s=0.0005)  # litellm's mock chunks of 3 characters, paced
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        turn = await send(pilot, "Write a long one")
        view = turn.query_one(AnswerView)
        assert turn.text == answer and view.source == answer
        width = view.size.width
        assert text_of(view.lines(width)) == text_of(draw(answer, app.console, width))
        assert view.size.height == len(view.lines(width)), "no room is kept once the answer is complete"


async def test_keys_typed_while_an_answer_streams_all_reach_the_prompt(tmp_path, monkeypatch):
    from skillchat.providers import demo as demo_script

    monkeypatch.setattr(demo_script, "answer", lambda *a: "\n\n".join([TRICKY] * 8))
    listed = []
    real_list = handbooks.list_handbooks
    monkeypatch.setattr(handbooks, "list_handbooks", lambda: listed.append(1) or real_list())
    app = make_app(tmp_path, chunk_delay_s=0.05)  # about a minute of streaming; cancelled once typed
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        turn = await start_a_long_answer(pilot)
        listed.clear()
        typed = "while it streams, every key counts"
        await pilot.press(*[{" ": "space", ",": "comma"}.get(c, c) for c in typed])
        assert turn.status == "streaming", "the keys were typed while the answer streamed"
        await wait_for(pilot, lambda: app.chat.prompt.text == typed, what="the typed text")
        # Completion never lists the handbooks (every file read and checked) for plain text.
        assert listed == []
        app.chat.action_cancel()


async def test_completing_a_handbook_name_still_lists_them(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.click("#prompt")
        await pilot.press(*"/handbook", "space", *"use", "space", "c")
        menu = app.chat.prompt.menu
        await wait_for(pilot, lambda: menu.display, what="the completion menu")
        assert "/handbook use coding" in [menu.get_option_at_index(i).id for i in range(menu.option_count)]


async def test_clicking_a_web_link_in_an_answer_opens_it(tmp_path, monkeypatch):
    from skillchat.providers import demo as demo_script

    monkeypatch.setattr(demo_script, "answer", lambda *a: "See [the docs](https://example.com/docs) or "
                                                          "[this](javascript:alert(1)) for more.")
    app = make_app(tmp_path)
    opened = []
    monkeypatch.setattr(app, "open_url", lambda url, **kw: opened.append(url))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        turn = await send(pilot, "Where are the docs?")
        view = turn.query_one(AnswerView)
        line = text_of(view.lines(view.size.width))[0]
        await pilot.click(view, offset=(line.index("the docs") + 2, 0))
        assert opened == ["https://example.com/docs"]
        await pilot.click(view, offset=(line.index("this") + 1, 0))
        assert opened == ["https://example.com/docs"], "only web links open"


async def test_answer_text_can_be_selected_with_the_mouse(tmp_path, monkeypatch):
    from skillchat.providers import demo as demo_script

    monkeypatch.setattr(demo_script, "answer", lambda *a: "Select **these words** please.\n\nAnd a second paragraph.")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        turn = await send(pilot, "Say something to select")
        view = turn.query_one(AnswerView)
        await pilot.click(view, offset=(2, 0), times=2)  # a double click selects the whole answer
        await pilot.pause()
        selected = app.screen.get_selected_text()
        assert selected is not None
        assert "Select these words please." in selected and "And a second paragraph." in selected


async def test_each_growth_of_a_streaming_answer_lays_the_screen_out_once(tmp_path, monkeypatch):
    """A layout arranges every mounted widget and repaints the screen: the costliest thing the app
    does while an answer streams, and keys wait behind it. Textual laid the screen out a second
    time after each growth (the turn's and the transcript's sizes had changed), moving nothing."""
    from skillchat.providers import demo as demo_script

    monkeypatch.setattr(demo_script, "answer", lambda *a: "\n\n".join([TRICKY] * 4))
    app = make_app(tmp_path, chunk_delay_s=0.002)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        heights: list[int] = []

        def laid_out(screen) -> None:  # noqa: ANN001
            turn = app.chat.transcript.last_turn()
            if turn is not None and turn.status == "streaming":
                heights.append(turn.query_one(AnswerView).size.height)

        app.screen.screen_layout_refresh_signal.subscribe(app.chat, laid_out, immediate=True)
        await send(pilot, "Write a long one")
        growths = len(set(heights))
        assert growths >= 8, "the answer grew several times while it streamed"
        assert len(heights) <= growths + 2, f"{len(heights)} layouts for {growths} heights while streaming"


async def test_no_full_garbage_collection_while_an_answer_streams_one_after_it(tmp_path, monkeypatch):
    """A full collection walks every live object and stops the app for as long (0.4-0.6 s with a
    long conversation loaded): it waits while an answer streams, and runs once the answer is done."""
    import gc

    from skillchat.providers import demo as demo_script

    monkeypatch.setattr(demo_script, "answer", lambda *a: "\n\n".join([TRICKY] * 4))
    app = make_app(tmp_path, chunk_delay_s=0.01)
    thresholds = gc.get_threshold()
    full: list[tuple[bool, bool]] = []  # at each full collection: answering? the answer done?
    turn = None

    def collected(phase: str, info: dict) -> None:
        if phase == "stop" and info["generation"] == 2:
            full.append((app.chat.busy, turn is not None and turn.status == "done"))

    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        gc.callbacks.append(collected)
        try:
            gc.collect()
            # Full passes as often as Python allows: after each middle one, once the objects that
            # survived since the last full pass are a quarter of those that survived it.
            gc.set_threshold(thresholds[0], 1, 1)
            turn = await start_a_long_answer(pilot)
            kept = []
            while turn.status == "streaming":
                kept.append([[i] for i in range(20_000)])  # long-lived objects, as a long answer makes
                await pilot.pause(0.02)
            assert turn.status == "done"
            busy = [f for f in full if f[0]]
            assert not busy, f"{len(busy)} full collections while answering"
            await wait_for(pilot, lambda: (False, True) in full, what="the full collection held back")
            assert gc.get_threshold() == (thresholds[0], 1, 1), "full collections come as before once answered"
        finally:
            gc.callbacks.remove(collected)
            gc.set_threshold(*thresholds)


async def test_the_full_collection_an_answer_held_back_waits_until_no_key_has_come_for_a_moment(tmp_path):
    """Once the answer is done the user may start typing at once: the held-back pass (0.5-0.8 s
    with a long conversation) runs only after GC_QUIET_S without a key."""
    import gc
    import time

    from skillchat.ui.app import GC_QUIET_S

    app = make_app(tmp_path)
    thresholds = gc.get_threshold()
    full: list[float] = []

    def collected(phase: str, info: dict) -> None:
        if phase == "stop" and info["generation"] == 2:
            full.append(time.monotonic())

    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.chat.prompt.focus()
        gc.callbacks.append(collected)
        try:
            gc.collect()
            full.clear()
            gc.set_threshold(10**9, 1, 1)  # no collection of Python's own: only the app's can run
            with app.answering():
                gc.collect(1)
                gc.collect(1)  # two middle collections: a full one is due (threshold 1)
            assert not full
            typing_until = time.monotonic() + 2.5 * GC_QUIET_S
            while time.monotonic() < typing_until:
                await pilot.press("x")
                await pilot.pause(0.3 * GC_QUIET_S)
            assert not full, "a full collection ran while keys were coming"
            await wait_for(pilot, lambda: bool(full), what="the held-back full collection")
            assert full[0] - typing_until >= 0.6 * GC_QUIET_S, "it waited for a quiet moment"
            assert len(full) == 1
        finally:
            gc.callbacks.remove(collected)
            gc.set_threshold(*thresholds)
