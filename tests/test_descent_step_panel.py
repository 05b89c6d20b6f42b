"""The descent side panel shows the step each optimizer really takes: Δθ = θ_{k+1} − θ_k,
which is −η∇f only for plain gradient descent (momentum and Adam move otherwise)."""

from __future__ import annotations

import numpy as np
import pytest

from gradviz.descent.objective import parse_objective
from gradviz.descent.runs import run_descent

pytest.importorskip("textual")
from gradviz.tui.descent import step_text  # noqa: E402


def _pair(line: str) -> np.ndarray:
    inside = line[line.index("(") + 1:line.index(")")]
    return np.array([float(x) for x in inside.split(",")])


@pytest.mark.parametrize("optimizer", ["gd", "sgd", "momentum", "adam"])
def test_the_panel_shows_the_step_taken(optimizer):
    run = run_descent(parse_objective("x**2 + 3*y**2"), [np.array([2.0, 1.0])], (optimizer,), (0.05,), 20)
    path = run.paths[0]
    for k in (1, 5):
        lines = step_text(run, 0, k).plain.splitlines()
        taken = path.steps[k + 1].theta - path.steps[k].theta  # where it really went next
        if optimizer in ("gd", "sgd"):  # one registry entry, two names
            eta = next(line for line in lines if line.startswith("η∇f"))
            np.testing.assert_allclose(-_pair(eta), taken, rtol=1e-4, atol=1e-9)  # GD's step is −η∇f
            continue
        assert not any(line.startswith("η∇f") for line in lines)  # not the step momentum/Adam take
        step_line = next(line for line in lines if line.startswith("Δθ"))
        np.testing.assert_allclose(_pair(step_line), taken, rtol=1e-4, atol=1e-9)
        assert f"(the step {optimizer} takes)" in lines
        assert not np.allclose(-0.05 * path.steps[k].grad, taken, rtol=1e-3)
