"""`batches --model`: the non-convex y ≈ sin(w·x + b), where from one start B = 1 ends in the
global minimum and B = N in a poor local one. Gradient against torch, verdicts against the loss."""

from __future__ import annotations

import numpy as np
import pytest

from gradviz.cli import main
from gradviz.descent.batches import batch_path
from gradviz.descent.problems import PROBLEMS, global_minimum, make_sine_points, polish, sine_gradient, sine_loss, verdict

SINE = PROBLEMS["sine"]


def test_sine_loss_and_gradient_match_torch_autograd() -> None:
    torch = pytest.importorskip("torch")
    points = make_sine_points(20, seed=4)
    theta, idx = np.array([0.7, -0.3]), np.array([0, 3, 8, 19])
    t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    x, y = torch.tensor(points.x[idx]), torch.tensor(points.y[idx])
    torch.mean((torch.sin(t[0] * x + t[1]) - y) ** 2).backward()
    np.testing.assert_allclose(sine_gradient(points.x[idx], points.y[idx], theta), t.grad.numpy(), rtol=1e-12)
    full = torch.mean((torch.sin(t.detach()[0] * torch.tensor(points.x) + t.detach()[1]) - torch.tensor(points.y)) ** 2)
    assert float(sine_loss(points, theta[0], theta[1])) == pytest.approx(full.item(), rel=1e-12)


def test_b1_and_full_batch_end_in_different_minima_from_one_start() -> None:
    points = make_sine_points(64, seed=0)
    start = np.array([0.5, 0.0])
    best = global_minimum(SINE, points)
    assert best[0] == pytest.approx(3.0, abs=0.1) and best[1] == pytest.approx(0.5, abs=0.1)  # the data's w, b
    sgd = batch_path(points, 1, SINE.epochs, SINE.lr, start, 0, sine_gradient)
    full = batch_path(points, 64, SINE.epochs, SINE.lr, start, 0, sine_gradient)
    sgd_bottom, full_bottom = polish(SINE, points, sgd.thetas[-1]), polish(SINE, points, full.thetas[-1])
    low = float(sine_loss(points, *best))
    assert float(sine_loss(points, *sgd_bottom)) == pytest.approx(low, rel=1e-6)
    poor = float(sine_loss(points, *full_bottom))
    assert poor > 50 * low  # a genuinely poorer minimum: a flat fit
    assert np.linalg.norm(sine_gradient(points.x, points.y, full_bottom)) < 1e-8  # and a minimum, not a slope
    assert verdict(SINE, points, sgd.thetas[-1], best).startswith("in the global minimum's basin")
    assert verdict(SINE, points, full.thetas[-1], best).startswith(f"in a poor local minimum's basin (its bottom: L = {poor:.3g}")


def test_cli_prints_the_verdicts_and_is_seeded(capsys) -> None:
    assert main(["batches", "--model"]) == 0
    first = capsys.readouterr().out
    assert "L(w,b) of y≈sin(w·x+b) on all N=64 points; η=0.2, 5 epochs" in first
    lines = {line.split(":")[0]: line for line in first.splitlines() if line.startswith("B=")}
    assert "ends in the global minimum's basin" in lines["B=1"]
    assert "ends in a poor local minimum's basin" in lines["B=64"]
    assert main(["batches", "--model"]) == 0
    assert capsys.readouterr().out == first
    # the line stays convex: one minimum, no verdicts
    assert main(["batches"]) == 0
    assert "basin" not in capsys.readouterr().out
