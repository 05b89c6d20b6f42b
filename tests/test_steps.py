"""Steps: the state at step k is a pure function of k, and the passes come in order."""

from __future__ import annotations

import pytest

from gradviz.core.steps import build_steps, first_step_of, state_at


def test_step_order_forward_then_tangents_then_reverse(lecture_trace):
    steps = build_steps(lecture_trace)
    phases = [s.phase for s in steps]
    assert phases == ["forward"] * 6 + ["tangent"] * 8 * 2 + ["reverse"] * 8
    labels = [lecture_trace.graph.nodes[s.node].label for s in steps if s.phase == "reverse"]
    assert labels == ["f", "v5", "v4", "v3", "v2", "v1", "x2", "x1"]


def test_state_is_a_function_of_k_alone(lecture_trace):
    steps = build_steps(lecture_trace)
    states = [state_at(lecture_trace, steps, k) for k in range(len(steps) + 1)]
    again = [state_at(lecture_trace, steps, k) for k in reversed(range(len(steps) + 1))]
    assert states == list(reversed(again))


def test_forward_reveals_one_value_per_step(lecture_trace):
    steps = build_steps(lecture_trace)
    graph = lecture_trace.graph
    state = state_at(lecture_trace, steps, 3)
    assert graph.nodes[state.current].label == "v3"
    assert {graph.nodes[i].label for i in state.values_known} == {"x1", "x2", "v1", "v2", "v3"}


def test_tangent_and_reverse_passes_are_numbered(lecture_trace):
    steps = build_steps(lecture_trace)
    second = first_step_of(steps, "tangent", "x2")
    state = state_at(lecture_trace, steps, second)
    assert (state.phase, state.pass_key, state.pass_number, state.pass_count) == ("tangent", "x2", 2, 2)
    k = first_step_of(steps, "reverse") + 3
    state = state_at(lecture_trace, steps, k)
    assert state.phase == "reverse" and (state.pass_number, state.pass_count) == (1, 1)
    graph = lecture_trace.graph
    assert {graph.nodes[i].label for i in state.adjoints_known} == {"f", "v5", "v4", "v3"}


def test_out_of_range_step_is_refused(lecture_trace):
    steps = build_steps(lecture_trace)
    with pytest.raises(IndexError):
        state_at(lecture_trace, steps, len(steps) + 1)
