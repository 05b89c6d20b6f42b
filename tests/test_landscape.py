"""Loss landscapes: the centre is the model's loss, the trajectory ends there, batched == per point."""

from __future__ import annotations

from xml.etree import ElementTree

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gradviz.landscape.compute import compute_landscape  # noqa: E402
from gradviz.landscape.directions import filter_normalised  # noqa: E402
from gradviz.landscape.grid import batched_grid, bytes_per_point, chunk_size, pointwise_grid  # noqa: E402
from gradviz.landscape.load import load_subject  # noqa: E402
from gradviz.landscape.view import landscape_map, landscape_svg  # noqa: E402
from snapshot_text import assert_text_snapshot, plain  # noqa: E402
from train_support import sample, train_here  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """The lecture network trained 30 steps with a snapshot every 10."""
    folder = tmp_path_factory.mktemp("landscape") / "run"
    train_here(folder, sample("two_layer_mlp"), snapshots=10, max_steps=30, log_every=10)
    return folder


def test_train_keeps_snapshots_every_n_steps_ending_at_the_final_parameters(run_dir):
    names = sorted(p.name for p in (run_dir / "snapshots").iterdir())
    assert names == ["step_0000000.pt", "step_0000010.pt", "step_0000020.pt", "step_0000030.pt"]
    last = torch.load(run_dir / "snapshots" / names[-1], weights_only=True)["params"]
    final = torch.load(run_dir / "final.pt", weights_only=True)["model"]
    for name, value in last.items():
        assert torch.equal(value, final[name])
    first = torch.load(run_dir / "snapshots" / names[0], weights_only=True)["params"]
    assert not torch.equal(first["fc1.weight"], final["fc1.weight"])


def own_loss(run_dir) -> float:
    """The trained model's loss on the run's training examples, computed here without gradviz's grid."""
    from gradviz.sources.spec import build_model, load_spec, make_data
    from gradviz.train.data import split_data

    spec = load_spec(sample("two_layer_mlp"))
    model = build_model(spec)
    model.load_state_dict(torch.load(run_dir / "final.pt", weights_only=True)["model"])
    x, y = make_data(spec, 0)
    split = split_data(x, y, 0.2, 0, torch.device("cpu"))
    with torch.no_grad():
        return float(spec.loss(model.eval()(split.x_train), split.y_train))


@pytest.mark.parametrize("method", ["random", "pca"])
def test_the_centre_is_the_models_loss_at_the_trained_parameters(run_dir, method):
    land = compute_landscape(load_subject(str(run_dir)), method, n=7)
    expected = own_loss(run_dir)
    assert land.centre_value == pytest.approx(expected, rel=1e-6)
    assert land.values[3, 3] == pytest.approx(expected, rel=1e-5)
    assert land.alphas[3] == land.betas[3] == 0.0


def test_the_projected_trajectory_ends_at_the_centre(run_dir):
    land = compute_landscape(load_subject(str(run_dir)), "pca", n=5)
    assert land.steps == (0, 10, 20, 30)
    np.testing.assert_allclose(land.trajectory[-1], [0.0, 0.0], atol=1e-12)
    assert np.linalg.norm(land.trajectory[0]) > 0.1  # the start is elsewhere
    assert land.explained[0] >= land.explained[1] > 0
    # The window holds the whole trajectory.
    assert np.abs(land.trajectory).max() <= land.alphas[-1]


@pytest.mark.parametrize("source, method", [("run", "pca"), ("run", "random"), ("deep_mlp", "random")])
def test_batched_grid_equals_the_per_point_loop(run_dir, source, method):
    subject = load_subject(str(run_dir) if source == "run" else sample(source), max_points=256)
    gen = torch.Generator().manual_seed(3)
    d1, d2 = filter_normalised(subject.centre, gen), filter_normalised(subject.centre, gen)
    alphas, betas = np.linspace(-1, 1, 6), np.linspace(-0.5, 1.5, 5)
    budget = 7 * bytes_per_point(subject)
    assert chunk_size(subject, budget) == 7  # 30 points in 5 chunks: the chunking is exercised
    batched = batched_grid(subject, d1, d2, alphas, betas, budget_bytes=budget)
    loop = pointwise_grid(subject, d1, d2, alphas, betas)
    np.testing.assert_allclose(batched, loop, rtol=2e-5, atol=1e-6)
    loader = pointwise_grid(subject, d1, d2, alphas[:2], betas[:2], data_batch=100)  # the reference's way
    np.testing.assert_allclose(loader, loop[:2, :2], rtol=2e-5, atol=1e-6)
    # The loop leaves the model's parameters at θ*.
    for name, p in subject.model.named_parameters():
        assert torch.equal(p, subject.centre[name])


