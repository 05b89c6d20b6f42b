"""Laying a LaTeX table out to fit the page: its columns shared out over as many tables as needed.

A trace with many inputs, or numbers written exactly (17 digits), makes a table several
pages wide, and a tabular never breaks: pdflatex lets it run off the page. So the columns
are measured (an estimate of each cell's width in points, from the widths of Computer
Modern's math characters at 10 pt), and put side by side only while they fit
TEXT_WIDTH_PT; the next column starts a new table that repeats the first (the node), so
each row can still be read across. A column too wide for any table of its own (a tensor
written out as a nested list) is set as a paragraph that wraps after its commas.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# article's \textwidth at 10 pt, on letter and A4 paper: the narrowest page a handout is printed on
TEXT_WIDTH_PT = 345.0
# and its \textheight (about 550 pt), less room for a paragraph title above a table
TEXT_HEIGHT_PT = 480.0
LINE_PT = 12.0  # one line of a cell (\baselineskip at 10 pt)
COLUMN_PAD_PT = 12.0  # \tabcolsep (6 pt) on either side of a column
SAFETY = 1.1  # the estimate below, against what pdflatex set for the samples, is within 10%

# Widths in points of math characters at 10 pt (cmr10/cmmi10/cmsy10), with the spaces TeX puts
# around binary operators and relations; a letter after a name's letters is set upright.
_CHAR_PT = {
    **dict.fromkeys("0123456789", 5.0), ".": 2.8, ",": 4.5, ";": 4.5, ":": 2.8, "[": 2.8, "]": 2.8,
    "(": 3.9, ")": 3.9, "{": 5.0, "}": 5.0, "/": 5.0, "|": 2.8, "‖": 5.0, "'": 2.8, "′": 2.8,
    "-": 12.2, "−": 12.2, "+": 12.2, "·": 7.2, "×": 12.2, "=": 13.3, "<": 13.3, ">": 13.3, "≈": 13.3,
    "∂": 5.7, "σ": 5.7, "Σ": 10.6, "√": 8.3, "∞": 10.0, "→": 15.6, "^": 0.0, " ": 0.0, "_": 5.0,
}
_LETTER_PT, _CAPITAL_PT, _OTHER_PT = 5.3, 7.8, 7.5
_SUBSCRIPT = 0.7  # an index (x1 → x_{1}) is set at 70%
_PIECE = re.compile(r"(?P<index>(?<=[A-Za-z])\d+)|(?P<one>.)", re.S)


def estimate_pt(text: str) -> float:
    """About how wide `text` (a cell before it is written as LaTeX math) is set, in points."""
    width = 0.0
    for match in _PIECE.finditer(text):
        if match.group("index") is not None:
            width += _SUBSCRIPT * _CHAR_PT["0"] * len(match.group("index"))
            continue
        piece = match.group("one")
        if piece in _CHAR_PT:
            width += _CHAR_PT[piece]
        elif piece.isascii() and piece.isalpha():
            width += _CAPITAL_PT if piece.isupper() else _LETTER_PT
        elif not piece.isspace():
            width += _OTHER_PT
    return width * SAFETY


@dataclass(frozen=True)
class Column:
    """One column of the table: its header and cells as plain text, and how it is aligned."""

    header: str
    cells: list[str]
    align: str  # "l" or "r"

    @property
    def width_pt(self) -> float:
        """Its estimated width with the space either side, at its widest cell."""
        return max(estimate_pt(text) for text in [self.header, *self.cells]) + COLUMN_PAD_PT


@dataclass(frozen=True)
class Part:
    """One table of the layout: the columns it shows (the first is always the row names) and,
    for a column wrapped as a paragraph, its width as a fraction of the line."""

    columns: list[Column]
    wrapped: dict[int, float]  # column position in this part → \linewidth fraction


def share_columns(columns: list[Column], width_pt: float = TEXT_WIDTH_PT) -> list[Part]:
    """The columns after the first shared out, in order, over tables at most `width_pt` wide,
    each led by the first column."""
    first, rest = columns[0], columns[1:]
    parts: list[Part] = []
    current: list[Column] = [first]
    used = first.width_pt
    for column in rest:
        if used + column.width_pt <= width_pt:
            current.append(column)
            used += column.width_pt
            continue
        if len(current) > 1:
            parts.append(Part(current, {}))
        if first.width_pt + column.width_pt <= width_pt:
            current, used = [first, column], first.width_pt + column.width_pt
        else:  # too wide even beside the names alone: a paragraph as wide as is left
            room = width_pt - first.width_pt - COLUMN_PAD_PT
            parts.append(Part([first, column], {1: round(room / width_pt, 2)}))
            current, used = [first], first.width_pt
    if len(current) > 1 or not parts:
        parts.append(Part(current, {}))
    return parts


def share_rows(part: Part, height_pt: float = TEXT_HEIGHT_PT) -> list[range]:
    """The rows of `part` in runs whose estimated height fits `height_pt` (a wrapped cell
    takes as many lines as its text needs), so that no table is taller than the page."""
    count = len(part.columns[0].cells)
    heights = []
    for row in range(count):
        lines = 1
        for j, fraction in part.wrapped.items():
            room = fraction * TEXT_WIDTH_PT
            lines = max(lines, math.ceil(estimate_pt(part.columns[j].cells[row]) / room))
        heights.append(lines * LINE_PT)
    runs, start, used = [], 0, 2 * LINE_PT  # the header and the rules
    for row, height in enumerate(heights):
        if row > start and used + height > height_pt:
            runs.append(range(start, row))
            start, used = row, 2 * LINE_PT
        used += height
    runs.append(range(start, count))
    return runs


_COMMA = re.compile(r"(?<!\\),")


def wrapped_cell(math: str, fraction: float) -> str:
    """A cell's LaTeX set as a ragged paragraph `fraction` of the line wide, breaking after commas."""
    breakable = _COMMA.sub(r",\\allowbreak ", math)
    return rf"\parbox[t]{{{fraction}\linewidth}}{{\raggedright {breakable}}}"
