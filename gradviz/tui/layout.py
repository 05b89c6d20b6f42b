"""How the stepper splits the screen: by the natural sizes of the graph and the tape.

Textual-free: sizes in, sizes out, so the rule is tested without an app.
"""

from __future__ import annotations

from dataclasses import dataclass

BORDER = 2  # a pane's border, both sides
SCROLLBAR = 2
MIN_INSPECTOR = 44  # the inspector's equations need about this many columns
MIN_LEFT_SHARE = 0.34  # the graph and tape keep at least a third of the width
TAPE_SHARE = 0.45
MIN_TAPE = 7  # rows: border, header and four rows of the table  # the tape's share of the left column when the graph needs the rest


@dataclass(frozen=True)
class PaneSizes:
    """The left column's width (None: the stylesheet's stacked narrow layout) and the tape's
    largest height."""

    left_width: int | None
    tape_max_height: int | str


def pane_sizes(width: int, height: int, graph: tuple[int, int], tape: tuple[int, int],
               narrow: bool = False) -> PaneSizes:
    """Widths and heights from what the panes hold: the left column (graph over tape) as
    wide as the wider of the two needs, the inspector the rest (at least MIN_INSPECTOR);
    the tape as tall as its rows when the graph is short, else at most TAPE_SHARE."""
    graph_w, graph_h = graph
    tape_w, tape_h = tape
    if narrow:
        return PaneSizes(None, "100%")
    natural = max(graph_w, tape_w) + BORDER + SCROLLBAR
    left = max(int(width * MIN_LEFT_SHARE), min(natural, width - MIN_INSPECTOR))
    spare = height - (graph_h + BORDER)  # rows the graph does not need
    tape_rows = tape_h + BORDER
    if spare >= MIN_TAPE:  # the whole graph fits above a tape that still shows a few rows
        tape_max = min(tape_rows, spare)
    else:  # the graph scrolls anyway: the tape keeps its rows, up to its share
        tape_max = min(tape_rows, max(int(height * TAPE_SHARE), MIN_TAPE))
    return PaneSizes(max(1, min(left, width - 20)), max(3, tape_max))


def graph_room(width: int, height: int, tape_rows: int) -> tuple[int, int]:
    """The most cells a drawing can have and still be shown whole in the wide layout
    (the tape shrunk to MIN_TAPE rows): what `f` (fit) measures drawings against."""
    return width - MIN_INSPECTOR - BORDER - SCROLLBAR, height - BORDER - min(tape_rows + BORDER, MIN_TAPE)
