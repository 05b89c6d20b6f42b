"""Exact dropout masks: the mask torch drew, recorded while the model trains.

Guessing the mask from zeros in a dropout layer's output is wrong whenever the input was
already zero (after a ReLU, about half the units). On logged steps :class:`RecordingDropout`
runs what ``F.dropout`` itself runs, keeping the mask: on CUDA ``torch.native_dropout``
(which returns output and boolean mask), on CPU ATen's Bernoulli noise (the mask is where
it is non-zero); on other steps it calls ``F.dropout``. The random draws are the same
either way, so swapping each ``nn.Dropout`` for it changes nothing about training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

# Layers whose p --dropout overrides. Only element-wise nn.Dropout is recorded: the
# channel-wise variants (Dropout1d/2d/3d) and AlphaDropout draw different masks.
DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


@dataclass
class MaskLog:
    """One switch for every recording layer, and the masks they drew while it was on.

    A plain object rather than attributes on the modules: flipping it costs one Python
    assignment per step, where nn.Module.__setattr__ on each layer cost several percent
    of a small model's step.
    """

    on: bool = False
    masks: dict[str, torch.Tensor] = field(default_factory=dict)

    def switch(self, on: bool) -> None:
        """Start or stop recording; stopping drops the masks kept so far."""
        if on != self.on:
            self.on = on
            if not on:
                self.masks.clear()


class RecordingDropout(nn.Dropout):
    """nn.Dropout that leaves the mask it drew in a MaskLog while the log is on."""

    def __init__(self, p: float = 0.5, inplace: bool = False, log: MaskLog | None = None, name: str = ""):
        super().__init__(p, inplace)
        self.log = log if log is not None else MaskLog()
        self.name = name

    @property
    def last_mask(self) -> torch.Tensor | None:
        """The boolean keep-mask of this layer's last forward while recording, if any."""
        mask = self.log.masks.get(self.name)
        if mask is None or mask.dtype == torch.bool:
            return mask
        return mask != 0  # CPU: the scaled Bernoulli noise F.dropout multiplies by

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x  # what F.dropout returns in evaluation
        if not self.log.on:
            return F.dropout(x, self.p, True, self.inplace)  # unlogged steps: torch's own fast path
        if x.is_cuda:
            output, mask = torch.native_dropout(x, self.p, True)  # F.dropout's fused CUDA kernel
            if self.inplace:
                output = x.copy_(output)
        else:
            # F.dropout's CPU path (ATen's _dropout_impl), spelled out to keep the noise.
            if self.p == 1:
                mask = torch.zeros_like(x)
            else:
                mask = torch.empty_like(x).bernoulli_(1 - self.p).div_(1 - self.p)
            output = x.mul_(mask) if self.inplace else x * mask
        self.log.masks[self.name] = mask  # a reference, no copy: read only on logged steps
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


def install_probes(model: nn.Module, log: MaskLog) -> list[ProbedLayer]:
    """Replace every plain nn.Dropout in the model by a RecordingDropout writing to log."""
    probed = []
    for name, module in list(model.named_modules()):
        if type(module) is not nn.Dropout:
            continue
        recorder = RecordingDropout(module.p, module.inplace, log, name)
        recorder.train(module.training)
        _replace_submodule(model, name, recorder)
        probed.append(ProbedLayer(name, recorder))
    return probed


def _replace_submodule(model: nn.Module, path: str, new: nn.Module) -> None:
    """Set model.<path> = new, where path is a dotted module name like 'block.drop'."""
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, child, new)
