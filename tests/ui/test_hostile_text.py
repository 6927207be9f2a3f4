"""Text from outside in the app: a model's answer, a provider's error, what was typed and the titles
made from it. Escape sequences in them must never reach the terminal (Textual passes ESC through
as it is), and "[/]" or "[link=…]" in them must show as typed, not be read as markup."""

from __future__ import annotations

import json
import re

from app_driver import SIZE, db_rows, make_app, plain, ready, send, wait_for

from skillchat.config import AgentConfig, Config

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MARKUP = "[/] [link=https://evil.example]x[/link]"
ANSWER = [  # the sequences split across chunks
    "Here \x1b]52;c;", "cm0gLXJmIH4=\x07 is \x1b", "]0;owned\x1b", "\\ the \x1b[2", "J answer \x1b[?1049", "h, ",
    "\x1b]8;;https://evil.example/\x1b\\a link\x1b]8;;\x1b", "\\ and ", MARKUP, " \x9b31m done.\x07\x08",
]


def on_screen(app) -> str:  # type: ignore[no-untyped-def]
    """What the terminal would be sent for the current screen, as text."""
    return app.export_screenshot()


def assert_clean(app) -> None:  # type: ignore[no-untyped-def]
    svg = on_screen(app)
    found = CONTROL.search(svg.replace("\n", ""))
    assert found is None, f"control character {found.group()!r} on screen"


async def test_escapes_and_markup_from_outside_are_shown_as_text(tmp_path, openai_server):  # noqa: F811
    openai_server.chunks["alpha"] = ANSWER
    openai_server.behaviour["beta"] = "500"
    openai_server.error_text = f" \x1b]0;owned\x07\x1b[2J {MARKUP}"
    cfg = Config(handbook="general", agents=tuple(
        AgentConfig(id=m, model=f"openai/{m}", api_base=openai_server.api_base, name=m.title()) for m in ("alpha", "beta")))
    app = make_app(tmp_path, config=cfg, demo=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        app.service.pin("alpha")
        typed = f"hello \x1b]0;owned\x07 {MARKUP}"
        turn = await send(pilot, typed)
        assert turn.status == "done"
        assert turn.text == "".join(ANSWER)  # the turn and the store keep what the model sent
        assert db_rows(app, "SELECT content FROM messages WHERE role = 'assistant'") == [("".join(ANSWER),)]
        assert MARKUP in plain(app.chat.query(".user-message").last().content)
        assert_clean(app)

        # Copying takes what is shown: escapes pasted into a terminal would be typed into it.
        app.chat.action_copy_last()
        assert app.clipboard.startswith("Here  is  the  answer") and not CONTROL.search(app.clipboard)

        # Exports are files to `cat`: the Markdown leaves the sequences out, the JSON writes them out.
        for fmt in ("markdown", "json"):
            app.run_command_line(f"/export {fmt}")
        exports = await wait_for(pilot, lambda: len(list(tmp_path.glob("skillchat-1.*"))) == 2 and
                                 sorted(tmp_path.glob("skillchat-1.*")), what="the exports")
        for path in exports:
            text = path.read_text(encoding="utf-8")
            assert not CONTROL.search(text.replace("\n", "")), path.name
        doc = json.loads(next(p for p in exports if p.suffix == ".json").read_text(encoding="utf-8"))
        assert doc["messages"][1]["content"] == "".join(ANSWER)

        # A provider's error in the fallback note.
        app.service.pin("beta")
        turn = await send(pilot, "and again")
        note = plain(turn.query_one(".turn-notes").content, width=500)
        assert "scripted failure 500" in note and MARKUP in note and "owned" not in note
        assert_clean(app)

        # A toast quoting what was typed: markup in it once took the app down.
        app.run_command_line(f"/model {MARKUP}")
        toast = await wait_for(pilot, lambda: [t for t in app.screen.query("Toast") if "no agent" in str(t.render())],
                               what="the toast")
        assert MARKUP in str(toast[0].render())
        assert_clean(app)

        # Conversation titles are made from what was typed.
        app.run_command_line("/history")
        screen = await wait_for(pilot, lambda: type(app.screen).__name__ == "ConversationsScreen" and app.screen,
                                what="the conversations")
        table = screen.query_one("DataTable")
        await wait_for(pilot, lambda: table.row_count > 0, what="the titles")
        await pilot.pause(0.2)
        assert MARKUP in on_screen(app).replace("&#160;", " ")
        assert_clean(app)
