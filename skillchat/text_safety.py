"""Text from outside (model answers, provider errors, file names, handbooks, what was typed) made safe
to show on a terminal.

A terminal obeys control characters and escape sequences in what it prints: OSC 52 writes the
clipboard, OSC 0 the window title, OSC 8 makes hidden links, CSI 2J clears the screen, and Rich
or Textual pass ESC through as it is. So every such text goes through `clean` (or `StreamCleaner`
when it arrives in pieces) before it is printed or drawn; what is stored keeps the original.

`clean` drops whole escape sequences (CSI, OSC, DCS, SOS, PM, APC and two-character ESC
sequences, in their 7-bit and C1 forms), then every other C0 or C1 control character except
newline and tab, DEL, and lone surrogates (which cannot be encoded; they become U+FFFD).

No Rich or Textual import here: the CLI loads this on every run.
"""

from __future__ import annotations

import re
from typing import Any

# Complete escape sequences. A string sequence (OSC, DCS, SOS, PM, APC) ends at BEL or ST; an ESC
# or another string introducer inside one ends it, and is dealt with on its own. (So no part of the
# text is scanned twice: cleaning stays linear in its length, whatever a model sends.)
_PAYLOAD = r"[^\x07\x1b\x9c\x90\x98\x9d\x9e\x9f]*+"
_SEQUENCE = (
    r"(?:\x1b\[|\x9b)[\x20-\x3f]*+[\x40-\x7e]"  # CSI: parameters, intermediates, final byte
    rf"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]){_PAYLOAD}(?:\x07|\x1b\\|\x9c)"  # strings
    r"|\x1b[\x20-\x2f]*+[\x30-\x7e]"  # ESC 7, ESC c, ESC ( B, ...
)
# What is left: an introducer without its end (ESC ], say) loses the introducer, then every control
# character but \n and \t goes, and so do lone surrogates' replacements below.
_LEFTOVER = r"\x1b[\[\]PX^_]?|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
_UNSAFE = re.compile(f"{_SEQUENCE}|{_LEFTOVER}")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Anything that could start a sequence, or make the text unsafe at all: the fast path skips the rest.
_SUSPECT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# The unfinished tail of a streamed text: a sequence that the next piece may complete.
_OPEN_TAIL = re.compile(
    r"(?:\x1b[\x20-\x2f]*+"
    r"|(?:\x1b\[|\x9b)[\x20-\x3f]*+"
    rf"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]){_PAYLOAD}\x1b?)\Z"
)
# An escape sequence longer than this is not waited for: the stream shows its text and goes on.
MAX_HELD = 4096


def clean(text: str) -> str:
    """`text` without escape sequences or control characters (newline and tab are kept)."""
    if not _SUSPECT.search(text):
        return text
    return _SURROGATE.sub("\ufffd", _UNSAFE.sub("", text))


def one_line(text: str, limit: int | None = None) -> str:
    """`clean` on one line (line breaks and tabs become spaces), cut to about `limit` characters.

    A cut keeps the start and the end, since a message says what it is about first and what went
    wrong last: "<file>: ... : not valid JSON".
    """
    text = clean(text)
    if "\n" in text or "\t" in text:
        text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        head = max(limit * 2 // 3, 1)
        tail = max(limit - head - 5, 0)
        text = text[:head] + " […] " + (text[-tail:] if tail else "")
    return text


def shown(value: Any, limit: int = 100) -> str:
    """A value the user gave (a name, a path) as it appears inside a message: at most about `limit`
    characters, with the full length said when it is cut, and control characters written out as
    Python would (\\x1b), so that the user sees what is wrong with it and the terminal obeys none."""
    text = cut(str(value), limit)
    if _SUSPECT.search(text):
        text = _SURROGATE.sub("\ufffd", _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text))
    return text


def cut(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters and how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def os_reason(e: BaseException) -> str:
    """Why reading or writing failed, without the path (the message names it once already)."""
    if isinstance(e, UnicodeDecodeError):
        return f"not valid UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start:,})"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return type(e).__name__ if not str(e) else one_line(str(e), 200)


class StreamCleaner:
    """`clean` for text that arrives in pieces, where one escape sequence may be split between two.

    `feed` returns what can be shown now and holds back an unfinished sequence at the end, until the
    next piece finishes it (and it is dropped) or shows it is not one. `end` returns what is held,
    cleaned: a sequence that never finished loses its introducer and shows the rest as text, rather
    than swallowing the end of an answer. Cost per piece: one scan of it, plus what is held.
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, chunk: str) -> str:
        text = self._held + chunk if self._held else chunk
        self._held = ""
        if not _SUSPECT.search(text):
            return text
        m = _OPEN_TAIL.search(text, max(len(text) - MAX_HELD, 0))
        if m is not None and m.start() < len(text):
            self._held = text[m.start():]
            text = text[: m.start()]
        return clean(text)

    def end(self) -> str:
        held, self._held = self._held, ""
        return clean(held)


def plain(text: str, style: str = "") -> Any:
    """`text` as a Rich Text: cleaned, and never read as markup.

    Rich reads a plain str in a table cell or a print as markup: "[link=…]" in a skill's name would
    become a link, and "[/]" an error. Rich is imported here only when asked for.
    """
    from rich.text import Text

    return Text.assemble((clean(text), style))  # styled as a span, as "[bold]…[/]" would be
