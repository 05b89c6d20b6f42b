"""The declared layout of a logged step's statistics: names, sizes and offsets.

The trainer packs them by name on the device (train/stats.py); the metrics records and
the monitor read them by name. Imports nothing of torch or textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stat:
    """One statistic of a logged step: its key in a metrics record, one value or one per layer."""

    name: str
    per_layer: bool = False
    about: str = ""


# The fixed part of a logged step's statistics, in the order the device packs them. The
# trainer computes each by name (train/stats.py); the records and the monitor read them by
# name: a new per-layer metric is one entry here and its computation there.
STEP_STATS = (
    Stat("loss", about="the data loss of the step (mean over its micro-batches)"),
    Stat("penalty", about="the L2 penalty (λ·Σ‖θ‖² or λ·Σ‖θ‖₂, as --l2-form says), logged on its own (0 without --l2)"),
    Stat("grad_norm", per_layer=True, about="‖∇θ‖ per layer, after the all-reduce"),
    Stat("param_norm", per_layer=True, about="‖θ‖ per layer"),
    Stat("grad_norm_total", about="‖∇θ‖ over every trainable parameter"),
)


@dataclass(frozen=True)
class StatsLayout:
    """Names, sizes and offsets of the statistics in a step's flat vector, for `layers` layers."""

    layers: int
    stats: tuple[Stat, ...] = STEP_STATS

    def size(self, name: str) -> int:
        """How many numbers the statistic `name` takes: 1, or one per layer."""
        return self.layers if self._stat(name).per_layer else 1

    def offset(self, name: str) -> int:
        """Where the statistic `name` starts in the vector."""
        at = 0
        for stat in self.stats:
            if stat.name == name:
                return at
            at += self.size(stat.name)
        raise KeyError(name)

    @property
    def width(self) -> int:
        """Numbers in the fixed part (anything after it is the trainer's own)."""
        return sum(self.size(stat.name) for stat in self.stats)

    def unpack(self, values: list[float], layer_names: list[str]) -> dict[str, Any]:
        """The named values of a vector's host copy: a number, or {layer: number} per layer."""
        out: dict[str, Any] = {}
        for stat in self.stats:
            at = self.offset(stat.name)
            if stat.per_layer:
                out[stat.name] = dict(zip(layer_names, values[at:at + self.layers]))
            else:
                out[stat.name] = values[at]
        return out

    def _stat(self, name: str) -> Stat:
        for stat in self.stats:
            if stat.name == name:
                return stat
        raise KeyError(name)
