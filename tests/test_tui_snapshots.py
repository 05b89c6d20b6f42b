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
