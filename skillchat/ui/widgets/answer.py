"""An answer's Markdown, drawn by Rich into a few widgets instead of one widget per block.

Textual's Markdown widget mounts a widget for every paragraph, list item, table cell and code
block (a hundred for a long answer), and a long conversation of them takes seconds to mount and
lays them all out again whenever the streaming answer grows. Here a finished answer is one
widget, rendered once per terminal width. While an answer streams, only its tail is drawn again
on each update: once the tail holds FREEZE_AT characters, its complete blocks are frozen into a
segment of their own (never drawn again) and the tail starts after them.
"""

from __future__ import annotations

import functools

from markdown_it import MarkdownIt
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import CodeBlock
from rich.markdown import Markdown as RichMarkdown
from rich.style import Style
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

FREEZE_AT = 600  # characters of tail that trigger freezing its complete blocks

_parser = MarkdownIt("commonmark").enable("table")


@functools.lru_cache(maxsize=512)
def _highlighted(code: str, lexer: str, theme: str) -> Text:
    return Syntax(code, lexer, theme=theme).highlight(code)


class _HighlightedOnce(Syntax):
    """Pygments runs once per block of code, not again on every render (at each width)."""

    def __init__(self, code: str, lexer: str, theme: str, **kw) -> None:
        super().__init__(code, lexer, theme=theme, **kw)
        self._names = (lexer, theme)

    def highlight(self, code: str, line_range: tuple[int | None, int | None] | None = None) -> Text:
        if line_range is not None:
            return super().highlight(code, line_range)
        return _highlighted(code, *self._names).copy()


class _CodeBlock(CodeBlock):
    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield _HighlightedOnce(str(self.text).rstrip(), self.lexer_name, self.theme, word_wrap=True, padding=1)


class _Markdown(RichMarkdown):
    elements = {**RichMarkdown.elements, "fence": _CodeBlock, "code_block": _CodeBlock}


def last_block_start(text: str) -> int:
    """Where the last top-level Markdown block of `text` starts (0 if it has only one): what
    comes before it is complete and renders the same whatever is appended."""
    starts = [t.map[0] for t in _parser.parse(text) if t.level == 0 and t.map is not None and t.nesting >= 0]
    if len(starts) < 2:
        return 0
    line = starts[-1]
    offset = 0
    for _ in range(line):
        offset = text.index("\n", offset) + 1
    return offset


def draw(markdown: str, console: Console, width: int) -> list[Strip]:
    """Markdown as lines of `width` cells. Pure computation: a page of answers read back from the
    log is drawn in the reading thread, so keys are handled meanwhile."""
    # hyperlinks=False: a link shows its address as text, and nothing on screen opens a browser.
    rendered = console.render_lines(_Markdown(markdown, hyperlinks=False),
                                    console.options.update(width=width, height=None), pad=False)
    return [Strip(line) for line in rendered]


class Segment(Widget):
    """Some Markdown blocks, drawn by Rich once per width: laying the transcript out again (the
    streaming answer grew) reuses the lines, and code is highlighted once, not on every frame."""

    DEFAULT_CSS = """
    Segment {
        height: auto;
    }
    """

    def __init__(self, markdown: str, *, drawn: tuple[int, list[Strip]] | None = None, **kw) -> None:
        super().__init__(**kw)
        self.markdown = markdown
        self._lines = drawn  # (width, lines)
        self._styled: tuple[int, Style, list[Strip]] | None = None  # what render_line hands out

    def update(self, markdown: str) -> None:
        self.markdown, self._lines, self._styled = markdown, None, None
        self.refresh(layout=True)

    def lines(self, width: int) -> list[Strip]:
        if self._lines is None or self._lines[0] != width:
            self._lines = (width, draw(self.markdown, self.app.console, width))
        return self._lines[1]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.lines(width)) if self.markdown else 0

    def render_line(self, y: int) -> Strip:
        width, style = self.size.width, self.rich_style
        if self._styled is None or self._styled[:2] != (width, style):
            self._styled = (width, style, [line.apply_style(style).crop_extend(0, width, style)
                                           for line in self.lines(width)])
        lines = self._styled[2]
        return lines[y] if y < len(lines) else Strip.blank(width, style)


class AnswerView(Vertical):
    DEFAULT_CSS = """
    AnswerView {
        height: auto;
    }
    AnswerView > Segment.-after {
        margin: 1 0 0 0;
    }
    """

    def __init__(self, text: str = "", *, drawn: tuple[int, list[Strip]] | None = None, **kw) -> None:
        super().__init__(**kw)
        self.source = text  # what is shown (already cleaned of escape sequences)
        self._frozen = 0  # characters of source drawn in segments that no longer change
        self._drawn = drawn  # lines drawn ahead of mounting, at the width they were drawn for

    def compose(self) -> ComposeResult:
        yield Segment(self.source, drawn=self._drawn)

    @property
    def _tail(self) -> Segment:
        return self.children[-1]  # type: ignore[return-value]

    async def write(self, more: str) -> None:
        """Append streamed text, drawing again only the part after the frozen segments."""
        self.source += more
        tail = self.source[self._frozen:]
        cut = last_block_start(tail) if len(tail) >= FREEZE_AT else 0
        if cut:
            self._tail.update(tail[:cut])
            self._frozen += cut
            await self.mount(Segment(tail[cut:], classes="-after"))
        else:
            self._tail.update(tail)

    async def set_text(self, text: str) -> None:
        """Show `text` whole, as one segment (a finished answer, or a fallback starting over)."""
        self.source, self._frozen = text, 0
        segments = list(self.children)
        if len(segments) > 1:
            await self.remove_children(segments[1:])
        segments[0].update(text)  # type: ignore[attr-defined]
