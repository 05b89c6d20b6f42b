"""The lecture walked section by section: each view writes the slides' symbols (J, δ, z, lay,
θ, η, λ‖θ‖₂, 1/(1−p)) and the slides' numbers, each number recomputed here independently."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from gradviz.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
sys.path.insert(0, str(Path(__file__).parent))


def run(capsys, *args: str, code: int = 0) -> str:
    assert main(list(args)) == code
    return capsys.readouterr().out


def lecture_numbers() -> dict[str, float]:
    """f(x1, x2) = (e^(x1/x2) + x1/x2)·(x1/x2 − ln x2) at (0.5, 1), by hand as the slides do."""
    x1, x2 = 0.5, 1.0
    v1 = x1 / x2
    v2 = math.exp(v1)
    v3 = v2 + v1
    v4 = math.log(x2)
    v5 = v1 - v4
    f = v3 * v5
    df_dx1 = (v2 / x2 + 1 / x2) * v5 + v3 * (1 / x2)  # v3'·v5 + v3·v5' with x1' = 1
    return {"v1": v1, "v2": v2, "v3": v3, "v4": v4, "v5": v5, "f": f, "df_dx1": df_dx1,
            "v1bar_terms": (v5 * v2, v5, v3)}  # v̄2·e^{v1}, v̄3, v̄5 with v̄2 = v̄3 = v5, v̄5 = v3


def test_gradient_descent_writes_theta_eta_and_the_updates(capsys) -> None:
    out = run(capsys, "descent", "x**2 + 10*y**2", "--from", "x=-4,y=1.5", "--lr", "0.09", "--steps", "2")
    assert "update (gd): θ ← θ − η∇f(θ)" in out and "gd η=0.09" in out
    theta = np.array([-4.0, 1.5])
    rows = [line.split() for line in out.splitlines() if re.match(r"^\d+\s", line)]
    for k, row in enumerate(rows):
        assert [float(row[1]), float(row[2])] == pytest.approx(theta.tolist(), rel=1e-5)
        theta = theta - 0.09 * np.array([2 * theta[0], 20 * theta[1]])  # θ − η∇f(θ)


def test_convexity_two_starts_end_in_two_minima_of_a_non_convex_f(capsys) -> None:
    out = run(capsys, "descent", "(x**2 - 1)**2 + y**2", "--from", "x=0.5,y=1", "--from", "x=-0.2,y=1",
              "--lr", "0.05", "--steps", "200")
    ends = [float(m) for m in re.findall(r"at \((-?[\d.e-]+), ", out)]
    assert ends[:2] == pytest.approx([1.0, -1.0], abs=1e-3)  # f is not convex: GD finds the minimum nearest


def test_batches_write_the_minibatch_update_and_which_minimum(capsys) -> None:
    out = run(capsys, "batches", "--model")
    assert "θ ← θ − η·∇L_B(θ)" in out and "η=0.2" in out
    lines = {line.split(":")[0]: line for line in out.splitlines() if line.startswith("B=")}
    assert "global minimum's basin" in lines["B=1"] and "poor local minimum's basin" in lines["B=64"]


def test_layers_write_j_delta_z_lay_and_their_numbers(capsys) -> None:
    from gradviz.commands.common import read_source
    from gradviz.sources.bindings import parse_at, parse_shapes
    from gradviz.sources.expr import trace_expression

    out = run(capsys, "trace", f"@{SAMPLES / 'backprop.expr'}", "--layers")
    for symbol in ("J = L", "δ2 = ∂J/∂lay2", "δ1 = ∂J/∂lay1", "z2 = lay1·W2 + b2", "z1 = x·W1 + b1", "lay2 = σ(z2)",
                   "∂J/∂W1 = δ1·∂lay1/∂W1 = xᵀ·(δ1 ⊙ lay1(1 − lay1))", "∂lay2/∂lay1 = lay2(1 − lay2)·W2ᵀ"):
        assert symbol in out, symbol
    source = read_source(f"@{SAMPLES / 'backprop.expr'}")
    trace = trace_expression(source.text, parse_at(source.at), parse_shapes(source.shape), 0)
    value = lambda name: np.asarray(trace.values[trace.graph.find(name).id], dtype=float)  # noqa: E731
    x, W1, b1, W2, b2, y = (value(n) for n in ("x", "W1", "b1", "W2", "b2", "y"))
    lay1 = 1 / (1 + np.exp(-(x @ W1 + b1)))
    h = 1 / (1 + np.exp(-(lay1 @ W2 + b2)))
    J = float(-(y * np.log(h) + (1 - y) * np.log(1 - h)).mean())
    delta2 = float(((h - y) / (h * (1 - h))).ravel()[0])  # ∂J/∂h = ∂J/∂lay2 (one example)
    assert f"= {J:.4f}" in out and f"= {delta2:.4f}" in out
    delta1 = ((h - y) / (h * (1 - h)) * h * (1 - h)) @ W2.T  # δ2·∂lay2/∂lay1
    assert all(f"{d:.4f}" in out for d in delta1.ravel())


def test_methods_put_the_three_ways_side_by_side(capsys) -> None:
    out = run(capsys, "methods", f"@{SAMPLES / 'lecture.expr'}")
    numbers = lecture_numbers()
    assert f"{numbers['df_dx1']:.11f}" in out  # AD and SymPy to every printed digit
    assert "forward differences" in out and "symbolic (SymPy)" in out and "automatic (AD)" in out


def test_forward_and_reverse_mode_give_the_slides_numbers(capsys) -> None:
    out = run(capsys, "trace", f"@{SAMPLES / 'lecture.expr'}")
    n = lecture_numbers()
    for label in ("v1", "v2", "v3", "v5", "f"):
        assert re.search(rf"^{label}\s.*│\s+{n[label]:.4f}\s", out, re.M), label
    assert f"f' = v5·v3' + v3·v5' = {n['df_dx1']:.4f}" in out  # 3.4731, where the slide slips to 3.46
    terms = " + ".join(f"{t:.4f}" for t in n["v1bar_terms"])
    assert f"v̄1 = v̄2·e^{{v1}} + v̄3 + v̄5 = {terms} = {sum(n['v1bar_terms']):.4f}" in out
    assert "forward mode 2 (one per input element), reverse mode 1" in " ".join(out.split())


def test_the_snippet_prints_the_slides_gradients(capsys) -> None:
    pytest.importorskip("torch")
    out = run(capsys, "trace", str(SAMPLES / "lecture_snippet.py"), "--run-to-end")  # its prints follow its backward
    n = lecture_numbers()
    assert f"tensor({n['df_dx1']:.4f})" in out and "tensor(-3.8853)" in out
    assert f"= {n['df_dx1']:.4f}" in out


def test_accumulation_and_l2_updates_write_theta_eta_lambda(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from train_support import LINEAR_SPEC, train_here, write_spec

    from gradviz.monitor.state import RunView

    spec = write_spec(tmp_path, LINEAR_SPEC)
    train_here(tmp_path / "acc", spec, batch_size=16, accum=4, lr=0.05, max_steps=2, val_fraction=0.0)
    train_here(tmp_path / "l2", spec, batch_size=16, lr=0.05, l2=0.001, l2_form="norm", max_steps=2, val_fraction=0.0)
    views = {name: RunView(tmp_path / name) for name in ("acc", "l2")}
    for view in views.values():
        view.poll()
    assert "θ ← θ − η/4·Σ∇L_B_P" in views["acc"].accumulation()
    assert "θ ← θ − η·∇(L_B + λ·Σ‖θ‖₂), η = 0.05, λ = 0.001" in views["l2"].accumulation()


def test_l2_and_dropout_in_the_regularized_sample(capsys) -> None:
    out = run(capsys, "trace", f"@{SAMPLES / 'regularized.expr'}")
    assert "J_R = J + v7" in out and "v7 = 0.01·v6" in out and "v4 = ‖W1‖" in out  # J_R = J + λ‖θ‖₂
    assert "hidden' = (mask/(1−0.5))·v2'" in out  # kept units scaled by 1/(1−p), p written


def test_dropout_in_a_model_writes_its_scale(capsys) -> None:
    pytest.importorskip("torch")
    out = run(capsys, "trace", str(SAMPLES / "deep_mlp.py"))
    assert "relu·mask/(1−0.1)" in " ".join(out.split()).replace("relu· mask", "relu·mask")
