"""/compare and ctrl+s in the real app (demo agents through litellm's mock_response, real SQLite)."""

from __future__ import annotations

import pytest
from app_driver import db_rows, make_app, plain, ready, wait_for

from skillchat.ui.widgets.compare import ComparePanel

WIDE, NARROW = (140, 40), (80, 40)


async def compared(pilot, how: str = "slash", text: str = "Why does my Python loop raise KeyError?") -> ComparePanel:
    app = pilot.app
    await pilot.click("#prompt")
    if how == "slash":
        app.chat.prompt.insert(f"/compare {text}")
        await pilot.press("enter")
    else:
        app.chat.prompt.insert(text)
        await pilot.press("ctrl+s")
    panel = await wait_for(pilot, lambda: next(iter(app.chat.query(ComparePanel)), None), what="the comparison")
    await wait_for(pilot, lambda: panel.ready, 30, "both answers")
    await wait_for(pilot, lambda: not app.chat.busy, 10, "the worker to end")
    await pilot.pause()
    return panel


@pytest.mark.parametrize("outcome, key, ratings", [
    ("left", "1", (1.0, 0.0)), ("right", "2", (0.0, 1.0)), ("both_good", "3", (1.0, 1.0)), ("both_bad", "4", (0.0, 0.0)),
])
async def test_each_pick_by_key_rates_both_answers(tmp_path, outcome, key, ratings):
    app = make_app(tmp_path)
    async with app.run_test(size=WIDE) as pilot:
        await ready(pilot)
        panel = await compared(pilot)
        left, right = panel.sides
        assert left.agent_id != right.agent_id and left.text and right.text
        assert left.decision.policy == right.decision.policy == "compare"
        assert not panel.has_class("-stacked")
        lv, rv = left.virtual_region, right.virtual_region
        assert lv.y == rv.y and lv.right <= rv.x  # side by side
        head = plain(panel.query_one(".compare-head").render())
        assert "best expected" in head and "challenger" in head
        # Both in and the prompt empty: the comparison has focus, and a digit picks.
        assert app.focused is panel
        await pilot.press(key)
        await wait_for(pilot, lambda: panel.outcome == outcome, what="the pick")
        rows = db_rows(app, "SELECT t.id, r.value FROM ratings r JOIN turns t ON t.id = r.turn_id "
                            "WHERE r.replaced_by IS NULL ORDER BY t.id")
        assert rows == [(left.turn_id, ratings[0]), (right.turn_id, ratings[1])]
        assert db_rows(app, "SELECT outcome FROM comparisons") == [(outcome,)]
        assert "You said" in plain(panel.query_one(".compare-said").render())
        assert app.focused is app.chat.prompt


async def test_pick_by_click_and_narrow_terminals_stack_the_answers(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=NARROW) as pilot:
        await ready(pilot)
        panel = await compared(pilot, how="key")
        left, right = panel.sides
        assert panel.has_class("-stacked")
        lv, rv = left.virtual_region, right.virtual_region
        assert rv.y >= lv.bottom and lv.x == rv.x  # one above the other
        assert db_rows(app, "SELECT count(*) FROM turns WHERE policy = 'compare'") == [(2,)]
        pick = panel.query_one(".pick-right")
        await wait_for(pilot, lambda: app.screen.region.contains_region(pick.region) and pick.region.height,
                       what="the choices in view")
        await pilot.click(".pick-right")
        await wait_for(pilot, lambda: panel.outcome == "right", what="the pick")
        assert db_rows(app, "SELECT value FROM ratings ORDER BY turn_id") == [(0.0,), (1.0,)]


async def test_typing_after_the_answers_reaches_the_prompt(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=WIDE) as pilot:
        await ready(pilot)
        panel = await compared(pilot)
        assert app.focused is panel
        await pilot.press("h", "i")
        assert app.focused is app.chat.prompt and app.chat.prompt.text == "hi"
        assert panel.outcome is None


async def test_compare_is_in_help_and_the_palette(tmp_path):
    from skillchat.ui.commands import BY_NAME, SkillchatCommands
    from skillchat.ui.screens.help import key_rows

    app = make_app(tmp_path)
    async with app.run_test(size=WIDE) as pilot:
        await ready(pilot)
        assert "compare" in BY_NAME
        rows = dict(key_rows(app))
        assert any("side by side" in what for what in rows.values())
        assert any("left answer is better" in what for what in rows.values())
        entries = SkillchatCommands(app.screen)._entries()
        assert any(line == "/compare" for _, line, _ in entries)


async def test_a_resumed_conversation_says_which_compared_answer_it_went_on_from(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=WIDE) as pilot:
        await ready(pilot)
        panel = await compared(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: panel.outcome == "right", what="the pick")
        left_id, right_id = (t.turn_id for t in panel.sides)
        await app.chat.load_conversation(app.chat.conversation_id)
        await pilot.pause()
        notes = {t.turn_id: plain(t.query_one(".turn-notes").render(), width=300) for t in app.chat.transcript.turns()}
        assert "set aside" in notes[left_id] and "right answer was better" in notes[left_id]
        assert "went on from this answer" in notes[right_id]
