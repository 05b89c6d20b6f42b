"""How the stepper splits the screen: by the natural sizes of the graph, tape and inspector.

Textual-free: sizes in, sizes out, so the rule is tested without an app.
"""

from __future__ import annotations

from dataclasses import dataclass

BORDER = 2  # a pane's border, both sides
SCROLLBAR = 2
MIN_INSPECTOR = 44  # the inspector's equations need about this many columns
# the inspector's widest lines (a partial with its number, a pass's note) are about 60
# columns: with padding, border and scrollbar it needs no more than this; the graph takes the rest
MAX_INSPECTOR = 66
TAPE_SHARE = 0.45  # the tape's share of the left column when the graph needs the rest
MIN_TAPE = 7  # rows: border, header and four rows of the table
NARROW_INSPECTOR = 8  # rows the inspector keeps under the graph on a narrow terminal
NARROW_FINDINGS = 3  # and the findings under it (stepper.tcss: .-narrow #findings)


@dataclass(frozen=True)
class PaneSizes:
    """The left column's width (None: the stylesheet's stacked narrow layout), the tape's
    largest height, and on narrow terminals the graph's height (None: the stylesheet's)."""

    left_width: int | None
    tape_max_height: int | str
    graph_height: int | None = None


def pane_sizes(width: int, height: int, graph: tuple[int, int], tape: tuple[int, int],
               narrow: bool = False, findings: bool = False) -> PaneSizes:
    """Widths and heights from what the panes hold: the inspector as wide as its content
    (MAX_INSPECTOR, at least MIN_INSPECTOR), the left column (graph over tape) the rest;
    the tape as tall as its rows when the graph is short, else at most TAPE_SHARE. Narrow
    (stacked): the graph as tall as its drawing, the inspector at least NARROW_INSPECTOR rows."""
    graph_w, graph_h = graph
    tape_w, tape_h = tape
    if narrow:
        return PaneSizes(None, "100%", max(3, min(graph_h + BORDER, height - _below_graph(findings))))
    natural = max(graph_w, tape_w) + BORDER + SCROLLBAR
    left = max(width - MAX_INSPECTOR, min(natural, width - MIN_INSPECTOR))
    spare = height - (graph_h + BORDER)  # rows the graph does not need
    tape_rows = tape_h + BORDER
    if spare >= MIN_TAPE:  # the whole graph fits above a tape that still shows a few rows
        tape_max = min(tape_rows, spare)
    else:  # the graph scrolls anyway: the tape keeps its rows, up to its share
        tape_max = min(tape_rows, max(int(height * TAPE_SHARE), MIN_TAPE))
    return PaneSizes(max(1, min(left, width - 20)), max(3, tape_max))


def _below_graph(findings: bool) -> int:
    """Rows a narrow terminal keeps under the graph: the inspector's, and the findings' if any."""
    return NARROW_INSPECTOR + (NARROW_FINDINGS if findings else 0)


def graph_room(width: int, height: int, tape_rows: int, narrow: bool = False,
               findings: bool = False) -> tuple[int, int]:
    """The most cells a drawing can have and still be shown whole (wide: the tape shrunk to
    MIN_TAPE rows; narrow: the inspector to NARROW_INSPECTOR): what `f` (fit) measures against."""
    if narrow:
        return width - BORDER - SCROLLBAR, height - BORDER - _below_graph(findings)
    return (width - MIN_INSPECTOR - BORDER - SCROLLBAR,
            height - BORDER - min(tape_rows + BORDER, MIN_TAPE))


def centred_offset(box: tuple[int, int, int, int], window: tuple[int, int],
                   max_scroll: tuple[int, int]) -> tuple[int, int]:
    """The scroll offset that centres `box` (x, y, width, height) in a `window` of (columns,
    rows), within 0…`max_scroll`: a function of these alone, so the same step at the same
    size always shows the same picture, however the pane got there. Half a cell left over
    goes below and to the right; a box bigger than the window shows its top-left corner."""
    return (_centred(box[0], box[2], window[0], max_scroll[0]),
            _centred(box[1], box[3], window[1], max_scroll[1]))


def _centred(start: int, length: int, room: int, limit: int) -> int:
    """Centre one axis of a box (or show its start, when it is longer than the room)."""
    offset = start if length > room else (2 * start + length - room) // 2
    return max(0, min(offset, limit))