def test_filter_normalised_directions_match_each_filters_norm():
    subject = load_subject(sample("deep_mlp"), max_points=8)
    d = filter_normalised(subject.centre, torch.Generator().manual_seed(0))
    for name, p in subject.centre.items():
        if p.dim() == 1:
            assert torch.count_nonzero(d[name]) == 0  # biases: no direction (Li et al.'s 'biasbn')
        else:
            torch.testing.assert_close(d[name].norm(dim=1), p.norm(dim=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_landscape_view_snapshot(run_dir, size):
    land = compute_landscape(load_subject(str(run_dir)), "pca", n=15)
    text = plain(landscape_map(land, *size, cells="shade"), size[0])
    assert len(text.splitlines()) <= size[1]
    assert_text_snapshot(text, f"landscape_pca_{size[0]}x{size[1]}.txt")


def test_landscape_svg_is_well_formed(run_dir):
    land = compute_landscape(load_subject(str(run_dir)), "pca", n=9)
    root = ElementTree.fromstring(landscape_svg(land))
    assert root.tag.endswith("svg")
    assert len([e for e in root.iter() if e.tag.endswith("polyline")]) == 2  # the trajectory (halo + line)


def run_cli(capsys, *args):
    """`gradviz landscape ARGS` in this process (torch is already imported): (code, out, err)."""
    from gradviz.cli import main

    code = main(["landscape", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_the_numbers_when_piped_and_writes_svg(run_dir, tmp_path, capsys):
    code, out, err = run_cli(capsys, str(run_dir), "--grid", "5", "-o", str(tmp_path / "l.svg"))
    assert code == 0, err
    assert "loss at θ*:" in out and "projected trajectory" in out
    assert (tmp_path / "l.svg").read_text().startswith("<svg")


@pytest.mark.parametrize("args, message", [
    (("nowhere",), "give a run directory"),
    ((sample("two_layer_mlp"), "--directions", "pca"), "need a trajectory of at least 3 snapshots"),
    ((sample("two_layer_mlp"), "--grid", "1"), "--grid must lie in 3..201"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, message, capsys):
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_model_vmap_cannot_batch_falls_back_to_the_loop(tmp_path):
    from train_support import write_spec

    spec = write_spec(tmp_path, """
import torch
from torch import nn

class ItemNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)
    def forward(self, x):
        out = self.fc(x)
        if out.mean().item() > 100:  # data-dependent control flow: vmap refuses .item()
            out = out * 0
        return out

def build_model():
    return ItemNet()

def loss(output, target):
    return ((output - target) ** 2).mean()

def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 2, generator=g)
    return x, x.sum(dim=1, keepdim=True)
""")
    subject = load_subject(spec)
    land = compute_landscape(subject, "random", n=3)
    assert "evaluated point by point" in land.note
    assert land.values[1, 1] == pytest.approx(land.centre_value)


def test_snapshots_must_be_a_positive_number_of_steps(capsys):
    from gradviz.cli import main

    assert main(["train", sample("two_layer_mlp"), "--snapshots", "0", "--no-tui"]) == 2
    err = capsys.readouterr().err
    assert "--snapshots must be a positive integer, got 0" in err and len(err.strip().splitlines()) == 1


def test_the_text_states_the_span_the_maps_axes_show(run_dir):
    """The axes run over the cells (each centred on a grid point), the grid points half a cell
    inside: the text gave the grid points (±9.401) where the axes said ±9.79. It gives both."""
    from gradviz.landscape.view import landscape_summary

    land = compute_landscape(load_subject(str(run_dir)), "pca", n=15)
    axis = plain(landscape_map(land, 80, 24, cells="shade"), 80).splitlines()[-4].split()
    left, right = float(axis[0]), float(axis[-1])  # the x axis's end labels
    summary = landscape_summary(land)
    half_cell = (land.alphas[-1] - land.alphas[0]) / (len(land.alphas) - 1) / 2
    assert f"in [{land.alphas[0]:.4g}, {land.alphas[-1]:.4g}]" in summary
    span = f"span [{land.alphas[0] - half_cell:.4g}, {land.alphas[-1] + half_cell:.4g}]"
    assert span in summary
    assert left == pytest.approx(land.alphas[0] - half_cell, rel=1e-2)
    assert right == pytest.approx(land.alphas[-1] + half_cell, rel=1e-2)
