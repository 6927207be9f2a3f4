"""Smaller things a new user tripped over (issue 12, item 9): the header's spend in demo mode, names
in spend tables, the spend screen on a small terminal, and a relearn that changes nothing."""

from __future__ import annotations

from app_driver import make_app, plain, ready, run_command, send, wait_for
from textual.widgets import DataTable


async def open_spend(pilot):
    app = pilot.app
    await pilot.press("f2")
    screen = await wait_for(pilot, lambda: type(app.screen).__name__ == "SpendScreen" and app.screen, what="F2")
    table = screen.query_one("#spend-skill", DataTable)
    await wait_for(pilot, lambda: table.row_count >= 1, what="spend rows")
    await pilot.pause(0.2)
    return screen


run = run_command


async def test_the_header_shows_the_demo_spend_f2_shows(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await send(pilot, "Why does my Python code raise KeyError?")
        await wait_for(pilot, lambda: "$0.0" in str(app.chat.query_one("#status").render()), what="the header")
        status = str(app.chat.query_one("#status").render())
        screen = await open_spend(pilot)
        today = plain(screen.query_one("#card-today").content).split("\n")[1].strip()
        assert today.startswith("$0.0") and f"today {today} (demo)" in status, (today, status)


async def test_spend_tables_name_skills_of_other_handbooks(tmp_path, capsys):
    from skillchat import handbooks
    from skillchat.cli import main

    coding = handbooks.load("coding")
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await run(pilot, "/handbook use coding")
        turn = await send(pilot, "Write a Rust function that parses a CSV line into a struct")
        skills = [s.id for s in turn.decision.skills if s.id not in handbooks.load("general").skills]
        assert skills  # a skill the general handbook does not have
        await run(pilot, "/handbook use general")
        screen = await open_spend(pilot)
        table = screen.query_one("#spend-skill", DataTable)
        for sid in skills:
            assert str(table.get_row(sid)[0]) == coding.skills[sid].name
    capsys.readouterr()
    assert main(["spend", "--by", "skill", "--demo"]) == 0
    out = capsys.readouterr().out
    assert all(coding.skills[sid].name in out and sid not in out for sid in skills), out


async def test_spend_screen_on_a_small_terminal_keeps_its_chart_readable(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(60, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "Why does my Python code raise KeyError?")
        screen = await open_spend(pilot)
        axis = screen.query_one("#chart-axis")
        assert axis.region.height == 1 and screen.query_one("#spend-chart-box").region.width >= 50
        await pilot.resize_terminal(60, 15)
        await pilot.pause(0.3)
        middle = screen.query_one("#spend-middle")
        assert not middle.display or axis.region.height == 1
        assert screen.query_one("#spend-tabs").region.height >= 5  # the tables keep the room


async def test_a_relearn_in_demo_that_changes_nothing_says_why(tmp_path):
    from textual.widgets import Button

    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        for text in ("Why does my Python code raise KeyError?", "Write a haiku about autumn",
                     "What is the integral of x^2?"):
            await send(pilot, text)
            await pilot.press("ctrl+t")
            await pilot.pause(0.1)
        await run(pilot, "/relearn")
        screen = await wait_for(pilot, lambda: type(app.screen).__name__ == "RelearnScreen" and app.screen)
        await wait_for(pilot, lambda: screen.result is not None, 60, "the relearn")
        body = " ".join(plain(screen.query_one("#relearn-body").content, width=120).split())
        assert "->" in body and "every rating was already applied to routing when you gave it" in body, body
        assert not screen.query_one("#activate", Button).disabled
