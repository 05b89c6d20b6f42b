"""Gradient-value histograms: fixed log-spaced bins, counted on the device, equal to
torch.histogram of the same gradients."""

from __future__ import annotations

from pathlib import Path

import torch

from gradviz.rundir.jsonl import read_jsonl
from gradviz.sources.spec import build_model, load_spec
from gradviz.train.data import epoch_batches, split_data
from gradviz.train.histograms import GradHistograms, bin_edges
from train_support import LINEAR_SPEC, records, train_here, write_spec


def reference(grads: list[torch.Tensor], edges: torch.Tensor) -> list[int]:
    """torch.histogram of the values clamped into the edges' range (the end bins take the rest)."""
    flat = torch.cat([g.reshape(-1) for g in grads]).double()
    return torch.histogram(flat.clamp(edges[0].item(), edges[-1].item()), bins=edges)[0].long().tolist()


def test_counts_equal_torch_histogram_including_the_end_bins() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.nn.Parameter(torch.zeros(30, 40, dtype=torch.float64))
    b = torch.nn.Parameter(torch.zeros(30, dtype=torch.float64))
    a.grad = torch.randn(30, 40, generator=g, dtype=torch.float64) * torch.logspace(-10, 3, 40, dtype=torch.float64)
    b.grad = torch.tensor([0.0, 1e-8, -1e-8, 100.0, -100.0, 1e5, -1e5] + [0.5] * 23, dtype=torch.float64)
    hist = GradHistograms([0, 1], 2, torch.device("cpu"))
    counts = hist.counts([a, b])
    edges = bin_edges()
    assert counts[0].tolist() == reference([a.grad], edges)
    assert counts[1].tolist() == reference([b.grad], edges)
    assert counts[1, -1] == 2 and counts[1, 0] == 2  # 100 and 1e5 in the top bin, their negatives in the bottom
    assert counts.sum() == a.numel() + b.numel()


def test_run_histograms_match_torch_histogram_of_the_first_steps_gradients(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path, LINEAR_SPEC)
    train_here(tmp_path / "run", spec_path, max_steps=1, seed=4, val_fraction=0.0)
    [line] = read_jsonl(tmp_path / "run" / "histograms.jsonl")
    assert line["step"] == 1 and line["kind"] == "grad"
    # The same step by hand: same initial weights, same first batch, one backward.
    spec = load_spec(spec_path)
    x, y = spec.make_data(4)
    data = split_data(x, y, 0.0, 4, torch.device("cpu"))
    [index] = epoch_batches(len(data.x_train), 8, 1, 4, 0, 1, 1, torch.device("cpu"))[0]
    torch.manual_seed(4)
    model = build_model(spec)
    spec.loss(model(data.x_train[index]), data.y_train[index]).backward()
    edges = torch.tensor(line["edges"], dtype=torch.float64)
    for layer in ("0", "2"):
        grads = [p.grad for name, p in model.named_parameters() if name.startswith(layer + ".")]
        flat = torch.cat([g.reshape(-1) for g in grads])
        expected = torch.histogram(flat.clamp(edges[0].item(), edges[-1].item()), bins=edges.float())[0]
        assert line["layers"][layer] == expected.long().tolist()
    norm = records(tmp_path / "run")[0]["grad_norm"]["0"]
    grads0 = torch.cat([p.grad.reshape(-1) for n, p in model.named_parameters() if n.startswith("0.")])
    assert abs(norm - grads0.norm().item()) < 1e-6 * max(1.0, norm)  # the same gradients the norms saw


def test_hist_every_takes_them_at_multiples_only_and_zero_turns_them_off(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path, LINEAR_SPEC)
    train_here(tmp_path / "a", spec_path, max_steps=12, log_every=2, hist_every=4)
    assert [r["step"] for r in read_jsonl(tmp_path / "a" / "histograms.jsonl")] == [1, 4, 8, 12]
    train_here(tmp_path / "b", spec_path, max_steps=4, hist_every=0)
    assert not (tmp_path / "b" / "histograms.jsonl").exists()
