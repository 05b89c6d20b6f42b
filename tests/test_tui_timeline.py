"""The Timeline answers exactly what core.steps.state_at does, without rescanning."""

from __future__ import annotations

import pytest

from gradviz.core.steps import build_steps, state_at
from gradviz.tui.app import stepper_steps
from gradviz.tui.timeline import Timeline
from tui_support import expression_trace, lecture_trace


def test_lecture_passes_are_forward_two_tangents_one_reverse():
    timeline = Timeline(lecture_trace())
    assert [(p.phase, p.key, p.start, p.stop) for p in timeline.passes] == [
        ("forward", None, 1, 6), ("tangent", "x1", 7, 14), ("tangent", "x2", 15, 22), ("reverse", "f", 23, 30)]


@pytest.mark.parametrize("text, at", [
    ("(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", "x1=0.5,x2=1"),
    ("u = a*b + 2\nv = sin(u) * a\nw = u - v\n", "a=0.3,b=-1.2"),
])
def test_state_equals_state_at_at_every_step(text, at):
    trace = expression_trace(text, at)
    steps = build_steps(trace)
    timeline = Timeline(trace, steps)
    for k in range(len(steps) + 1):
        assert timeline.state(k) == state_at(trace, steps, k)


def test_known_keeps_finished_passes_and_knows_nothing_of_later_ones():
    timeline = Timeline(lecture_trace())
    assert timeline.known(10, "tangent", "x2") == frozenset()
    assert timeline.known(20, "tangent", "x1") == frozenset(range(8))
    assert timeline.known(24, "reverse", "f") == {7, 6}  # f, then v5


def test_step_of_and_jump_target():
    trace = lecture_trace()
    timeline = Timeline(trace)
    v4 = trace.graph.find("v4").id
    assert timeline.step_of(v4, "forward") == 4
    assert timeline.step_of(v4, "reverse", "f") == 25
    assert timeline.jump_target(v4, 0) == 4  # from the start: its forward step
    assert timeline.jump_target(v4, 16) == 20  # inside x2's tangent pass: stays in that pass
    assert timeline.jump_target(trace.graph.find("x1").id, 2) == 7  # a leaf: its first step anywhere


def test_out_of_range_raises():
    with pytest.raises(IndexError):
        Timeline(lecture_trace()).state(31)


def test_wrt_moves_its_tangent_pass_first():
    trace = lecture_trace()
    timeline = Timeline(trace, stepper_steps(trace, "x2"))
    assert [p.key for p in timeline.phase_passes("tangent")] == ["x2", "x1"]
