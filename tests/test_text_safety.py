"""The sanitiser behind everything skillchat prints: escape sequences and control characters never
reach the terminal, however the text is cut into pieces, and ordinary text passes unchanged."""

from __future__ import annotations

import random
import re
from itertools import pairwise

import pytest

from skillchat.text_safety import MAX_HELD, StreamCleaner, clean, one_line, plain, shown

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")

# Each of these would do something to a terminal; the text around them must survive.
SEQUENCES = {
    "OSC 52 clipboard (BEL)": "\x1b]52;c;cm0gLXJmIH4=\x07",
    "OSC 52 clipboard (ST)": "\x1b]52;c;cm0gLXJmIH4=\x1b\\",
    "OSC 0 title": "\x1b]0;owned\x07",
    "OSC 8 hidden link": "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "CSI 2J clear screen": "\x1b[2J",
    "CSI cursor home": "\x1b[H",
    "alternate screen": "\x1b[?1049h",
    "bracketed paste end": "\x1b[201~",
    "SGR conceal": "\x1b[8m",
    "C1 CSI": "\x9b2J",
    "C1 OSC": "\x9d0;owned\x9c",
    "DCS": "\x1bP1$r0m\x1b\\",
    "APC": "\x1b_payload\x1b\\",
    "ESC c reset": "\x1bc",
    "charset": "\x1b(0",
    "bell, backspace, CR, DEL": "\x07\x08\r\x7f",
}


@pytest.mark.parametrize("seq", SEQUENCES.values(), ids=SEQUENCES.keys())
def test_clean_drops_the_sequence_and_keeps_the_text(seq):
    out = clean(f"before {seq} after")
    assert not CONTROL.search(out)
    assert out.startswith("before ") and out.endswith(" after")
    assert "owned" not in out and "evil.example" not in out and "cm0gLXJmIH4" not in out


def test_ordinary_text_is_untouched():
    text = "Tabs\tand\nnewlines, ünïcødé, 漢字, emoji 🎉, `code` and [bold]markup[/bold] stay as they are."
    assert clean(text) == text
    assert clean("") == ""


def test_lone_surrogates_become_replacement_characters():
    assert clean("a\udcffb") == "a\ufffdb"


def test_an_unterminated_sequence_loses_its_introducer_not_the_rest():
    assert clean("answer \x1b]0;never ends") == "answer 0;never ends"


HOSTILE = "Hi " + "".join(f"{seq} w{i} " for i, seq in enumerate(SEQUENCES.values())) + "\x1b]0;unfinished"


def test_stream_cleaner_gives_the_same_text_however_the_stream_is_cut():
    expected = clean(HOSTILE)
    rng = random.Random(1)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(HOSTILE)), rng.randint(1, 40)))
        pieces = [HOSTILE[a:b] for a, b in pairwise([0, *cuts, len(HOSTILE)])]
        sc = StreamCleaner()
        shown_parts = [sc.feed(p) for p in pieces] + [sc.end()]
        for part in shown_parts:
            assert not CONTROL.search(part)
        assert "".join(shown_parts) == expected


def test_stream_cleaner_one_character_at_a_time():
    sc = StreamCleaner()
    out = "".join(sc.feed(ch) for ch in HOSTILE) + sc.end()
    assert out == clean(HOSTILE)


def test_stream_cleaner_does_not_hold_an_endless_sequence_forever():
    sc = StreamCleaner()
    shown_text = sc.feed("\x1b]52;c;" + "A" * (MAX_HELD + 10))
    assert shown_text.startswith("52;c;AAA") and not CONTROL.search(shown_text)
    assert sc.feed("plain") == "plain"


def test_shown_cuts_long_values_and_writes_control_characters_out():
    assert shown("a" * 300, 20) == "a" * 20 + "… (300 characters)"
    assert shown("x\x1b]0;t\x07") == "x\\x1b]0;t\\x07"
    assert shown("bad\udcffname") == "bad\ufffdname"


def test_one_line_keeps_the_start_and_the_end():
    line = one_line("start " + "x" * 5000 + " the problem\nsecond line", 200)
    assert len(line) <= 200 and "\n" not in line
    assert line.startswith("start ") and line.endswith("second line")


def test_plain_is_never_markup():
    t = plain("[bold]b[/bold] [link=https://evil.example]l[/link] [/] \x1b[2J", "red")
    assert t.plain == "[bold]b[/bold] [link=https://evil.example]l[/link] [/] "
