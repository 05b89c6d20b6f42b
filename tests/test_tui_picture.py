"""The stand-in drawing: every node has a box, boxes do not overlap, cells know their node."""

from __future__ import annotations

import pytest

from gradviz.tui.picture import DETAILS, build_picture
from tui_support import lecture_trace


@pytest.mark.parametrize("detail", DETAILS)
def test_every_node_is_drawn_once_and_owns_its_cells(detail):
    trace = lecture_trace()
    picture = build_picture(trace, detail)
    assert set(picture.boxes) == {n.id for n in trace.graph.nodes}
    owners: dict[tuple[int, int], int] = {}
    for box in picture.boxes.values():
        for y in range(box.y, box.y + box.height):
            for x in range(box.x, box.x + box.width):
                assert (x, y) not in owners, "boxes overlap"
                owners[(x, y)] = box.node
                assert picture.node_at(x, y) == box.node
    assert picture.node_at(picture.width + 5, 0) is None


def test_full_boxes_hold_the_definition_and_two_number_slots():
    trace = lecture_trace()
    picture = build_picture(trace, "full")
    box = picture.boxes[trace.graph.find("v2").id]
    assert "v2 = exp(v1)" in picture.rows[box.y + 1]
    assert [kind for kind, *_ in box.slots] == ["value", "derivative"]


def test_unknown_detail_is_refused():
    with pytest.raises(ValueError):
        build_picture(lecture_trace(), "huge")
