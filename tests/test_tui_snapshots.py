"""Snapshots of the stepper at 120×40: the lecture's example once per mode, and a model spec.

Regenerate after a deliberate change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the SVGs under tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import pytest

from gradviz.tui.app import StepperApp
from tui_support import SAMPLES, lecture_trace, wait_for_graph

SIZE = (120, 40)


@pytest.mark.parametrize("k, what", [
    (4, "forward: v4 = log(x2) just computed"),
    (10, "tangent pass for x1: v2' = e^{v1}·v1'"),
    (28, "reverse: v̄1 = v̄2·e^{v1} + v̄3 + v̄5"),
], ids=["forward", "tangent", "reverse"])
def test_lecture_example_at_one_step_per_mode(snap_compare, k, what):
    app = StepperApp(lecture_trace(), source="lecture", start=k)
    assert snap_compare(app, terminal_size=SIZE, run_before=wait_for_graph), what


def test_model_spec(snap_compare):
    pytest.importorskip("torch")
    from gradviz.sources.model import trace_spec

    spec = str(SAMPLES / "two_layer_mlp.py")
    app = StepperApp(trace_spec(spec), source="samples/two_layer_mlp.py", spec_path=spec, start=9)
    assert snap_compare(app, terminal_size=SIZE, run_before=wait_for_graph)


SIZES = [(80, 24), (120, 40), (200, 60)]
SAMPLE_RUNS = {  # sample → (step shown, a node whose tape row must show its value and adjoint whole)
    "lecture.expr": (28, "v1"),
    "nan_hunt.expr": (10_000, "h"),  # the last step: every adjoint known
    "two_layer_mlp.py": (10_000, "fc1"),
}


def _sample_app(name: str, k: int) -> StepperApp:
    from gradviz.cli import build_parser
    from gradviz.commands.common import load_trace

    path = SAMPLES / name
    source = str(path) if name.endswith(".py") else f"@{path}"
    args = build_parser().parse_args(["step", source, "--batch-size", "8"] if name.endswith(".py") else ["step", source])
    trace = load_trace(args, ("tangent", "reverse"))
    return StepperApp(trace, source=f"samples/{name}", spec_path=str(path) if name.endswith(".py") else None, start=k)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("name", list(SAMPLE_RUNS))
def test_every_sample_reads_at_every_size(snap_compare, name, size):
    """Every pane readable: the footer keeps e (and t for a spec) at 80 columns, the tape's
    value and adjoint columns are whole where the tape is shown, the inspector has rows, the
    graph's node in focus is centred."""
    if name.endswith(".py"):
        pytest.importorskip("torch")
    from gradviz.core.fmt import fmt_value
    from gradviz.tui.widgets.graph_pane import GraphPane
    from gradviz.tui.widgets.inspector import Inspector
    from gradviz.tui.widgets.tape import Tape
    from tui_support import assert_centred, screen_text

    k, label = SAMPLE_RUNS[name]
    app = _sample_app(name, k)

    async def check(pilot):
        await wait_for_graph(pilot)
        await pilot.pause(0.2)
        text = screen_text(app)
        footer = text.splitlines()[-1]
        assert "e SVG" in footer and ("t Train" in footer) == name.endswith(".py"), footer
        assert app.screen.query_one(Inspector).size.height >= 5
        assert_centred(app.screen.query_one(GraphPane))  # in the pane as finally laid out
        tape = app.screen.query_one(Tape)
        if tape.display and size[0] >= 100:
            node = app.trace.graph.find(label).id
            row = tape.row_text(node)
            value = fmt_value(app.trace.values[node])
            adjoint = fmt_value(next(iter(app.trace.adjoints.values()))[node])
            assert value in row and adjoint in row, row
            shown = sum(c[3] for c in tape.columns) + 2 * (len(tape.columns) - 1)
            assert shown <= tape.scrollable_content_region.width, "the tape's columns are cut"

    assert snap_compare(app, terminal_size=size, run_before=check)
