"""Slash commands: parsing and completion (no UI), then each command in the running app."""

from __future__ import annotations

import json

import pytest
from app_driver import SIZE, db_rows, make_app, plain, ready, run_command, send, wait_for
from textual.widgets import DataTable

from skillchat.config import Config
from skillchat.ui import commands
from skillchat.ui.commands import SlashError, completions, parse
from skillchat.ui.slash import export_path, export_request


# --- parsing and completion -----------------------------------------------------------------
def test_parse_accepts_unique_prefixes_and_quoted_paths():
    assert parse("/hand use coding") == commands.Invocation("handbook", ("use", "coding"))
    assert parse('/export json "my notes/chat.json"').args == ("json", "my notes/chat.json")
    with pytest.raises(SlashError, match="ambiguous"):
        parse("/h")
    with pytest.raises(SlashError, match="unknown command /nope"):
        parse("/nope")


def test_a_double_slash_is_a_message():
    assert commands.is_command("/help") and not commands.is_command("//etc/hosts is a path")


def test_completions_offer_commands_then_their_arguments():
    assert [c.value for c in completions("/h")] == ["/help", "/handbook ", "/history"]
    assert [c.value for c in completions("/handbook u")] == ["/handbook use "]
    assert [c.value for c in completions("/handbook use c", handbooks=["coding", "general"])] == ["/handbook use coding"]
    assert [c.value for c in completions("/model g", agents=["gpt-5", "claude"])] == ["/model gpt-5"]
    assert [c.value for c in completions("/export ")] == ["/export markdown", "/export json"]
    assert completions("hello /h") == [] and completions("/help") == []


def test_export_path_never_overwrites(tmp_path):
    first = export_path(None, 3, "markdown", cwd=tmp_path)
    assert first == tmp_path / "skillchat-3.md"
    first.write_text("x")
    assert export_path(None, 3, "markdown", cwd=tmp_path) == tmp_path / "skillchat-3-2.md"
    (tmp_path / "out").mkdir()
    assert export_path("out/", 3, "json", cwd=tmp_path) == tmp_path / "out" / "skillchat-3.json"
    assert export_path("notes", 3, "json", cwd=tmp_path) == tmp_path / "notes.json"


def test_export_refuses_formats_it_cannot_write_and_folders_that_do_not_exist(tmp_path):
    for args in (("pdf",), ("notes.pdf",), ("json", "notes.html")):
        with pytest.raises(SlashError, match="markdown .* or json"):
            export_request(args)
    assert export_request(("notes.json",)) == ("json", "notes.json")
    assert export_request(("json",)) == ("json", None)
    assert export_request(("notes",)) == ("markdown", "notes")
    with pytest.raises(SlashError, match="ends in .json but the format asked for is markdown"):
        export_request(("markdown", "x.json"))
    with pytest.raises(SlashError, match=r"the folder .*nonexistent.dir does not exist"):
        export_path(str(tmp_path / "nonexistent" / "dir" / "x.json"), 3, "json", cwd=tmp_path)
    assert not (tmp_path / "nonexistent").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(SlashError, match="is not a folder"):
        export_path("file/x.md", 3, "markdown", cwd=tmp_path)


# --- in the app -------------------------------------------------------------------------------
run = run_command


