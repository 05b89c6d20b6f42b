"""The stepper's split of the screen and the tape's columns: from what the panes hold."""

from __future__ import annotations

from gradviz.tui.layout import MAX_INSPECTOR, MIN_INSPECTOR, MIN_TAPE, NARROW_INSPECTOR, graph_room, pane_sizes
from gradviz.tui.widgets.tape import MARGIN, MIN_DEFINITION, MIN_LABEL, plan_columns


def test_the_inspector_takes_its_content_width_and_the_graph_the_rest():
    # the lecture at 200 columns: the inspector no wider than its lines, the graph the rest
    sizes = pane_sizes(200, 57, (62, 45), (55, 9))
    assert sizes.left_width == 200 - MAX_INSPECTOR
    sizes = pane_sizes(200, 57, (170, 45), (55, 9))
    assert sizes.left_width == 200 - MIN_INSPECTOR  # a wide graph squeezes the inspector to its minimum
    sizes = pane_sizes(120, 37, (300, 45), (55, 9))
    assert sizes.left_width == 120 - MIN_INSPECTOR  # a huge graph leaves the inspector its minimum


def test_a_graph_that_fits_whole_gets_its_rows_and_the_tape_the_rest():
    assert pane_sizes(200, 57, (62, 45), (55, 9)).tape_max_height == 57 - 47  # graph whole, tape 10 rows
    assert pane_sizes(120, 37, (62, 45), (55, 9)).tape_max_height == 11  # graph scrolls: tape whole
    assert pane_sizes(120, 37, (62, 26), (55, 9)).tape_max_height == 9


def test_narrow_screens_give_the_graph_its_rows_and_the_inspector_the_rest():
    sizes = pane_sizes(80, 21, (46, 9), (55, 9), narrow=True)
    assert sizes.left_width is None and sizes.graph_height == 9 + 2  # the lecture's one-line form, whole
    assert pane_sizes(80, 21, (62, 26), (55, 9), narrow=True).graph_height == 21 - NARROW_INSPECTOR


def test_fit_measures_against_the_room_the_layout_can_give():
    width, height = graph_room(120, 37, 9)
    assert width == 120 - MIN_INSPECTOR - 4 and height == 37 - 2 - MIN_TAPE
    assert graph_room(80, 21, 9, narrow=True) == (80 - 4, 21 - 2 - NARROW_INSPECTOR)


def test_tape_cuts_the_wider_text_column_first_and_never_a_number():
    numbers = [15, 15]  # value and adjoint of a transformer: '8×10×32 ‖47.74‖'
    assert plan_columns(16, 40, numbers, None) == (16, 40)
    assert plan_columns(16, 40, numbers, 200) == (16, 40)
    label, definition = plan_columns(16, 40, numbers, 72)
    assert (label, definition) == (16, 72 - 30 - 3 * 2 - 16 - MARGIN)  # four columns, three gaps, a margin
    label, definition = plan_columns(16, 40, numbers, 56)
    assert (label, definition) == (9, 10)  # both cut, the wider one first down to the other, then the label
    assert plan_columns(16, 40, numbers, 40) is None  # not even the least of both: fewer columns
    assert MIN_LABEL + MIN_DEFINITION <= 16
