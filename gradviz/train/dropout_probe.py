"""Exact dropout masks: the mask torch drew, recorded while the model trains.

Guessing the mask from zeros in a dropout layer's output is wrong whenever the input was
already zero (after a ReLU, about half the units). ``torch.native_dropout`` returns the
output together with the boolean keep-mask and draws the same random numbers as
``F.dropout``, so swapping each ``nn.Dropout`` for :class:`RecordingDropout` changes
nothing about training and makes the true mask available.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# Layers whose p --dropout overrides. Only element-wise nn.Dropout is recorded: the
# channel-wise variants (Dropout1d/2d/3d) and AlphaDropout draw different masks.
DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


class RecordingDropout(nn.Dropout):
    """nn.Dropout that keeps the last mask it drew while ``recording`` is set."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__(p, inplace)
        self.recording = False
        self.last_mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x  # what F.dropout returns in evaluation
        output, mask = torch.native_dropout(x, self.p, True)
        if self.recording:
            self.last_mask = mask  # a reference, no copy: read only on logged steps
        if self.inplace:
            return x.copy_(output)
        return output


@dataclass(frozen=True)
class ProbedLayer:
    """One recorded dropout layer: its module path and the module."""

    name: str
    module: RecordingDropout


def set_dropout(model: nn.Module, p: float) -> int:
    """Set p on every dropout layer of the model; returns how many there were."""
    count = 0
    for module in model.modules():
        if isinstance(module, DROPOUT_TYPES):
            module.p = p
            count += 1
    return count


def install_probes(model: nn.Module) -> list[ProbedLayer]:
    """Replace every plain nn.Dropout in the model by a RecordingDropout, in place."""
    probed = []
    for name, module in list(model.named_modules()):
        if type(module) is not nn.Dropout:
            continue
        recorder = RecordingDropout(module.p, module.inplace)
        recorder.train(module.training)
        _replace_submodule(model, name, recorder)
        probed.append(ProbedLayer(name, recorder))
    return probed


def set_recording(probed: list[ProbedLayer], on: bool) -> None:
    """Turn mask recording on or off for every probed layer; off drops the last masks."""
    for layer in probed:
        layer.module.recording = on
        if not on:
            layer.module.last_mask = None


def _replace_submodule(model: nn.Module, path: str, new: nn.Module) -> None:
    """Set model.<path> = new, where path is a dotted module name like 'block.drop'."""
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, child, new)