async def test_completion_menu_completes_with_tab(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.click("#prompt")
        await pilot.press("/", "h", "a")
        menu = app.chat.query_one("#completions")
        assert menu.display and menu.option_count == 1
        await pilot.press("tab")
        assert app.chat.prompt.text == "/handbook "
        await pilot.press("u", "tab")
        assert app.chat.prompt.text == "/handbook use "
        assert menu.display and {menu.get_option_at_index(i).id for i in range(menu.option_count)} >= {
            "/handbook use coding", "/handbook use general"}
        await pilot.press("escape")
        assert not menu.display


async def test_lambda_model_and_handbook_commands_change_routing(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        svc = app.service
        await run(pilot, "/lambda 0.5")
        assert svc.lam == 0.5
        await run(pilot, "/model claude-haiku-4-5")
        assert svc.pinned == "claude-haiku-4-5"
        turn = await send(pilot, "Tell me a joke")
        assert turn.decision.policy == "pinned" and turn.decision.chosen == "claude-haiku-4-5"
        assert "pinned" in str(turn.query_one(".routing").render())
        await run(pilot, "/model auto")
        assert svc.pinned is None
        await run(pilot, "/handbook use coding")
        assert svc.handbook.name == "coding"
        status = str(app.chat.query_one("#status").render())
        assert "coding@1" in status and "λ 0.5" in status
        await run(pilot, "/lambda lots")
        assert svc.lam == 0.5  # refused with a message, nothing changed
        for bad in ("inf", "nan", "-1", "11"):
            await run(pilot, f"/lambda {bad}")
            assert svc.lam == 0.5
            shown = [n.message for n in app._notifications]
            assert f"/lambda: lambda must be a finite number between 0 and 10, got {bad}" in shown
        await run(pilot, "/lambda 10")
        assert svc.lam == 10.0


async def test_export_writes_to_the_current_folder_and_says_where(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "What is the capital of France?")
        await run(pilot, "/export json")
        files = list(tmp_path.glob("skillchat-*.json"))
        assert len(files) == 1
        data = json.loads(files[0].read_text())
        assert "France" in json.dumps(data)
        notice = app.chat.transcript.query(".notice").last()
        assert str(files[0]) in str(notice.render())
        await run(pilot, "/export")
        assert len(list(tmp_path.glob("skillchat-*.md"))) == 1
        for line, said in (("/export pdf", "pdf is not a format skillchat exports markdown (.md) or json (.json)"),
                           (f"/export json {tmp_path}/nonexistent/dir/x.json", "nonexistent/dir does not exist")):
            await run(pilot, line)
            assert any(said in n.message for n in app._notifications), [n.message for n in app._notifications]
        assert not (tmp_path / "pdf.md").exists() and not (tmp_path / "nonexistent").exists()
        await run(pilot, "/export " + "n" * 300 + ".md")  # too long a name for the file system
        shown = [n.message for n in app._notifications if "nnnn" in n.message]
        assert shown and "Errno" not in shown[-1] and "ile name too long" in shown[-1], shown


async def test_export_somewhere_unwritable_says_which_file_and_why(tmp_path):
    app = make_app(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "What is the capital of France?")
        await run(pilot, "/export a-file/out.md")
        shown = [n.message for n in app._notifications]
        target, folder = tmp_path / "a-file" / "out.md", tmp_path / "a-file"
        assert f"/export: cannot write {target}: the folder {folder} is not a folder" in shown, shown


async def test_a_bug_in_a_command_keeps_its_trace_and_a_user_error_is_a_toast(tmp_path, monkeypatch):
    from skillchat.ui import slash

    async def broken(chat, args):
        raise KeyError("a bug")

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        monkeypatch.setitem(slash._HANDLERS, "why", broken)
        with pytest.raises(KeyError):
            await slash.run(app.chat, commands.Invocation("why", ()))
        await slash.run(app.chat, commands.Invocation("demo", ("sideways",)))
        await wait_for(pilot, lambda: "/demo: use /demo or /demo off" in [n.message for n in app._notifications],
                       what="the toast")


async def test_new_history_and_resume(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        first = await send(pilot, "Write a limerick about cats")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: first.rating == "up", what="the rating")
        old_conversation = app.chat.conversation_id
        await run(pilot, "/new")
        assert app.chat.conversation_id is None and not app.chat.transcript.turns()
        await send(pilot, "Something else entirely")
        await run(pilot, "/history")
        table = await wait_for(pilot, lambda: app.screen.query(DataTable) and app.screen.query_one(DataTable),
                               what="the list")
        await wait_for(pilot, lambda: table.row_count == 2, what="two conversations")
        await pilot.press("down", "enter")  # newest first: the second row is the older conversation
        await wait_for(pilot, lambda: app.chat.conversation_id == old_conversation, what="the resume")
        turns = app.chat.transcript.turns()
        assert len(turns) == 1 and "limerick" in turns[0].text and turns[0].rating == "up"
        assert turns[0].decision is not None  # routing is shown for resumed turns too
        nxt = await send(pilot, "Another one please")
        assert db_rows(app, "SELECT conversation_id FROM turns WHERE id = ?", (nxt.turn_id,)) == [(old_conversation,)]


async def test_budget_and_help(tmp_path):
    cfg = Config(budget=__import__("skillchat.config", fromlist=["Budget"]).Budget(daily_usd=2.0))
    app = make_app(tmp_path, config=cfg)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await run(pilot, "/budget")
        text = plain(app.chat.transcript.query(".notice").last().content)
        assert "daily" in text and "$2" in text
        await run(pilot, "/help")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        assert app.screen is app.chat


async def test_demo_mode_can_be_left_and_reentered(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await run(pilot, "/demo off")
        await wait_for(pilot, lambda: not app.service.demo, what="demo off")
        # Hermetic env: no key, no Ollama, so nothing is usable and the app says how to fix it.
        assert app.providers == "none"
        assert "skillchat doctor" in app.welcome_markdown()
        await run(pilot, "/demo")
        await wait_for(pilot, lambda: app.service.demo, what="demo on")
        turn = await send(pilot, "hi there")
        assert turn.demo and turn.status == "done"


async def palette(pilot, query: str) -> None:
    """Run a command from the palette once its search has found it (searches run in the background)."""
    from textual.command import CommandPalette
    from textual.widgets import OptionList

    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), what="the command palette")
    await pilot.press(*query)
    results = pilot.app.screen.query_one(OptionList)
    await wait_for(pilot, lambda: results.option_count > 0 and query in str(results.get_option_at_index(0).prompt),
                   what=f"{query!r} in the palette")
    await pilot.press("enter")


async def test_command_palette_runs_the_same_commands(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await palette(pilot, "Spend")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SpendScreen", what="the spend screen")
        await pilot.press("escape")
        await palette(pilot, "Pin model: GPT-5 mini")
        await wait_for(pilot, lambda: app.service.pinned == "gpt-5-mini", what="the pin")


async def test_keymap_from_config_remaps_bindings(tmp_path):
    app = make_app(tmp_path, config=Config(keymap={"rate_up": "f8", "no_such_binding": "f9"}))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app._unknown_keymap_ids == ["no_such_binding"]
        turn = await send(pilot, "Hello!")
        # Keys are handled in order: once f8's rating is in, ctrl+t has had its turn, and the
        # log holds one rating only if the old key did nothing.
        await pilot.press("ctrl+t", "f8")
        await wait_for(pilot, lambda: turn.rating == "up", what="the remapped rating")
        await app.workers.wait_for_complete()
        assert db_rows(app, "SELECT value FROM ratings WHERE turn_id = ?", (turn.turn_id,)) == [(1.0,)]


# --- settings said "from now on" outlive the session (issue 12, item 8) ----------------------
async def test_lambda_and_explore_are_kept_in_the_config_file(tmp_path, skillchat_home):
    from skillchat import config, paths

    path = paths.config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# my settings\nhandbook = \"general\"  # the one I like\n\n[budget]\ndaily_usd = 2.0\n")
    app = make_app(tmp_path, config=config.load())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await run(pilot, "/lambda 0.6")
        await run(pilot, "/explore off")
        assert app.service.lam == 0.6 and app.service.policy == "greedy"
        assert "not exploring" in str(app.chat.query_one("#status").render())
        notes = plain(app.chat.transcript.query(".notice").last().content)
        assert "from now on" in notes
        turn = await send(pilot, "Write a haiku about autumn")
        assert turn.decision.policy == "greedy"
    text = path.read_text()
    assert "# my settings" in text and '"general"  # the one I like' in text and "daily_usd = 2.0" in text
    cfg = config.load()
    assert cfg.lam == 0.6 and cfg.explore is False and cfg.budget.daily_usd == 2.0

    again = make_app(tmp_path, config=cfg)  # the next start
    async with again.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert again.service.lam == 0.6 and again.service.policy == "greedy"
        await run(pilot, "/explore gentle")
        assert again.service.policy == "gentle"
        assert "exploring gently" in str(again.chat.query_one("#status").render())
        assert (await send(pilot, "Write a haiku about winter")).decision.policy == "gentle"
        await run(pilot, "/explore")
        assert plain(again.chat.transcript.query(".notice").last().content).startswith("Exploring: gentle;")
    assert config.load().explore == "gentle"

    last = make_app(tmp_path, config=config.load())
    async with last.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert last.service.policy == "gentle"
        await run(pilot, "/explore on")
        assert last.service.policy == "thompson"
    assert config.load().explore is True


async def test_a_setting_the_config_cannot_take_lasts_the_session_and_says_why(tmp_path, skillchat_home):
    from skillchat import paths

    path = paths.config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        path.write_text("lambda = [oops\n")  # broken while the app runs
        await run(pilot, "/lambda 0.7")
        assert app.service.lam == 0.7
        assert "for this session only" in plain(app.chat.transcript.query(".notice").last().content)
        assert any("Not saved in the config" in n.message and "not valid TOML" in n.message
                   for n in app._notifications)
    assert path.read_text() == "lambda = [oops\n"
