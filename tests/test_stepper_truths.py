"""The small untruths a new user met, each pinned: the README's --step example, what the
inspector calls a partial, what the status bar's pass counts count, notices that do not
cover the status bar, feedback for t and [ ], esc after panning, one minus sign in an
equation, and a legend that says what it can when there is no colour."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from rich.console import Console

from gradviz.cli import main
from gradviz.core.explain import adjoint_equation, tangent_equation
from gradviz.core.steps import state_at, stepper_steps
from gradviz.draw.terminal import PLAIN_LEGEND, Legend
from gradviz.tui.app import StepperApp
from gradviz.tui.inspector_text import inspector_report
from gradviz.tui.scene import Scene
from gradviz.tui.timeline import Timeline
from gradviz.tui.widgets.status import status_text
from tui_support import expression_trace, lecture_trace, run_async, screen_text, wait_for_graph

README = Path(__file__).resolve().parent.parent / "README.md"


def _text(renderable, width: int = 120) -> str:
    console = Console(width=width, color_system=None)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


def test_readme_step_example_shows_v1():
    line = next(line for line in README.read_text().splitlines() if "-o v1.svg" in line and "--step" in line)
    args = shlex.split(line.split("#")[0])
    step = int(args[args.index("--step") + 1])
    trace = lecture_trace()
    state = state_at(trace, stepper_steps(trace), step)  # export numbers steps as the stepper does
    assert trace.graph.nodes[state.current].label == "v1" and state.phase == "reverse"


def _network():
    return expression_trace("h = sigmoid(x @ W1 + b1); loss = bce(sigmoid(h @ W2 + b2), y)",
                            "y=[[0],[1],[1],[0]]", {"x": (4, 2), "W1": (2, 3), "b1": (3,), "W2": (3, 1), "b2": (1,)})


def test_inspector_names_vector_jacobian_products_and_elementwise_partials():
    trace = _network()
    timeline = Timeline(trace)
    v3 = _text(inspector_report(Scene(timeline, timeline.last), trace.graph.find("v3").id))
    # a matrix product has no partial to print: its vector-Jacobian product is named as such
    assert "vector-Jacobian product: v̄ ↦ v̄ @ W2ᵀ  (v̄ = v̄3)" in v3
    assert "∂v3/∂h =" not in v3
    # v4 = v3 + b2 broadcasts: an elementwise partial of 1, not '1 = 4×1 ‖2‖'
    v4 = _text(inspector_report(Scene(timeline, timeline.last), trace.graph.find("v4").id))
    assert "elementwise ∂v4ᵢ/∂v3ᵢ = 1" in v4 and "= 1 = 4×1" not in v4
    assert "⊙ ∂v4ᵢ/∂v3ᵢ (1)" in _text(inspector_report(Scene(timeline, timeline.last), trace.graph.find("v3").id))
    h = _text(inspector_report(Scene(timeline, timeline.last), trace.graph.find("h").id))
    assert re.search(r"elementwise ∂hᵢ/∂v2ᵢ = h·\(1 − h\) = 4×3 ‖", h)


def test_status_bar_says_what_each_pass_count_counts():
    trace = _network()  # 5 input tensors with 21 elements (the target y is data)
    timeline = Timeline(trace)
    k = next(k for k in range(timeline.last + 1) if timeline.state(k).phase == "tangent")
    for compact in (False, True):
        text = status_text(Scene(timeline, k), compact=compact).plain
        assert "pass 1 of 5 (one per input)" in text  # x, W1, b1, W2, b2: y is data
        assert "(1/input element)" in text or "(one per input element)" in text
        assert "forward 21 passes" in text or "forward mode 21 passes" in text
        assert len(text.splitlines()[1]) <= 80 or not compact


def test_equations_write_negative_numbers_with_their_operators_minus():
    trace = lecture_trace()
    text = adjoint_equation(trace, "f", trace.graph.find("x2").id)
    assert text.endswith("= −1.7365 − 2.1487 = −3.8853") and "-" not in text
    assert tangent_equation(trace, "x2", trace.graph.find("v1").id).endswith("= −0.5000")


def test_inspector_writes_one_minus_sign_per_line():
    trace = lecture_trace()
    timeline = Timeline(trace)
    text = _text(inspector_report(Scene(timeline, timeline.last), trace.graph.find("v1").id))
    assert "∂v1/∂x2 = −x1/x2² = −0.5000" in text
    assert not re.search(r"−.*-\d|-\d.*−", text), [line for line in text.splitlines() if "-" in line]


def test_piped_graph_legend_has_no_colourless_swatches(capsys):
    assert main(["trace", "(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", "--at", "x1=0.5,x2=1", "--graph"]) == 0
    out = capsys.readouterr().out
    assert PLAIN_LEGEND.split(":")[0] in out.replace("\n", " ") and "■" not in out
    console = Console(width=100, force_terminal=True, color_system="truecolor")
    with console.capture() as capture:
        console.print(Legend({"input", "op"}))
    assert "■" in capture.get() and "\x1b[" in capture.get()


@run_async
async def test_notices_sit_above_the_status_bar_and_t_and_speed_keys_answer():
    from textual.widgets._toast import Toast

    from gradviz.tui.widgets.status import StatusBar

    app = StepperApp(lecture_trace(), source="lecture")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_for_graph(pilot)
        await pilot.press("t")
        await pilot.pause(0.3)
        assert any("an expression has no model to train" in n.message for n in app._notifications)
        await pilot.press("right_square_bracket")
        await pilot.pause(0.3)
        assert any("play speed 8 steps/s" in n.message for n in app._notifications)
        status = app.screen.query_one(StatusBar).region
        toasts = list(app.screen.query(Toast))
        assert toasts and all(t.region.bottom <= status.y for t in toasts)
        assert "START" in screen_text(app).splitlines()[status.y]


@run_async
async def test_escape_after_panning_brings_the_current_node_back():
    from gradviz.tui.widgets.graph_pane import GraphPane

    app = StepperApp(lecture_trace(), source="lecture", detail="full")  # taller than the pane: it pans
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_graph(pilot)
        await pilot.press(*["n"] * 5)
        graph = app.screen.query_one(GraphPane)
        centred = (graph.scroll_x, graph.scroll_y)
        graph.focus()
        await pilot.press("j", "j", "j", "l", "l", "l")
        await pilot.pause()
        assert (graph.scroll_x, graph.scroll_y) != centred
        await pilot.press("escape")
        await pilot.pause()
        assert (graph.scroll_x, graph.scroll_y) == centred
