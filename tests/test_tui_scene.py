"""Scene: how each node looks and reads at step k, and what changes between steps."""

from __future__ import annotations

from gradviz.tui import actions
from gradviz.tui.scene import Scene, changed_nodes, first_bad_step
from gradviz.tui.timeline import Timeline
from tui_support import expression_trace, lecture_trace


def node(trace, label):
    return trace.graph.find(label).id


def test_forward_step_shows_values_up_to_k_and_dims_the_rest():
    trace = lecture_trace()
    scene = Scene(Timeline(trace), 2)  # v1, v2 computed
    assert scene.current == node(trace, "v2")
    assert scene.look(node(trace, "v2")) == "current"
    assert scene.look(node(trace, "v1")) == "known"
    assert scene.look(node(trace, "v3")) == "pending"
    assert scene.slot_text("value", node(trace, "v2")) == "= 1.6487"
    assert scene.slot_text("value", node(trace, "v3")) == "= ?"
    assert scene.slot_text("derivative", node(trace, "v3")) == ""


def test_tangent_and_reverse_slots():
    trace = lecture_trace()
    timeline = Timeline(trace)
    assert Scene(timeline, 10).slot_text("derivative", node(trace, "v2")) == "′ 1.6487"  # x1 pass
    assert Scene(timeline, 18).slot_text("current", node(trace, "v2")) == "′ -0.8244"  # x2 pass
    reverse = Scene(timeline, 24)
    assert reverse.slot_text("derivative", node(trace, "v5")) == "¯ 2.1487"
    assert reverse.slot_text("derivative", node(trace, "v3")) == "¯ ?"
    assert reverse.wrt == "x2" and reverse.output == "f"


def test_changed_nodes_is_small_within_a_pass_and_none_across_passes():
    trace = lecture_trace()
    timeline = Timeline(trace)
    assert changed_nodes(Scene(timeline, 2), Scene(timeline, 3)) == {node(trace, "v2"), node(trace, "v3")}
    assert changed_nodes(Scene(timeline, 6), Scene(timeline, 7)) is None


def test_first_bad_step_finds_the_first_nan():
    trace = expression_trace("y = log(a - 1) * b", "a=0.5,b=2")
    found = first_bad_step(Timeline(trace))
    assert found is not None
    k, bad = found
    assert trace.graph.nodes[bad].definition.endswith("log(v1)")
    scene = Scene(Timeline(trace), k)
    assert scene.current == bad


def test_mode_and_pass_switching():
    timeline = Timeline(lecture_trace())
    assert actions.next_phase_start(timeline, 0) == 1
    assert actions.next_phase_start(timeline, 3) == 7
    assert actions.next_phase_start(timeline, 9) == 23
    assert actions.next_phase_start(timeline, 25) == 1  # round to the values again, not step 0
    assert actions.next_phase_start(timeline, 25, -1) == 23
    assert actions.next_phase_start(timeline, 23, -1) == 7
    assert actions.switch_pass(timeline, 10, "tangent")[0] == 18  # same node, x2's pass
    assert actions.switch_pass(timeline, 18, "tangent")[0] == 10
    assert actions.switch_pass(timeline, 3, "tangent")[0] == 7
    k, message = actions.switch_pass(timeline, 25, "reverse")
    assert k == 25 and "only one output" in message


def test_export_steps_are_the_steppers_numbers():
    timeline = Timeline(lecture_trace())
    assert actions.export_args(timeline, 0) == {"mode": "forward", "step": 0, "wrt": "x1"}
    assert actions.export_args(timeline, 4) == {"mode": "forward", "step": 4, "wrt": "x1"}
    assert actions.export_args(timeline, 16) == {"mode": "tangent", "step": 16, "wrt": "x1"}
    assert actions.export_args(timeline, 26) == {"mode": "reverse", "step": 26, "wrt": "x1", "output": "f"}
