"""The inspector's text: the lecture's equations, with pending terms as '?'."""

from __future__ import annotations

from rich.console import Console

from gradviz.tui.inspector_text import inspector_report
from gradviz.tui.scene import Scene
from gradviz.tui.timeline import Timeline
from tui_support import expression_trace, lecture_trace


def text(renderable, width: int = 100) -> str:
    console = Console(width=width, record=True, file=None, color_system=None)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


def report(k: int, label: str, trace=None) -> str:
    trace = trace or lecture_trace()
    return text(inspector_report(Scene(Timeline(trace), k), trace.graph.find(label).id))


def test_forward_step_shows_definition_inputs_and_partials():
    out = report(2, "v2")
    assert "v2 = exp(v1)" in out
    assert "v2 = 1.6487" in out
    assert "∂v2/∂v1 = e^{v1} = 1.6487" in out
    assert "pending: the tangent passes come after the values" in out


def test_tangent_pass_shows_the_chain_rule():
    out = report(10, "v2")  # x1's pass, v2 just computed
    assert "v2' = e^{v1}·v1' = 1.6487" in out
    assert "∂/∂x2: v2' = e^{v1}·v1' = ?" in out


def test_adjoint_is_built_term_by_term():
    partial = report(26, "v1")  # after f, v5, v4, v3: v̄2 still pending
    assert "v̄1 = v̄2·∂v2/∂v1 + v̄3·∂v3/∂v1 + v̄5·∂v5/∂v1" in partial
    assert "   = v̄2·e^{v1} + v̄3 + v̄5\n   = ? + 0.5000 + 2.1487 = ?" in partial
    final = report(28, "v1")
    assert "= 0.8244 + 0.5000 + 2.1487 = 3.4731" in final
    assert "from v2: v̄2 = 0.5000 × ∂v2/∂v1 (1.6487) → 0.8244" in final


def test_output_adjoint_is_the_seed():
    assert "f̄ = ∂f/∂f = 1 (the seed)" in report(23, "f")


def test_tensor_nodes_show_shape_statistics_and_a_heatmap():
    # bigger than 8×8 in some direction (smaller tensors are shown as their numbers)
    trace = expression_trace("y = sum(W @ x)", shapes={"W": (4, 9), "x": (9, 2)})
    out = report(len(Timeline(trace).steps), "W", trace)
    assert "value 4×9 float64: mean" in out and "‖·‖" in out
    assert "all 4×9; █ = |" in out  # the heatmap's caption
