"""The declared statistics of a logged step: names, sizes, offsets, when and how each is measured.

Each entry says what it is (one number, or one per layer), whether it is measured before
or after the optimizer step, and how: its `measure` is given the step's measures
(train/stats.StepMeasures: the loss, the penalty, fused per-layer norms, the update Δθ)
and returns its value on the device. The trainer and `watch` run each phase from these
declarations (train/stats.StatsCollector); the metrics records, the monitor's series and
its --no-tui columns read them by name. Imports nothing of torch or textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

BEFORE_STEP = "before_step"  # measured once the gradients are in, before the optimizer updates θ
AFTER_STEP = "after_step"  # measured once the optimizer step has run (the update Δθ is known)


@dataclass(frozen=True)
class Stat:
    """One statistic of a logged step: its key in a metrics record, one value or one per layer,
    the phase it is measured in, how (on the device), and its --no-tui column header if any."""

    name: str
    per_layer: bool = False
    about: str = ""
    when: str = BEFORE_STEP
    measure: Callable[[Any], Any] | None = None  # StepMeasures -> a device tensor (scalar, or one per layer)
    column: str = ""  # a scalar's header in `--no-tui`'s table ("": not shown there)


# A logged step's statistics, in the order the device packs them: a new metric is one entry
# here (with its test); the trainer, `watch`, the records and the monitor follow from it.
STEP_STATS = (
    Stat("loss", about="the data loss of the step (mean over its micro-batches)",
         measure=lambda m: m.loss, column="loss"),
    Stat("penalty", about="the L2 penalty (λ·Σ‖θ‖² or λ·Σ‖θ‖₂, as --l2-form says), logged on its own (0 without --l2)",
         measure=lambda m: m.penalty, column="penalty"),
    Stat("grad_norm", per_layer=True, about="‖∇θ‖ per layer, after the all-reduce",
         measure=lambda m: m.norms().grad),
    Stat("param_norm", per_layer=True, about="‖θ‖ per layer",
         measure=lambda m: m.norms().param),
    Stat("grad_norm_total", about="‖∇θ‖ over every trainable parameter",
         measure=lambda m: m.norms().total, column="|∇θ|"),
)


def stats_measured(when: str, stats: tuple[Stat, ...] | None = None) -> tuple[Stat, ...]:
    """The statistics measured in phase `when` (BEFORE_STEP or AFTER_STEP), in declared order."""
    if when not in (BEFORE_STEP, AFTER_STEP):
        raise ValueError(f"when must be {BEFORE_STEP!r} or {AFTER_STEP!r}, not {when!r}")
    return tuple(stat for stat in (STEP_STATS if stats is None else stats) if stat.when == when)


@dataclass(frozen=True)
class StatsLayout:
    """Names, sizes and offsets of the statistics in a step's flat vector, for `layers` layers."""

    layers: int
    stats: tuple[Stat, ...] = ()  # () : STEP_STATS as it is when the layout is made

    def __post_init__(self) -> None:
        if not self.stats:
            object.__setattr__(self, "stats", STEP_STATS)

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
        at = 0  # the offsets, in one pass (unpacked on every logged step)
        for stat in self.stats:
            if stat.per_layer:
                out[stat.name] = dict(zip(layer_names, values[at:at + self.layers]))
            else:
                out[stat.name] = values[at]
            at += self.layers if stat.per_layer else 1
        return out

    def _stat(self, name: str) -> Stat:
        for stat in self.stats:
            if stat.name == name:
                return stat
        raise KeyError(name)
