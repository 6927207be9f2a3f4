"""Snapshots of the main screens at a fixed 100x30 terminal.

Deterministic by construction: seeded routing, the demo agents' fixed texts, no pacing, latency
shown as a constant (conftest.steady_screen), no dates or clocks on these screens, no cursor blink.
Regenerate with `pytest tests/ui/test_snapshots.py --snapshot-update`, then look at the SVGs
(`rsvg-convert file.svg -o file.png` renders them) before committing.
"""

from __future__ import annotations

from app_driver import SIZE, make_app, ready, send, wait_for


async def settle(pilot) -> None:
    await pilot.pause(0.1)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.1)


def test_first_run_welcome(snap_compare, tmp_path):
    async def run_before(pilot):
        await ready(pilot)
        await settle(pilot)

    assert snap_compare(make_app(tmp_path, demo=None), terminal_size=SIZE, run_before=run_before)


def test_turn_with_routing_ranking_and_rating(snap_compare, tmp_path):
    async def run_before(pilot):
        await ready(pilot)
        turn = await send(pilot, "Why does my Python loop raise KeyError?")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: turn.rating == "up")
        await pilot.press("ctrl+o")
        await settle(pilot)
        pilot.app.clear_notifications()
        await settle(pilot)

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_conversation_of_two_turns(snap_compare, tmp_path):
    async def run_before(pilot):
        await ready(pilot)
        await send(pilot, "Write a haiku about autumn")
        await send(pilot, "What is the integral of x squared?")
        await pilot.press("ctrl+g")
        await settle(pilot)
        pilot.app.clear_notifications()
        await settle(pilot)

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_slash_completion_menu(snap_compare, tmp_path):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.click("#prompt")
        await pilot.press("/", "h")
        await settle(pilot)

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_handbook_screen(snap_compare, tmp_path):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("f3")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "HandbookScreen")
        await settle(pilot)

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_spend_screen(snap_compare, tmp_path):
    from skillchat.config import Budget, Config

    async def run_before(pilot):
        await ready(pilot)
        await send(pilot, "Why does my Python loop raise KeyError?")
        await send(pilot, "Write a haiku about autumn")
        pilot.app.clear_notifications()
        await pilot.press("f2")
        screen = await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "SpendScreen" and pilot.app.screen)
        table = await wait_for(pilot, lambda: (t := screen.query_one("#spend-agent")).row_count > 0 and t)
        # Column widths follow the rows only once the table has measured them (on idle): under load
        # that can come after the rows, and a screenshot in between shows the bare headers.
        await wait_for(pilot, lambda: table.columns["key"].content_width > len("model"))
        await settle(pilot)

    app = make_app(tmp_path, config=Config(budget=Budget(daily_usd=0.001, monthly_usd=5.0)))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, tmp_path):
    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "HelpScreen")
        await settle(pilot)

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_relearn_result_in_demo(snap_compare, tmp_path):
    async def run_before(pilot):
        await ready(pilot)
        for i, text in enumerate(["Fix this Python KeyError", "Write a poem about rain", "What is 17*23?",
                                  "Debug my segfault in C"]):
            turn = await send(pilot, text)
            await pilot.press("ctrl+t" if i % 2 == 0 else "ctrl+g")
            await wait_for(pilot, lambda turn=turn: turn.rating is not None)
        pilot.app.clear_notifications()
        pilot.app.run_command_line("/relearn")
        screen = await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "RelearnScreen" and pilot.app.screen)
        await wait_for(pilot, lambda: screen.result is not None, 60)
        await settle(pilot)

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)
