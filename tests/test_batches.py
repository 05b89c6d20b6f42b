"""SGD vs mini-batch vs full batch on least squares: gradients, updates per epoch, noise, the view."""

from __future__ import annotations

from xml.etree import ElementTree

import numpy as np
import pytest

from gradviz.cli import build_parser, main
from gradviz.descent.batches import batch_path, gradient, least_squares_solution, loss, make_points
from snapshot_text import assert_text_snapshot, plain


def test_loss_and_gradient_match_torch_autograd():
    torch = pytest.importorskip("torch")
    points = make_points(20, seed=4)
    theta = np.array([0.3, -0.7])
    idx = np.array([1, 5, 7, 19])
    w = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    x, y = torch.tensor(points.x[idx]), torch.tensor(points.y[idx])
    torch.nn.functional.mse_loss(w[0] * x + w[1], y).backward()
    np.testing.assert_allclose(gradient(points.x[idx], points.y[idx], theta), w.grad.numpy(), rtol=1e-12)
    full = torch.nn.functional.mse_loss(w.detach()[0] * torch.tensor(points.x) + w.detach()[1], torch.tensor(points.y))
    assert float(loss(points, theta[0], theta[1])) == pytest.approx(full.item(), rel=1e-12)


def test_updates_per_epoch_are_n_over_b_rounded_up():
    points = make_points(64)
    start = np.array([-2.0, 2.5])
    for b, per_epoch in ((1, 64), (8, 8), (10, 7), (64, 1)):
        path = batch_path(points, b, 3, 0.05, start)
        assert path.updates_per_epoch == per_epoch
        assert len(path.thetas) == 1 + 3 * per_epoch
        assert path.epoch_ends == (per_epoch, 2 * per_epoch, 3 * per_epoch)


def test_full_batch_is_plain_gradient_descent_on_the_full_loss():
    points = make_points(32)
    theta = np.array([1.0, 1.0])
    path = batch_path(points, 32, 5, 0.1, theta)
    for k in range(5):
        theta = theta - 0.1 * gradient(points.x, points.y, theta)
        np.testing.assert_allclose(path.thetas[k + 1], theta, rtol=1e-12)


def test_small_batches_are_noisier_and_all_approach_the_minimum():
    points = make_points(64)
    best = least_squares_solution(points)
    start = np.array([-2.0, 2.5])
    sgd = batch_path(points, 1, 30, 0.02, start)
    full = batch_path(points, 64, 30 * 64, 0.02, start)  # the same number of updates
    assert np.linalg.norm(full.thetas[-1] - best) < 1e-6
    assert 1e-4 < np.linalg.norm(sgd.thetas[-1] - best) < 0.3  # near, but still jittering
    # Noise: SGD's updates turn direction far more than full-batch GD's.
    def turning(thetas):
        steps = np.diff(thetas, axis=0)[100:300]
        cos = np.sum(steps[1:] * steps[:-1], axis=1) / (np.linalg.norm(steps[1:], axis=1) * np.linalg.norm(steps[:-1], axis=1))
        return float(np.mean(cos))
    assert turning(sgd.thetas) < 0.5 < turning(full.thetas)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_batches_view_snapshot(size):
    from gradviz.commands.batches import render

    text = plain(render(build_parser().parse_args(["batches"]), *size, "shade"), size[0])
    assert len(text.splitlines()) <= size[1]
    assert "B=1  64 updates/epoch" in text and "B=64  1 update/epoch" in text
    assert_text_snapshot(text, f"batches_{size[0]}x{size[1]}.txt")


def test_cli_summary_and_svg(tmp_path, capsys):
    assert main(["batches", "--batch-sizes", "1,16,N", "-o", str(tmp_path / "b.svg")]) == 0
    out = capsys.readouterr().out
    assert "B=1: 64 updates per epoch" in out and "B=16: 4 updates per epoch" in out and "B=64: 1 update per epoch" in out
    root = ElementTree.fromstring((tmp_path / "b.svg").read_text())
    assert len([e for e in root.iter() if e.tag.endswith("polyline")]) == 6


@pytest.mark.parametrize("args, message", [
    (["--batch-sizes", "0"], "batch size 0 must lie in 1..64"),
    (["--batch-sizes", "x"], "'x' is not a whole number or N"),
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--from", "w=1"], "--from w=1: give both inputs"),
    (["-o", "out.pdf"], "the map is written as .svg, .png or .gif, not .pdf"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(["batches", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
