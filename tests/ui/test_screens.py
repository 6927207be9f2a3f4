"""The other screens: spend, handbook, relearn (against a local OpenAI-compatible server), first run."""

from __future__ import annotations

import random
from datetime import UTC

from app_driver import SIZE, make_app, plain, ready, send, wait_for
from textual.widgets import Button, DataTable, ProgressBar

from skillchat.config import AgentConfig, Budget, Config
from skillchat.core.competence import posterior


async def test_spend_screen_shows_periods_breakdowns_chart_and_budgets(tmp_path):
    app = make_app(tmp_path, config=Config(budget=Budget(daily_usd=1.0, monthly_usd=10.0)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        a = await send(pilot, "Why does my Python code raise KeyError?")
        b = await send(pilot, "Write a haiku about autumn")
        await pilot.press("f2")
        screen = await wait_for(pilot, lambda: type(app.screen).__name__ == "SpendScreen" and app.screen)
        table = screen.query_one("#spend-agent", DataTable)
        await wait_for(pilot, lambda: table.row_count >= 1, what="spend rows")
        assert set(table.rows) == {a.agent_id, b.agent_id}
        today = plain(screen.query_one("#card-today").content)
        assert "2 turns" in today
        assert "DEMO" in plain(screen.query_one("#spend-title").content)  # demo spend is never passed off as money
        chart = screen.query_one("#spend-chart")
        assert len(chart.data) == 30 and chart.data[-1] > 0
        assert len(screen.query(ProgressBar)) == 2  # daily and monthly budgets
        assert set(screen.query_one("#spend-skill", DataTable).rows) >= {"code.debugging"}
        await pilot.press("escape")
        assert app.screen is app.chat


async def test_handbook_screen_heat_map_is_the_posterior_and_moves_with_ratings(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        turn = await send(pilot, "Why does my Python code raise KeyError?")
        hb = app.service.handbook
        agent, skill = turn.agent_id, "code.debugging"
        before = posterior(hb, agent, skill).mean
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: turn.rating == "up", what="the rating")
        after = posterior(hb, agent, skill).mean
        assert after > before  # applied online, at once

        await pilot.press("f3")
        screen = await wait_for(pilot, lambda: type(app.screen).__name__ == "HandbookScreen" and app.screen)
        table = screen.query_one("#competence", DataTable)
        assert table.row_count == len(hb.skills) + len(hb.modes)
        cell = table.get_cell(skill, agent)
        assert cell.plain.strip() == f"{after:.2f}•"  # the dot marks cells moved by your ratings
        untouched = posterior(hb, "gpt-5", "code.write_program").mean
        assert table.get_cell("code.write_program", "gpt-5").plain.strip() == f"{untouched:.2f}"
        history = screen.query_one("#history", DataTable)
        assert history.row_count >= 1
        await pilot.press("escape")


async def test_first_run_without_a_provider_opens_in_labelled_demo_mode(tmp_path):
    """No key, no Ollama, no config: the app opens anyway, says how to add a provider, and runs demo agents."""
    app = make_app(tmp_path, demo=None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.service.demo and app.service.demo_reason
        welcome = app.welcome_markdown()
        assert "No model provider was found" in welcome and "skillchat doctor" in welcome
        status = str(app.chat.query_one("#status").render())
        assert "DEMO" in status
        turn = await send(pilot, "hello")
        assert "DEMO" in str(turn.query_one(".routing").render())


def agent_config(server) -> Config:
    return Config(
        handbook="general",
        agents=tuple(AgentConfig(id=m, model=f"openai/{m}", api_base=server.api_base, name=m.title(),
                                 input_per_mtok=1.0, output_per_mtok=2.0) for m in ("alpha", "beta")),
    )


async def test_relearn_shows_progress_and_changes_and_activates_only_when_asked(tmp_path, openai_server):  # noqa: F811
    cfg = agent_config(openai_server)
    app = make_app(tmp_path, config=cfg, demo=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert not app.service.demo and set(app.service.pool.usable) == {"alpha", "beta"}
        rng = random.Random(5)
        for i in range(6):
            turn = await send(pilot, ["Fix this Python KeyError", "Write a poem about rain", "What is 17*23?"][i % 3])
            assert turn.status == "done", turn.query_one(".turn-notes").render()
            await pilot.press("ctrl+t" if rng.random() < 0.6 else "ctrl+g")
            await wait_for(pilot, lambda turn=turn: turn.rating is not None, what="the rating")
        old_ref = app.service.handbook.ref
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Relearn handbook")
        await pilot.pause(0.4)
        await pilot.press("enter")
        screen = await wait_for(pilot, lambda: type(app.screen).__name__ == "RelearnScreen" and app.screen)
        activate = screen.query_one("#activate", Button)
        await wait_for(pilot, lambda: screen.result is not None, 60, "the relearn")
        body = plain(screen.query_one("#relearn-body").content)
        assert "rated turns" in body and "general@2" in body
        assert not activate.disabled and "general@2" in str(activate.label)
        assert app.service.handbook.ref == old_ref  # saved, not active
        await pilot.click("#activate")
        await wait_for(pilot, lambda: app.service.handbook.ref == "general@2", what="activation")
        assert app.screen is app.chat
        assert "general@2" in str(app.chat.query_one("#status").render())


async def test_relearn_can_be_cancelled(tmp_path, openai_server):  # noqa: F811
    app = make_app(tmp_path, config=agent_config(openai_server), demo=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Fix this Python KeyError")
        await pilot.press("ctrl+t")
        app.run_command_line("/relearn")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RelearnScreen", what="the relearn screen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.chat, what="the chat")
        assert app.service.handbook.ref == "general@1"


async def test_relearn_in_demo_mode_works_and_writes_nothing(tmp_path, skillchat_home):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        for i, text in enumerate(["Fix this Python KeyError", "Write a poem about rain", "What is 17*23?",
                                  "Debug my segfault in C", "A haiku about snow please"]):
            turn = await send(pilot, text)
            await pilot.press("ctrl+t" if i % 2 == 0 else "ctrl+g")
            await wait_for(pilot, lambda turn=turn: turn.rating is not None, what="the rating")
        app.run_command_line("/relearn")
        screen = await wait_for(pilot, lambda: type(app.screen).__name__ == "RelearnScreen" and app.screen)
        await wait_for(pilot, lambda: "DEMO" in plain(screen.query_one(".dialog-title").content), what="the demo title")
        await wait_for(pilot, lambda: screen.result is not None, 60, "the relearn")
        assert "nothing was saved" in plain(screen.query_one("#relearn-stage").content)
        assert "from 5 of 5 rated turns" in plain(screen.query_one("#relearn-body").content)
        assert app.focused is screen.query_one("#activate")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is app.chat, what="the chat")
        assert "relearned in demo" in str(app.chat.query_one("#status").render())
        # Nothing reached the user's handbooks or config.
        assert not list((skillchat_home / "data" / "handbooks").rglob("*.json"))
        assert not (skillchat_home / "config" / "config.toml").exists()
        app.run_command_line("/demo off")  # leaving demo mode reloads the real handbook cleanly
        # The flag flips before the reload (in a thread) is done: wait for the reloaded handbook too.
        await wait_for(pilot, lambda: not app.service.demo and not app.service.handbook.history, what="demo off")
        assert app.service.handbook.ref == "general@1" and not app.service.handbook.history


async def test_handbook_history_dates_each_version_without_reading_its_file(tmp_path, monkeypatch):
    """The history tab lists every saved version with the day it was written; it reads the folder,
    not each version's JSON (a handbook relearned every week would otherwise parse them all)."""
    import os
    from datetime import datetime

    from skillchat import handbooks

    base = handbooks.load("general")
    written = {2: datetime(2026, 3, 4, 12, tzinfo=UTC), 3: datetime(2026, 5, 6, 12, tzinfo=UTC)}
    for version, when in written.items():
        base.version = version
        path = handbooks.save_version(base)
        os.utime(path, (when.timestamp(), when.timestamp()))
    read = []
    real_load_file = handbooks.load_file
    monkeypatch.setattr(handbooks, "load_file", lambda p: read.append(str(p)) or real_load_file(p))
    app = make_app(tmp_path, config=Config(handbook="general@1"))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        read.clear()
        await pilot.press("f3")
        screen = await wait_for(pilot, lambda: type(app.screen).__name__ == "HandbookScreen" and app.screen)
        history = screen.query_one("#history", DataTable)
        rows = {str(history.get_row_at(i)[0]): str(history.get_row_at(i)[1]) for i in range(history.row_count)}
        assert rows["v3"] == "2026-05-06" and rows["v2"] == "2026-03-04"
        assert rows["v1 (active)"] == base.created[:10]
        assert not [p for p in read if "/general/v" in p]  # no saved version was parsed
