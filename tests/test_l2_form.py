"""L2 both ways: weight decay's λ·Σ‖θ‖² and the lecture's λ·Σ‖θ‖₂ (`--l2-form norm`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import torch

from gradviz.cli import main
from gradviz.monitor.app import MonitorApp
from gradviz.monitor.widgets import LossPanel
from gradviz.monitor.plain import summary_line
from gradviz.monitor.state import RunView
from gradviz.penalty import penalty_formula
from gradviz.rundir.files import read_json, write_json_atomic
from gradviz.train.loop import l2_penalty
from monitor_support import make_run
from test_monitor_app import shown
from train_support import records, sample, train_here


def test_norm_form_value_and_gradient_match_autograd_of_the_slides_formula() -> None:
    torch.manual_seed(1)
    params = [torch.randn(4, 3, requires_grad=True), torch.randn(3, requires_grad=True)]
    lam = 0.02
    penalty = l2_penalty(params, lam, "norm")
    # The oracle: the slide's formula spelled out, differentiated by autograd.
    mirror = [p.detach().clone().requires_grad_(True) for p in params]
    expected = lam * sum(torch.sqrt((m * m).sum()) for m in mirror)
    torch.testing.assert_close(penalty, expected.detach(), rtol=1e-6, atol=0)
    penalty.backward()
    expected.backward()
    for p, m in zip(params, mirror):
        torch.testing.assert_close(p.grad, m.grad)
        torch.testing.assert_close(p.grad, lam * p.detach() / p.detach().norm())  # λθ/‖θ‖


def test_norm_form_gives_zero_gradient_to_an_all_zero_tensor() -> None:
    zero = torch.zeros(5, requires_grad=True)
    l2_penalty([zero, torch.ones(2, requires_grad=True)], 0.1, "norm").backward()
    assert torch.equal(zero.grad, torch.zeros(5))


def test_logged_norm_penalty_equals_the_formula_on_the_checkpoint(tmp_path: Path) -> None:
    """The penalty logged at step k+1 is computed on the weights after k updates: the
    final.pt of the same run stopped after k steps (same seed, so the same weights)."""
    lam, k = 0.03, 3
    common = dict(l2=lam, l2_form="norm", log_every=1, val_fraction=0.0, optimizer="sgd", lr=0.5)
    train_here(tmp_path / "k", sample("two_layer_mlp"), max_steps=k, **common)
    train_here(tmp_path / "k1", sample("two_layer_mlp"), max_steps=k + 1, **common)
    weights = torch.load(tmp_path / "k" / "final.pt", weights_only=False)["model"]
    recomputed = lam * sum(float(torch.linalg.vector_norm(w.double())) for w in weights.values())
    squared = lam * sum(float((w.double() ** 2).sum()) for w in weights.values())
    logged = records(tmp_path / "k1")[-1]
    assert logged["step"] == k + 1
    assert logged["penalty"] == pytest.approx(recomputed, rel=1e-6)
    assert abs(recomputed - squared) > 1e-3 * recomputed  # the two forms really differ here
    assert logged["total"] == pytest.approx(logged["loss"] + logged["penalty"])
    view = RunView(tmp_path / "k1")
    view.poll()
    assert "objective J + λ·Σ‖θ‖₂ (λ = 0.03)" in summary_line(view)


def test_penalty_formula_text() -> None:
    assert penalty_formula(0.001, "squared") == "λ·Σ‖θ‖² (λ = 0.001)"
    assert penalty_formula(0.5, "norm") == "λ·Σ‖θ‖₂ (λ = 0.5)"
    assert penalty_formula(0.5, None) == "λ·Σ‖θ‖² (λ = 0.5)"
    assert penalty_formula(0.0, "norm") is None


def test_unknown_l2_form_is_one_line_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", sample("two_layer_mlp"), "--l2", "0.1", "--l2-form", "cubed"])
    assert exc.value.code == 2
    assert "--l2-form" in capsys.readouterr().err


def test_dashboard_names_the_penalty_by_the_formula_in_use(tmp_path: Path) -> None:
    paths = make_run(tmp_path / "run", steps=20)
    write_json_atomic(paths.meta, {**read_json(paths.meta), "l2": 0.01, "l2_form": "norm"})
    lines = paths.metrics.read_text().splitlines()
    bumped = [json.dumps({**json.loads(line), "penalty": 0.02}) for line in lines]
    paths.metrics.write_text("\n".join(bumped) + "\n")

    async def drive() -> str:
        app = MonitorApp(paths.root, poll_seconds=0.1)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.5)
            return shown(app.screen.query_one(LossPanel))

    text = asyncio.run(drive())
    assert "penalty λ·Σ‖θ‖₂ 0.02" in text
