"""Summary statistics of a tensor: what a person reads instead of a thousand numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorStats:
    """Shape, dtype and the numbers that reveal trouble (zeros, NaN/Inf, scale)."""

    shape: tuple[int, ...]
    dtype: str
    mean: float
    std: float
    min: float
    max: float
    norm: float
    zero_fraction: float
    nan_count: int
    inf_count: int

    @property
    def finite(self) -> bool:
        return self.nan_count == 0 and self.inf_count == 0


def l2_norm(value: np.ndarray) -> float:
    """‖value‖ over every element, in float64 (NaN or Inf when an element is)."""
    flat = np.asarray(value, dtype=np.float64).ravel()
    return float(np.sqrt(np.dot(flat, flat)))


def tensor_stats(value: np.ndarray) -> TensorStats:
    """Statistics over the finite elements; NaN and Inf are counted, not averaged."""
    value = np.asarray(value)
    flat = value.astype(np.float64, copy=False).ravel()
    finite = flat[np.isfinite(flat)]
    nan = int(np.isnan(flat).sum())
    inf = int(np.isinf(flat).sum())
    if finite.size == 0:
        nan_stat = float("nan")
        return TensorStats(value.shape, str(value.dtype), nan_stat, nan_stat, nan_stat, nan_stat, nan_stat,
                           0.0, nan, inf)
    return TensorStats(
        shape=tuple(value.shape),
        dtype=str(value.dtype),
        mean=float(finite.mean()),
        std=float(finite.std()),
        min=float(finite.min()),
        max=float(finite.max()),
        norm=float(np.sqrt(np.dot(finite, finite))),
        zero_fraction=float((flat == 0).mean()) if flat.size else 0.0,
        nan_count=nan,
        inf_count=inf,
    )
