"""The expression `bce` is torch's binary_cross_entropy, clamp of each log at −100 included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradviz.sources.expr import trace_expression


def _torch(expression: str, at: dict, dtype: torch.dtype):
    leaves = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in at.items()}
    p = torch.sigmoid(leaves["z"]) if "z" in leaves else leaves["p"]
    loss = torch.nn.functional.binary_cross_entropy(p, leaves["y"])
    loss.backward()
    return loss.item(), {k: t.grad.numpy() for k, t in leaves.items()}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("expression, at", [
    ("bce(sigmoid(z), y)", {"z": [40.0, -40.0], "y": [0.0, 1.0]}),   # saturated: a log is clamped
    ("bce(sigmoid(z), y)", {"z": [20.0, -3.0], "y": [0.0, 1.0]}),    # float32: sigmoid(20) is exactly 1
    ("bce(sigmoid(z), y)", {"z": [0.3, -1.2, 2.0], "y": [1.0, 0.0, 0.5]}),  # ordinary values
    ("bce(p, y)", {"p": [0.0, 1.0], "y": [0.0, 1.0]}),              # exact 0 and 1: loss 0
])
def test_bce_follows_torch_values_and_derivatives(expression: str, at: dict, dtype: str) -> None:
    trace = trace_expression(expression, {k: np.array(v) for k, v in at.items()}, dtype=dtype)
    loss, grads = _torch(expression, at, getattr(torch, dtype))
    out = trace.graph.outputs[next(iter(trace.graph.outputs))]
    rtol = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(trace.values[out], loss, rtol=rtol)
    assert np.isfinite(trace.values[out])
    name = next(iter(trace.graph.outputs))
    for label, expected in grads.items():
        # torch's ∂/∂y is −logit(p): ±inf where p is exactly 0 or 1, and gradviz says the same.
        np.testing.assert_allclose(trace.gradient(name, label), expected, rtol=rtol, atol=0)


def test_check_json_of_an_expression_has_the_check(capsys) -> None:
    import json

    from gradviz.cli import main

    assert main(["trace", "bce(sigmoid(z), y)", "--at", "z=3,y=0", "--check", "--json"]) == 0
    check = json.loads(capsys.readouterr().out)["check"]
    assert check["ok"] is True and check["errors"]["torch.autograd"] < 1e-12
