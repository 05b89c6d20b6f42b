"""Summary statistics of a tensor: what a person reads instead of a thousand numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
    """‖value‖ over every element, summed in float64 without a float64 copy (NaN or Inf
    when an element is)."""
    flat = np.asarray(value).ravel()
    if flat.dtype.kind == "f":
        return float(np.sqrt(np.einsum("i,i->", flat, flat, dtype=np.float64)))
    flat = flat.astype(np.float64)
    return float(np.sqrt(np.dot(flat, flat)))


def tensor_stats(value: np.ndarray, norm: float | None = None,
                 extent: tuple[float, float] | None = None) -> TensorStats:
    """Statistics over the finite elements; NaN and Inf are counted, not averaged.

    Floats take one fused pass in their own dtype (sums kept in float64, no copy): a sum of
    squares that is finite proves every element finite, so the slow path with masks runs
    only on tensors that hold NaN or Inf. `norm` (l2_norm of `value`) and `extent` (its
    min and max) may come already computed (ArrayFacts).
    """
    value = np.asarray(value)
    flat = value.ravel()
    if flat.dtype.kind == "f" and flat.size:
        squares = (l2_norm(flat) if norm is None else norm) ** 2
        if np.isfinite(squares):
            n = flat.size
            mean = float(np.add.reduce(flat, dtype=np.float64)) / n
            variance = max(squares / n - mean * mean, 0.0)
            low, high = (float(flat.min()), float(flat.max())) if extent is None else extent
            # flat != 0 counts exactly what count_nonzero(flat) counts (NaN is nonzero, -0.0
            # is zero), several times faster than count_nonzero on floats.
            return TensorStats(tuple(value.shape), str(value.dtype), mean, float(np.sqrt(variance)),
                               low, high, float(np.sqrt(squares)),
                               1.0 - np.count_nonzero(flat != 0) / n, 0, 0)
    flat = flat.astype(np.float64, copy=False)
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


_UNSET: Any = object()
# Plain floats and numpy's float scalars: their finiteness and norm are one float's.
_FLOAT_SCALARS = (float, np.float64, np.float32, np.float16)


class ArrayFacts:
    """What views ask of a trace's arrays (finite? ‖·‖? min and max? statistics?), each
    computed once per array, on the array as it is (its own dtype, no copy).

    Keyed by the array's id; each entry keeps its array, so that id stays its own for as
    long as the memo lives. The trace's arrays never change, so the facts never go stale.
    One-number arrays are answered at once, not stored (that is as cheap as a look-up).
    """

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: dict[int, list[Any]] = {}  # id -> [array, norm, extent, stats, finite]

    def _entry(self, value: Any) -> list[Any]:
        entry = self._memo.get(id(value))
        if entry is None or entry[0] is not value:
            entry = [value, _UNSET, _UNSET, _UNSET, _UNSET]
            self._memo[id(value)] = entry
        return entry

    def finite(self, value: Any) -> bool:
        """bool(np.all(np.isfinite(value))), without a boolean copy for float arrays."""
        if isinstance(value, _FLOAT_SCALARS):
            return math.isfinite(value)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            if value.ndim == 0 and value.dtype.itemsize <= 8:
                return math.isfinite(value)
            entry = self._entry(value)
            if entry[4] is _UNSET:
                entry[4] = self._finite_array(value, entry)
            return entry[4]
        return bool(np.all(np.isfinite(value)))

    @staticmethod
    def _finite_array(value: np.ndarray, entry: list[Any]) -> bool:
        if entry[3] is not _UNSET:
            return entry[3].finite
        if entry[1] is not _UNSET and math.isfinite(entry[1]):
            return True  # a finite sum of squares: every element is finite
        # A sum in the array's own dtype is NaN or ±Inf whenever an element is; only an
        # overflow of finite elements needs the exact test.
        if math.isfinite(np.add.reduce(value, axis=None)):
            return True
        return bool(np.isfinite(value).all())

    def norm(self, value: Any) -> float:
        """l2_norm(value)."""
        if isinstance(value, _FLOAT_SCALARS) or (isinstance(value, np.ndarray) and value.ndim == 0
                                                  and value.dtype.kind == "f" and value.dtype.itemsize <= 8):
            x = float(value)  # l2_norm's einsum of one element in float64 is x·x exactly
            return math.sqrt(x * x)
        if not isinstance(value, np.ndarray):
            return l2_norm(value)
        entry = self._entry(value)
        if entry[1] is _UNSET:
            entry[1] = l2_norm(value)
        return entry[1]

    def extent(self, value: np.ndarray) -> tuple[float, float]:
        """(float(value.min()), float(value.max())) of a non-empty array."""
        if not isinstance(value, np.ndarray):
            value = np.asarray(value)
            return float(value.min()), float(value.max())
        entry = self._entry(value)
        if entry[2] is _UNSET:
            flat = value.ravel()  # tensor_stats' order, so a min of 0.0 and -0.0 picks the same zero
            entry[2] = (float(flat.min()), float(flat.max()))
        return entry[2]

    def stats(self, value: Any) -> TensorStats:
        """tensor_stats(value)."""
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            return tensor_stats(value)
        entry = self._entry(value)
        if entry[3] is _UNSET:
            if value.dtype.kind == "f" and value.size:
                norm = self.norm(value)
                extent = self.extent(value) if math.isfinite(norm) else None
                entry[3] = tensor_stats(value, norm, extent)
            else:
                entry[3] = tensor_stats(value)
        return entry[3]


def facts_of(trace: Any) -> ArrayFacts:
    """The trace's own ArrayFacts, made on first use (a Trace is frozen: set beside its fields)."""
    facts = trace.__dict__.get("_array_facts")
    if facts is None:
        facts = ArrayFacts()
        object.__setattr__(trace, "_array_facts", facts)
    return facts
