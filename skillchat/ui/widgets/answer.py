"""An answer's Markdown, drawn by Rich into one widget instead of one widget per block.

Textual's Markdown widget mounts a widget for every paragraph, list item, table cell and code
block (a hundred for a long answer), and a long conversation of them takes seconds to mount and
lays them all out again whenever the streaming answer grows. Here an answer is one widget whose
lines Rich draws once per width.

While an answer streams, its complete top-level blocks are drawn once, as they complete, and only
the last block (the one still growing) is drawn again on each update. The widget's height grows
half a view at a time, so most updates repaint a few lines without laying the screen out again
(a layout arranges every mounted widget, and the scroll that follows it redraws every widget on
screen; once per growth, see GrowsWithAnswer). The text being read stays still meanwhile.

The lines keep what Rich drew, links included: text can be selected with the mouse, and clicking
a web link opens it.
"""

from __future__ import annotations

import functools

from markdown_it import MarkdownIt
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import CodeBlock
from rich.markdown import Markdown as RichMarkdown
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from rich.text import Text
from textual import events
from textual.containers import ScrollableContainer
from textual.geometry import Region, Size
from textual.reactive import Reactive
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

GROW_MIN = 6  # while streaming, the answer's height grows by half the view at a time, and at least this
OPENABLE = ("https://", "http://", "mailto:")  # links a click opens; others (file:, javascript:) stay text

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


# Blocks that Rich starts with a blank line of their own when they open a document, because a block
# inside them (a list item's paragraph) already asked for one. Drawn after another block, they
# need no other; every other block gets one blank line, except after a rule.
_LISTS = {"bullet_list_open", "ordered_list_open"}
_OWN_BLANK_LINE = _LISTS | {"blockquote_open", "table_open"}


def _blocks(text: str) -> list[tuple[int, str]]:
    """The top-level Markdown blocks of `text`: (the line each starts on, its markdown-it type)."""
    return [(t.map[0], t.type) for t in _parser.parse(text) if t.level == 0 and t.map is not None and t.nesting >= 0]


def _line_offset(text: str, line: int) -> int:
    offset = 0
    for _ in range(line):
        offset = text.index("\n", offset) + 1
    return offset


def last_block_start(text: str) -> int:
    """Where the last top-level Markdown block of `text` starts (0 if it has only one): what
    comes before it is complete and renders the same whatever is appended."""
    blocks = _blocks(text)
    return _line_offset(text, blocks[-1][0]) if len(blocks) > 1 else 0


Line = list[Segment]


class GrowsWithAnswer:
    """A widget that the streaming answer, or the widgets around it, grow inside: laid out once
    per growth instead of twice.

    Textual lays the whole screen out again whenever a widget's `virtual_size` changes, and a
    layout is what sets it: each growth of the answer (and of the turn and transcript holding it)
    was followed by a second full layout that moved nothing but cost as much as the first, every
    mounted widget arranged again. For widgets whose virtual size only layout sets (not scroll
    views that size their own content), a repaint is enough."""

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)


def draw(markdown: str, console: Console, width: int) -> list[Line]:
    """Markdown as lines of at most `width` cells. Pure computation: a page of answers read back
    from the log is drawn in the reading thread, so keys are handled meanwhile. Plain lists of
    Rich segments: a Textual Strip carries seven caches, and a few hundred answers' worth of them
    made the garbage collector's full passes stall the app."""
    if not markdown.strip():
        return []
    return console.render_lines(_Markdown(markdown), console.options.update(width=width, height=None), pad=False)


