"""Names and numbers as the lecture uses them: modes values / forward / reverse, one step
numbering for the stepper and `export --step`, functions as the user wrote them."""

from __future__ import annotations

from gradviz.cli import main
from gradviz.core.steps import state_at, stepper_steps
from gradviz.draw.export import frame_steps, make_picture
from gradviz.tui.actions import export_args
from gradviz.tui.timeline import Timeline
from tui_support import expression_trace, lecture_trace

LECTURE = ["(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", "--at", "x1=0.5,x2=1"]


def _trace_out(capsys, *mode) -> str:
    assert main(["trace", *LECTURE, *mode]) == 0
    return capsys.readouterr().out


def test_modes_are_values_forward_and_reverse_with_tangent_an_alias(capsys):
    values = _trace_out(capsys, "--mode", "values")
    assert "tangent" not in values and "adjoint" not in values
    forward = _trace_out(capsys, "--mode", "forward")
    assert "tangents (forward mode, ∂·/∂x1)" in forward and "v2' = e^{v1}·v1' = 1.6487" in forward
    assert "adjoint" not in forward
    assert _trace_out(capsys, "--mode", "tangent") == forward
    reverse = _trace_out(capsys, "--mode", "reverse")
    assert "v̄1 = v̄2·e^{v1} + v̄3 + v̄5" in reverse and "tangents (forward mode" not in reverse


def test_export_step_is_the_steppers_step():
    trace = lecture_trace()
    timeline = Timeline(trace)
    steps = stepper_steps(trace)
    assert len(steps) == timeline.last
    for k in range(timeline.last + 1):
        state = timeline.state(k)
        args = export_args(timeline, k)
        assert args["step"] == k
        picture = make_picture(trace, **args)
        current = next((b.key for b in picture.look.boxes if b.style.endswith(".current")), None)
        assert current == (None if state.current is None else f"n{state.current}"), k
        assert state_at(trace, steps, k).current == state.current
    assert make_picture(trace, 28).title == "step 28/30, reverse mode: v1 (∂f/∂·)"


def test_export_step_follows_wrt_as_the_stepper_does():
    from gradviz.tui.app import StepperApp

    trace = lecture_trace()
    app = StepperApp(trace, wrt="x2")
    k = next(k for k in range(app.timeline.last + 1) if app.timeline.state(k).phase == "tangent")
    assert app.timeline.state(k).pass_key == "x2"
    assert "∂·/∂x2" in make_picture(trace, **export_args(app.timeline, k)).title


def test_frames_are_named_by_the_steppers_numbers():
    trace = lecture_trace()
    assert frame_steps(trace, "reverse") == list(range(0, 7)) + list(range(23, 31))
    assert frame_steps(trace, "tangent", wrt="x2") == list(range(0, 15))
    assert frame_steps(trace, "forward") == list(range(0, 7))


def test_functions_are_shown_as_written():
    trace = expression_trace("f = ln(x) * log(y)", "x=2,y=3")
    definitions = [n.definition for n in trace.graph.nodes if not n.is_leaf]
    assert "v1 = ln(x)" in definitions and "v2 = log(y)" in definitions
    import numpy as np

    assert np.isclose(trace.values[trace.graph.find("v1").id], np.log(2.0))


def test_gif_animates_the_frames_and_scale_sizes_the_png(tmp_path, capsys):
    from PIL import Image

    gif = tmp_path / "steps.gif"
    assert main(["export", *LECTURE, "--frames", str(tmp_path / "fr"), "--gif", str(gif), "--frame-ms", "500"]) == 0
    frames = sorted((tmp_path / "fr").glob("step_*.svg"))
    with Image.open(gif) as image:
        assert image.n_frames == len(frames) == 15 and image.info["duration"] == 500
    small, big = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["export", *LECTURE, "-o", str(small)]) == 0
    assert main(["export", *LECTURE, "-o", str(big), "--scale", "2"]) == 0
    with Image.open(small) as a, Image.open(big) as b:
        assert abs(b.width - 2 * a.width) <= 4 and abs(b.height - 2 * a.height) <= 4
    assert main(["export", *LECTURE, "-o", str(small), "--gif", str(gif)]) == 2
    assert main(["export", *LECTURE, "-o", str(small), "--scale", "0"]) == 2
    err = capsys.readouterr().err
    assert "give --frames DIR too" in err and "--scale 0 is out of range" in err


def test_exported_edge_labels_write_one_minus_sign():
    trace = lecture_trace()
    picture = make_picture(trace)
    labels = [e.label for e in picture.look.edges if e.label]
    assert "−v̄1·(x1/x2²) = −1.7365" in labels and not any("-" in label for label in labels)


def test_a_target_is_data_no_pass_runs_for_it_and_counts_leave_it_out(capsys):
    from gradviz.tui.scene import Scene

    trace = expression_trace("h = sigmoid(x @ W1 + b1); loss = bce(sigmoid(h @ W2 + b2), y)",
                             "y=[[0],[1],[1],[0]]", {"x": (4, 2), "W1": (2, 3), "b1": (3,), "W2": (3, 1), "b2": (1,)})
    y = trace.graph.find("y").id
    assert trace.graph.target_ids == {y}
    steps = stepper_steps(trace)
    assert "y" not in {s.pass_key for s in steps if s.phase == "tangent"}
    assert y not in {s.node for s in steps if s.phase == "reverse"}
    # 8 + 6 + 3 + 3 + 1 elements of what is differentiated; y's 4 are data
    assert trace.pass_counts() == {"forward_mode": 21, "reverse_mode": 1}
    timeline = Timeline(trace)
    assert Scene(timeline, timeline.last).text("adjoint", y, "loss") == "data"
    assert main(["trace", "h = bce(sigmoid(x * w), y)", "--at", "x=2,w=0.5,y=1", "--json"]) == 0
    import json

    nodes = {n["label"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert nodes["y"]["data"] is True and nodes["x"]["data"] is False


def test_a_models_target_is_data():
    import pytest

    pytest.importorskip("torch")
    from pathlib import Path

    from gradviz.sources.model import trace_spec

    trace = trace_spec(str(Path(__file__).resolve().parent.parent / "samples" / "two_layer_mlp.py"))
    y = trace.graph.find("y").id
    assert trace.graph.target_ids == {y}
    assert y not in {s.node for s in stepper_steps(trace) if s.phase == "reverse"}
    x_and_params = sum(trace.values[i].size for i in trace.graph.input_ids if i != y)
    assert trace.pass_counts()["forward_mode"] == x_and_params


def test_small_tensors_are_shown_as_their_numbers_in_the_inspector():
    from rich.console import Console

    from gradviz.tui.inspector_text import inspector_report
    from gradviz.tui.scene import Scene

    trace = expression_trace("h = x @ W; f = sum(h)", "x=[[1,2],[3,4]],W=[[0.5,-1],[2,0.25]]")
    timeline = Timeline(trace)
    console = Console(width=100, color_system=None)
    with console.capture() as capture:
        console.print(inspector_report(Scene(timeline, timeline.last), trace.graph.find("h").id))
    text = capture.get()
    assert "value, all 2×2 numbers:" in text and "[[ 4.5 −0.5]" in text and "[ 9.5 −2. ]]" in text
    assert "adjoint, all 2×2 numbers:" in text and "[[1. 1.]" in text
    big = expression_trace("f = sum(x)", "", {"x": (9, 2)})
    with console.capture() as capture:
        console.print(inspector_report(Scene(Timeline(big), 0), big.graph.find("x").id))
    assert "numbers:" not in capture.get() and "zeros" in capture.get()  # statistics and a heatmap
