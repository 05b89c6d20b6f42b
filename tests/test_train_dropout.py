"""Recorded dropout masks are the masks torch applied, and dropout is off in evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradviz.sources.spec import load_spec
from gradviz.train.dropout_probe import MaskLog, RecordingDropout, install_probes, set_dropout
from gradviz.rundir.jsonl import read_jsonl
from train_support import sample, train_here


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_recorded_mask_is_the_applied_mask(p: float) -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 40) + 0.5  # no zeros, so a zero output can only come from the mask
    layer = RecordingDropout(p)
    layer.log.switch(True)
    out = layer(x)
    mask = layer.last_mask
    assert mask.dtype == torch.bool and mask.shape == x.shape
    assert (out[~mask] == 0).all()
    torch.testing.assert_close(out[mask], x[mask] / (1 - p))
    assert 0 < mask.float().mean() < 1


def test_same_draws_as_f_dropout_under_the_same_seed() -> None:
    x = torch.randn(8, 64)
    torch.manual_seed(123)
    expected = F.dropout(x, 0.3, training=True)
    torch.manual_seed(123)
    assert torch.equal(RecordingDropout(0.3)(x), expected)
    torch.manual_seed(123)
    assert torch.equal(nn.Dropout(0.3)(x), expected)


def test_mask_is_exact_where_the_input_was_already_zero() -> None:
    """After a ReLU, a zero output does not mean a dropped unit: the recorder knows."""
    torch.manual_seed(1)
    x = torch.relu(torch.randn(32, 64))
    layer = RecordingDropout(0.5)
    layer.log.switch(True)
    out = layer(x)
    guessed = out != 0
    assert (guessed != layer.last_mask).any()  # the guess from zeros is wrong somewhere
    assert (layer.last_mask | (x == 0))[guessed].all()


def test_dropout_is_off_in_evaluation() -> None:
    layer = RecordingDropout(0.5)
    layer.log.switch(True)
    layer.eval()
    x = torch.randn(4, 10)
    assert layer(x) is x
    assert layer.last_mask is None


def test_probes_replace_nested_dropouts_and_override_p() -> None:
    spec = load_spec(sample("transformer_block"))
    model = spec.build_model()
    assert set_dropout(model, 0.3) == 2
    log = MaskLog()
    probed = install_probes(model, log)
    assert [p.name for p in probed] == ["block.attn_drop", "block.ff_drop"]
    assert all(isinstance(p.module, RecordingDropout) and p.module.p == 0.3 for p in probed)
    assert model.block.attn_drop is probed[0].module
    x, _ = spec.make_data(0)
    log.switch(True)
    model.train()
    model(x[:4])
    assert probed[0].module.last_mask.shape == (4, 2, 10, 10)
    log.switch(False)
    assert probed[0].module.last_mask is None


def test_training_run_logs_keep_rates_and_mask_samples(tmp_path: Path) -> None:
    train_here(tmp_path, sample("deep_mlp"), dropout=0.4, epochs=2, log_every=2)
    masks = read_jsonl(tmp_path / "masks.jsonl")
    assert masks and set(masks[0]["layers"]) == {"drop1", "drop2", "drop3"}
    layer = masks[-1]["layers"]["drop2"]
    assert layer["p"] == 0.4 and layer["shape"] == [64] and len(layer["kept"]) == 64
    assert set(layer["kept"]) <= {"0", "1"}
    rates = [m["layers"]["drop1"]["keep_rate"] for m in masks]
    assert abs(sum(rates) / len(rates) - 0.6) < 0.05


@pytest.mark.parametrize("recording", [False, True])
def test_recording_or_not_draws_what_nn_dropout_draws(recording: bool) -> None:
    """Turning recording on for logged steps must not change training: same outputs, same RNG."""
    x = torch.randn(16, 32, requires_grad=True)
    layer = RecordingDropout(0.3)
    layer.log.switch(recording)
    torch.manual_seed(5)
    out = layer(x)
    after = torch.rand(1)
    torch.manual_seed(5)
    expected = nn.Dropout(0.3)(x)
    assert torch.equal(out, expected) and torch.equal(torch.rand(1), after)
    out.sum().backward()
    grad = x.grad.clone()
    x.grad = None
    expected.sum().backward()
    assert torch.equal(grad, x.grad)
