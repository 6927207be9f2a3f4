"""The keyboard never traps the user: typing reaches the prompt, esc brings it back, and Enter
runs exactly what was typed however fast the keys arrive."""

from __future__ import annotations

from app_driver import SIZE, make_app, ready, run_command, send, wait_for
from textual import events


def post_keys(app, text: str, *, enter: bool = True) -> None:
    """Keys as one terminal read delivers them (a paste without bracketed paste, `tmux send-keys`,
    a laggy link): all queued at once, before the prompt has reacted to the first."""
    from textual.keys import _character_to_key

    for ch in text:
        app.post_message(events.Key(_character_to_key(ch), ch))
    if enter:
        app.post_message(events.Key("enter", "\r"))


run_line = run_command


# --- keyboard traps (issue 12, item 2) ------------------------------------------------------
async def test_esc_and_typing_come_back_to_the_prompt_after_alt_up(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        turn = await send(pilot, "Write a haiku about autumn")
        prompt = app.chat.prompt
        await pilot.press("alt+up")
        assert app.focused is turn
        await pilot.press("escape")
        assert app.focused is prompt
        await pilot.press("alt+up")
        assert app.focused is turn
        await pilot.press("h", "i")
        assert app.focused is prompt and prompt.text == "hi"


async def test_typing_after_clicking_a_rating_reaches_the_prompt(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        turn = await send(pilot, "Write a haiku about autumn")
        await pilot.click(".rate-up")
        await wait_for(pilot, lambda: turn.rating == "up", what="the rating")
        await pilot.press("o", "k")
        prompt = app.chat.prompt
        assert app.focused is prompt and prompt.text == "ok"
        await pilot.click(".rate-down")
        await wait_for(pilot, lambda: turn.rating == "down", what="the new rating")
        await pilot.press("escape")
        assert app.focused is prompt


async def test_an_answers_own_keys_still_act_on_it(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        turn = await send(pilot, "Write a haiku about autumn")
        await pilot.press("alt+up", "minus")
        await wait_for(pilot, lambda: turn.rating == "down", what="the rating")
        assert app.focused is turn and app.chat.prompt.text == ""


async def test_tab_with_nothing_to_complete_keeps_the_prompt(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Write a haiku about autumn")
        prompt = app.chat.prompt
        await pilot.click("#prompt")
        for text in ("hello", "/help"):
            prompt.load_text(text)
            prompt.move_cursor(prompt.document.end)
            await pilot.press("tab")
            assert app.focused is prompt
            await pilot.press("x")
            assert prompt.text == text + "x"


# --- fast input (issue 12, item 3) -----------------------------------------------------------
async def test_enter_runs_what_was_typed_even_when_the_menu_lags(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.click("#prompt")
        await run_line(pilot, "/handbook use coding")
        await pilot.press(*"/handbook use gen")
        menu = app.chat.query_one("#completions")
        assert menu.display  # offering "general"
        post_keys(app, "eral")
        await wait_for(pilot, lambda: app.service.handbook.name == "general", what="/handbook use general to run")
        assert app.chat.prompt.text == ""
        await pilot.press(*"/histor")
        post_keys(app, "y")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConversationsScreen", what="/history to open")
        assert app.chat.prompt.text == ""


async def test_enter_takes_a_completion_only_when_one_was_picked(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.click("#prompt")
        await pilot.press(*"/hand")
        await pilot.press("down", "up", "enter")  # picked in the menu: Enter completes
        assert app.chat.prompt.text == "/handbook "
        await pilot.press("l")
        post_keys(app, "ist", enter=False)
        await pilot.press("tab")  # completes the text as it is now, not what the menu showed
        assert app.chat.prompt.text == "/handbook list"


async def test_alt_enter_starts_a_new_line(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.click("#prompt")
        await pilot.press("a", "alt+enter", "b")
        assert app.chat.prompt.text == "a\nb" and not app.chat.transcript.turns()


async def test_a_remapped_new_line_key_is_the_one_that_works(tmp_path):
    from skillchat.config import Config

    app = make_app(tmp_path, config=Config(keymap={"prompt_newline": "f7"}))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.click("#prompt")
        await pilot.press("a", "f7", "b")
        assert app.chat.prompt.text == "a\nb"
        await pilot.press("ctrl+j")
        assert app.chat.prompt.text == "a\nb"
