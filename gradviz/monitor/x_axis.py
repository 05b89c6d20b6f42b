"""The x-axis of a run's curves: steps, epochs, samples seen or wall-clock seconds.

Runs with different batch sizes compare on samples seen or epochs, not on steps: B = 410
makes three updates where B = 1 makes hundreds, so by steps its curve sits squashed at the
left. Epochs are fractional: samples seen / training examples (the record's whole epoch
number where the run does not say how many examples it has).
"""

from __future__ import annotations

import math

import numpy as np

from gradviz.monitor.state import RunView

X_AXES = ("step", "epoch", "samples", "time")
X_LABELS = {"step": "steps", "epoch": "epochs", "samples": "samples seen", "time": "wall-clock seconds"}


def next_axis(axis: str) -> str:
    """The axis `x` cycles to after `axis`."""
    return X_AXES[(X_AXES.index(axis) + 1) % len(X_AXES)]


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def x_values(view: RunView, axis: str) -> list[float]:
    """One x per logged record (the order of view.series), on `axis`."""
    records = view.records
    if axis == "step":
        return [float(s) for s in view.series.steps]
    if axis == "time":
        return [_number(r.get("time")) for r in records]
    samples = [_number(r.get("samples")) for r in records]
    if axis == "samples":
        return samples
    n_train = view.meta.get("n_train")
    if isinstance(n_train, int) and n_train > 0 and all(math.isfinite(s) for s in samples):
        return [s / n_train for s in samples]
    return [_number(r.get("epoch")) for r in records]


def at_steps(view: RunView, axis: str, steps: list[int]) -> list[float]:
    """x for other logged steps (validation points), read off the records' own steps."""
    if axis == "step":
        return [float(s) for s in steps]
    known, xs = np.asarray(view.series.steps, dtype=float), np.asarray(x_values(view, axis), dtype=float)
    if known.size == 0:
        return [math.nan] * len(steps)
    return [float(x) for x in np.interp(np.asarray(steps, dtype=float), known, xs)]
