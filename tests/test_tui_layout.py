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


def test_centred_offset_puts_the_box_centre_at_the_window_centre():
    from gradviz.tui.layout import centred_offset

    # two_layer_mlp's sigmoid box in the 120×40 stepper's graph pane (72×20 cells of 125×36)
    assert centred_offset((24, 15, 32, 4), (72, 20), (53, 16)) == (4, 7)  # 16 columns and 8 rows either side
    assert centred_offset((24, 15, 32, 3), (72, 19), (53, 17)) == (4, 7)  # odd leftovers: the extra row below
    assert centred_offset((2, 1, 10, 3), (72, 20), (53, 16)) == (0, 0)  # near the corner: as far as it scrolls
    assert centred_offset((120, 33, 5, 3), (72, 20), (53, 16)) == (53, 16)
    assert centred_offset((10, 30, 90, 3), (72, 20), (53, 16)) == (10, 16)  # wider than the window: its left edge


def test_centred_offset_centres_within_half_a_cell_wherever_it_can():
    import random

    from gradviz.tui.layout import centred_offset

    rng = random.Random(0)
    for _ in range(2000):
        window = (rng.randint(1, 120), rng.randint(1, 40))
        virtual = (rng.randint(1, 300), rng.randint(1, 100))
        limit = (max(0, virtual[0] - window[0]), max(0, virtual[1] - window[1]))
        w, h = rng.randint(1, virtual[0]), rng.randint(1, virtual[1])
        box = (rng.randint(0, virtual[0] - w), rng.randint(0, virtual[1] - h), w, h)
        offset = centred_offset(box, window, limit)
        for axis in (0, 1):
            start, length, room, most = box[axis], box[axis + 2], window[axis], limit[axis]
            assert 0 <= offset[axis] <= most
            if length > room:
                assert offset[axis] == min(start, most)
            elif 0 < offset[axis] < most:  # not held by either end: centred to half a cell
                assert abs((start + length / 2) - (offset[axis] + room / 2)) <= 0.5
            else:  # held by an end: the box is whole in view all the same
                assert offset[axis] <= start and start + length <= offset[axis] + room
