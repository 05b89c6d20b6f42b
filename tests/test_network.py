"""The lecture's two-layer network as an expression, against torch.autograd (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from gradviz.sources.bindings import parse_shapes
from gradviz.sources.expr import trace_expression

torch = pytest.importorskip("torch")

NETWORK = "bce(sigmoid(sigmoid(x @ W1 + b1) @ W2 + b2), y)"


def test_two_layer_sigmoid_network_gradients_match_torch():
    shapes = parse_shapes(["x=6x2,W1=2x4,b1=4,W2=4x1,b2=1"])
    y = np.array([[0.0], [1.0], [1.0], [0.0], [1.0], [0.0]])
    trace = trace_expression(NETWORK, at={"y": y}, shapes=shapes, seed=3)
    leaves = {label: torch.tensor(trace.values[trace.graph.find(label).id], requires_grad=True)
              for label in ("x", "W1", "b1", "W2", "b2")}
    h = torch.sigmoid(torch.sigmoid(leaves["x"] @ leaves["W1"] + leaves["b1"]) @ leaves["W2"] + leaves["b2"])
    loss = torch.nn.functional.binary_cross_entropy(h, torch.tensor(y))
    loss.backward()
    assert float(trace.values[trace.graph.outputs["f"]]) == pytest.approx(loss.item(), rel=1e-12)
    for label in ("W1", "b1", "W2", "b2", "x"):
        np.testing.assert_allclose(trace.gradient("f", label), leaves[label].grad.numpy(), rtol=1e-6, atol=1e-12)
    # Contributions into every node sum to its adjoint.
    for node in trace.graph.nodes:
        terms = [v for _, v in trace.edge_terms("f", node.id) if v is not None]
        if terms and node.op != "const":
            np.testing.assert_allclose(sum(terms), trace.adjoints["f"][node.id], rtol=1e-12)


def test_forward_mode_needs_one_pass_per_parameter_element():
    shapes = parse_shapes(["x=4x2,W1=2x3,b1=3,W2=3x1,b2=1"])
    trace = trace_expression(NETWORK, at={"y": [[0.0], [1.0], [1.0], [0.0]]}, shapes=shapes)
    # x (8), W1 (6), b1 (3), W2 (3), b2 (1) are differentiated; y (4) is the loss's target: data
    assert trace.pass_counts() == {"forward_mode": 8 + 6 + 3 + 3 + 1, "reverse_mode": 1}
