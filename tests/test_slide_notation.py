"""The slides' notation in the trace text: targets are data, adjoint sums under each
output's name, the samples as the slides write them, dropout's 1/(1−p) and J in model
reports. Numbers are checked against the trace (and torch where a formula is new)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradviz.cli import main
from gradviz.commands.common import read_source
from gradviz.sources.bindings import parse_at, parse_shapes
from gradviz.sources.expr import trace_expression
from gradviz.views.trace_report import trace_report
from snapshot_text import plain  # noqa: E402  (tests/ is on the path, as for the other text views)

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def sample_trace(name: str, seed: int = 0):
    source = read_source(f"@{SAMPLES / name}")
    return trace_expression(source.text, parse_at(source.at), parse_shapes(source.shape), seed)


def test_a_target_has_no_adjoint_column_no_gradient_and_no_tangent_term() -> None:
    trace = sample_trace("two_layer_network.expr")
    text = plain(trace_report(trace, wrt="x"), 200)
    row = next(line for line in text.splitlines() if line.startswith("y "))
    assert "target (data)" in row and [cell.strip() for cell in row.split("│")[3:]] == ["data", "data"]
    gradients = text[text.index("gradients"):text.index("passes")]
    assert "∂·/∂x" in gradients and "∂·/∂W1" in gradients and "∂·/∂y" not in gradients
    assert "y'" not in text and "y (target (data))" in text  # the tangent chain has no y' term; the outline says data
    loss = next(line for line in text.splitlines() if line.startswith("J' = "))
    assert loss.endswith(f"= {float(trace.tangents['x'][trace.graph.outputs['J']]):.4f}".replace("= -", "= −"))


def test_each_outputs_adjoint_sums_stand_under_its_name() -> None:
    trace = sample_trace("jacobian.expr")
    text = plain(trace_report(trace), 120)
    sums = text[text.index("adjoints as sums"):text.index("Jacobian")].splitlines()
    assert sums[1].strip() == "of f (v̄ = ∂f/∂v):"
    # x̄ of f = v̄1·y + v̄2·cos(x) = y + cos(x) at x = 0.5, y = 2: the terms and the total, true
    assert sums[2].strip() == f"x̄ = v̄1·y + v̄2·cos(x) = 2.0000 + {np.cos(0.5):.4f} = {2 + np.cos(0.5):.4f}"
    assert float(trace.gradient("f", "x")) == pytest.approx(2 + np.cos(0.5), rel=1e-15)
    assert sums[3].strip() == "of g: every adjoint has one term"


def test_regularized_sample_is_the_slides_j_r() -> None:
    """J_R = J + λ‖θ‖₂, ‖θ‖₂ the sum of the parameters' Euclidean norms (the slide), not squared."""
    text = (SAMPLES / "regularized.expr").read_text()
    assert "J_R = J + 0.01 * (norm(W1) + norm(w2))" in text and "J = mse(hidden @ w2, y)" in text
    trace = sample_trace("regularized.expr")
    value = lambda name: np.asarray(trace.values[trace.graph.find(name).id], dtype=float)
    lam_theta = 0.01 * (np.linalg.norm(value("W1")) + np.linalg.norm(value("w2")))
    assert float(value("J_R")) == pytest.approx(float(value("J")) + lam_theta, rel=1e-14)
    # ∂(λ‖W1‖₂)/∂W1 = λ·W1/‖W1‖: W̄1 minus the data term is exactly that
    torch = pytest.importorskip("torch")
    W1 = torch.tensor(value("W1"), requires_grad=True)
    (0.01 * torch.linalg.norm(W1)).backward()
    penalty_term = [v for (child, _), v in trace.edge_terms("J_R", trace.graph.find("W1").id)
                    if trace.graph.nodes[child].op == "norm"]
    np.testing.assert_allclose(penalty_term[0], W1.grad.numpy(), rtol=1e-12)


def test_model_report_writes_target_data_dropout_scale_and_j(capsys) -> None:
    pytest.importorskip("torch")
    from gradviz.sources.model import trace_spec
    from gradviz.views.model_report import model_report

    trace = trace_spec(str(SAMPLES / "deep_mlp.py"), batch_size=8, seed=0)
    text = plain(model_report(trace), 200)
    assert next(line for line in text.splitlines() if line.startswith("y ")).split("│")[1].strip() == "target (data)"
    assert "Dropout(p=0.1)(relu) = relu·mask/(1−0.1)" in text
    # the 1/(1−p) written is the one in the numbers: kept units are relu/(1−p)
    drop, relu = (np.asarray(trace.values[trace.graph.find(n).id]) for n in ("drop1", "relu"))
    kept = drop != 0
    np.testing.assert_allclose(drop[kept], relu[kept] / (1 - 0.1), rtol=1e-6)
    loss = float(np.asarray(trace.values[trace.graph.outputs["loss"]]))
    assert f"objective J = loss = {loss:.4f} over the batch of 8" in text


def test_cli_trace_of_the_network_names_j(capsys) -> None:
    assert main(["trace", f"@{SAMPLES / 'two_layer_network.expr'}", "--layers"]) == 0
    out = capsys.readouterr().out
    assert "backprop by layers · J = bce(" in out and "J = 1/B·Σ L, the mean over B = 4" in out


def test_objective_line_is_the_same_with_keep_summaries(capsys) -> None:
    """A trace that keeps only statistics still writes J's value (a scalar's mean is itself)."""
    pytest.importorskip("torch")
    spec = str(SAMPLES / "two_layer_mlp.py")
    lines = []
    for extra in ([], ["--keep", "summaries"]):
        assert main(["trace", spec, *extra]) == 0
        lines.append(next(line for line in capsys.readouterr().out.splitlines() if line.startswith("objective J")))
    assert lines[0] == lines[1] and "objective J = loss = " in lines[0]