class AnswerView(GrowsWithAnswer, Widget):
    """An answer: Markdown drawn by Rich once per width, and while it streams, once per block."""

    DEFAULT_CSS = """
    AnswerView {
        height: auto;
    }
    """

    def __init__(self, text: str = "", *, drawn: tuple[int, list[Line]] | None = None, **kw) -> None:
        super().__init__(**kw)
        self.source = text  # what is shown (already cleaned of escape sequences)
        self.streaming = False
        self._done = len(text)  # characters of source in complete blocks, drawn once and kept
        self._done_last: str | None = None  # the type of the last of those blocks
        # At self._width: the lines of source[:_done], then (a blank line and) those of the rest.
        self._width, self._lines = drawn if drawn is not None else (0, [])
        self._tail_at = len(self._lines)  # where the lines of source[_done:] start
        self._drawn = drawn is not None
        # The lines render_line hands out, in order, for _styled_key: segments, not Strips. A Strip
        # carries seven caches, and keeps the Strips Textual derives from it (cropped, filtered)
        # alive as long as it lives: kept for every line drawn, they were most of what the garbage
        # collector walked while an answer streamed. A Strip is made for the lines on screen only.
        self._styled: list[Line] = []
        self._styled_key: tuple[int, Style] | None = None
        self._height = 0  # what the last layout was given
        self._line_style: Style | None = None  # while a repaint is under way

    # --- streaming ---------------------------------------------------------------------------
    def write(self, more: str) -> None:
        """Append streamed text: complete blocks are drawn once, the growing one again."""
        self.streaming = True
        self.source += more
        if not self._drawn:  # not laid out yet: drawn whole when it is
            self.refresh(layout=True)
            return
        first_changed, drawn_before = self._tail_at, len(self._lines)
        tail = self.source[self._done:]
        blocks = _blocks(tail)
        # The last block is still growing. So may a list before it: after a blank line, what
        # follows can still turn out to be its next item ("2" becoming "2. more").
        keep = len(blocks) - 1
        if keep > 0 and blocks[keep - 1][1] in _LISTS:
            keep -= 1
        del self._lines[self._tail_at:]
        if keep > 0:
            cut = _line_offset(tail, blocks[keep][0])
            self._add(tail[:cut], blocks[0][1])
            self._done += cut
            self._done_last = blocks[keep - 1][1]
            self._tail_at = len(self._lines)
            tail = tail[cut:]
        self._add(tail, blocks[keep][1] if blocks else None)
        self._changed(first_changed, drawn_before)

    def end(self) -> None:
        """The answer is complete: its height is its lines again."""
        self.streaming = False
        self._changed(len(self._lines))

    def set_text(self, text: str) -> None:
        """Show `text` whole (a finished answer, or a fallback starting over)."""
        self.source, self._done, self._done_last, self.streaming = text, len(text), None, False
        self._lines, self._tail_at, self._drawn = [], 0, False
        self._styled = []
        self.refresh(layout=True)

    def _add(self, markdown: str, first: str | None) -> None:
        """Draw `markdown` (its first block of type `first`) below the complete blocks, spaced as
        Rich spaces blocks in one document: a blank line before each, unless after a rule."""
        if not markdown.strip():
            return
        if self._done_last not in (None, "hr") and first not in _OWN_BLANK_LINE:
            self._lines.append([])
        self._lines.extend(draw(markdown, self.app.console, self._width))

    def _changed(self, first_line: int, drawn_before: int = 0) -> None:
        """Lines from `first_line` on were drawn again (there were `drawn_before` lines): the
        screen is laid out if the height must change, else those lines are repainted, not the
        blank room kept below them (repainted at every update, with the turn, transcript and
        screen under each of its lines)."""
        del self._styled[first_line:]
        if self._layout_height() != self._height:
            self.refresh(layout=True)
            return
        end = min(self._height, max(drawn_before, len(self._lines)))
        if first_line < end:
            self.refresh(Region(0, first_line, self.size.width, end - first_line))

    def _layout_height(self) -> int:
        n = len(self._lines)
        if self.streaming and n:
            view = next((a.size.height for a in self.ancestors if isinstance(a, ScrollableContainer)), 0)
            step = max(GROW_MIN, view // 2)
            return -(-n // step) * step
        return n

    # --- drawing -----------------------------------------------------------------------------
    def lines(self, width: int) -> list[Line]:
        if not self._drawn or width != self._width:
            self._width, self._drawn = width, True
            self._lines = draw(self.source[:self._done], self.app.console, width)
            self._tail_at = len(self._lines)
            tail = self.source[self._done:]
            if tail.strip():
                self._add(tail, _blocks(tail)[0][1])
            self._styled = []
        return self._lines

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self.lines(width)
        self._height = self._layout_height()
        return self._height

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's style walks every ancestor's CSS: worked out once per repaint, not per line
        # (it was half the cost of drawing a screen of answer).
        self._line_style = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._line_style = None

    def render_line(self, y: int) -> Strip:
        width, style = self.size.width, self._line_style if self._line_style is not None else self.rich_style
        lines = self.lines(width)
        if y >= len(lines):
            return Strip.blank(width, style)
        if self._styled_key != (width, style):
            self._styled, self._styled_key = [], (width, style)
        styled = self._styled
        while len(styled) <= y:
            styled.append(self._styled_line(len(styled), lines[len(styled)], width, style))
        selection = self.text_selection
        span = selection.get_span(y) if selection is not None else None
        if span is None:
            return Strip(styled[y], width)
        start, end = span
        end = width if end == -1 else end
        before, chosen, after = Segment.divide(styled[y], [start, end, width])
        picked = self.screen.get_component_rich_style("screen--selection")
        return Strip([*before, *Segment.apply_style(chosen, post_style=picked), *after], width)

    @staticmethod
    def _styled_line(y: int, line: Line, width: int, style: Style) -> Line:
        """A line in the widget's style, `width` cells wide, made in one pass (Strip's own
        apply_style / crop_extend / apply_offsets would each make another Strip). Offsets tell
        Textual's mouse selection which character is under the pointer."""
        segments = []
        x = 0
        for text, seg_style, control in Segment.adjust_line_length(list(Segment.apply_style(line, style)), width, style):
            offset = Style.from_meta({"offset": (x, y)})
            segments.append(Segment(text, seg_style + offset if seg_style else offset, control))
            x += len(text)
        return segments

    # --- selection and links -----------------------------------------------------------------
    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        text = "\n".join("".join(s.text for s in line).rstrip() for line in self.lines(self.size.width or self._width))
        return selection.extract(text), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        link = event.style.link if event.style is not None else None
        if link and link.startswith(OPENABLE):
            event.stop()
            self.app.open_url(link)
