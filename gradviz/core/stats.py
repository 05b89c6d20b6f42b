"""Summary statistics of a tensor: what a person reads instead of a thousand numbers."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, replace
from typing import Any, Iterable

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
    posinf_count: int = 0  # of inf_count, the +Inf ones (an attention mask's -Inf is by design)

    @property
    def finite(self) -> bool:
        """No NaN and no Inf."""
        return self.nan_count == 0 and self.inf_count == 0

    @property
    def size(self) -> int:
        """The number of elements described."""
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        """The number of axes described."""
        return len(self.shape)

    @property
    def is_float(self) -> bool:
        """Whether the tensor holds floats (only floats are NaN/Inf)."""
        return np.dtype(self.dtype).kind == "f"

    @property
    def abs_max(self) -> float:
        """max |element| of the finite elements (0 for an empty tensor)."""
        return max(abs(self.min), abs(self.max)) if self.size else 0.0


def l2_norm(value: np.ndarray) -> float:
    """‖value‖ over every element, summed in float64 without a float64 copy (NaN or Inf
    when an element is)."""
    value = np.asarray(value)
    if value.dtype.kind == "f":
        # in C order, whatever the strides: every view of the same numbers gets the same
        # sum to the last bit (a transposed weight's copy is torch's fast one, see c_order)
        flat = c_order(value)
        return float(np.sqrt(np.einsum("i,i->", flat, flat, dtype=np.float64)))
    flat = value.ravel().astype(np.float64)
    return float(np.sqrt(np.dot(flat, flat)))


# Below this fraction of mean², the one-pass variance is mostly the rounding of two
# nearly equal float64 sums (a constant tensor of 1000.0 came out with std 1e-5).
_CANCELLATION = 1e-6


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
            if low == high:  # a constant (a mean's 1/B adjoint, a sum's ones): no spread, no pass
                variance = 0.0
            elif variance <= _CANCELLATION * mean * mean:  # E[x²] − E[x]² lost its digits: two passes
                variance = float(np.var(flat, dtype=np.float64))
            # flat != 0 counts exactly what count_nonzero(flat) counts (NaN is nonzero, -0.0
            # is zero), several times faster than count_nonzero on floats; and a range that
            # leaves out 0 has no zero to count.
            nonzero = n if low > 0 or high < 0 else np.count_nonzero(flat != 0)
            return TensorStats(tuple(value.shape), str(value.dtype), mean, float(np.sqrt(variance)),
                               low, high, float(np.sqrt(squares)), 1.0 - nonzero / n, 0, 0)
    flat = flat.astype(np.float64, copy=False)
    finite = flat[np.isfinite(flat)]
    nan = int(np.isnan(flat).sum())
    inf = int(np.isinf(flat).sum())
    posinf = int(np.isposinf(flat).sum()) if inf else 0
    if finite.size == 0:
        nan_stat = float("nan")
        return TensorStats(value.shape, str(value.dtype), nan_stat, nan_stat, nan_stat, nan_stat, nan_stat,
                           0.0, nan, inf, posinf)
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
        posinf_count=posinf,
    )


def c_order(value: np.ndarray) -> np.ndarray:
    """value.ravel(): its elements in C order, a view when they already are, else a copy.

    A transposed weight (an aten-level `t`) is read across its rows by numpy's copy; torch's
    tiled copy is several times faster, so it makes the copy whenever torch is loaded
    anyway (a model trace). A copy is exact either way.
    """
    if value.flags.c_contiguous or value.dtype.type not in _TORCH_FLOATS or "torch" not in sys.modules:
        return value.ravel()
    if not value.flags.writeable or min(value.strides, default=0) < 0:
        return value.ravel()  # torch takes neither read-only nor reversed arrays
    import torch

    return torch.from_numpy(value).contiguous().numpy().ravel()


@dataclass(frozen=True)
class NonFinite:
    """The NaN, +Inf and -Inf among a value's `size` elements."""

    nan: int
    posinf: int
    neginf: int
    size: int

    @property
    def inf(self) -> int:
        """+Inf and -Inf together."""
        return self.posinf + self.neginf


def _count_nonfinite(value: np.ndarray) -> NonFinite:
    return NonFinite(int(np.isnan(value).sum()), int(np.isposinf(value).sum()), int(np.isneginf(value).sum()),
                     value.size)


_TORCH_FLOATS = (np.float64, np.float32, np.float16)
_UNSET: Any = object()
# Plain floats and numpy's float scalars: their finiteness and norm are one float's.
_FLOAT_SCALARS = (float, np.float64, np.float32, np.float16)


class ArrayFacts:
    """What views and checks ask of a trace's arrays (finite? ‖·‖? min and max? statistics?
    size, float?, largest |element|, any nonzero, NaN/±Inf counts, one float?), each
    computed once per array, in its own dtype (sums kept in float64, as tensor_stats has them).
    A summaries-only trace's TensorStats answer the same questions, so checks written
    against these methods work on both kinds of trace: this class is the one place that
    tells an array from statistics standing in for it.

    Keyed by the array's id; each entry keeps its array, so that id stays its own for as
    long as the memo lives. The trace's arrays never change, so the facts never go stale.
    One-number arrays are answered at once, not stored (that is as cheap as a look-up).
    """

    __slots__ = ("_memo", "_by_memory")

    def __init__(self) -> None:
        self._memo: dict[int, list[Any]] = {}  # id -> [array, norm, extent, stats, finite, NaN/Inf counts]
        # (address, size, dtype) of a C-ordered array -> its entry: a view (a reshape, an aten
        # `view`) holds the same elements in the same order, so the same sums to the last bit.
        self._by_memory: dict[tuple[int, int, str], list[Any]] = {}

    def _entry(self, value: Any) -> list[Any]:
        entry = self._memo.get(id(value))
        if entry is None or entry[0] is not value:
            entry = [value, _UNSET, _UNSET, _UNSET, _UNSET, _UNSET]
            self._memo[id(value)] = entry
        return entry

    def finite(self, value: Any) -> bool:
        """bool(np.all(np.isfinite(value))), without a boolean copy for float arrays."""
        if type(value) is not np.ndarray:
            if isinstance(value, _FLOAT_SCALARS):
                return math.isfinite(value)
            if not isinstance(value, np.ndarray):
                if isinstance(value, TensorStats):  # statistics standing in for a tensor
                    return value.finite
                return bool(np.all(np.isfinite(value)))
        if value.dtype.kind == "f":
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
        with np.errstate(over="ignore", invalid="ignore"):  # Inf − Inf and overflow are answers here
            total = np.add.reduce(value, axis=None)
        if math.isfinite(total):
            return True
        return bool(np.isfinite(value).all())

    def norm(self, value: Any) -> float:
        """l2_norm(value)."""
        if isinstance(value, _FLOAT_SCALARS) or (isinstance(value, np.ndarray) and value.ndim == 0
                                                  and value.dtype.kind == "f" and value.dtype.itemsize <= 8):
            x = float(value)  # l2_norm's einsum of one element in float64 is x·x exactly
            return math.sqrt(x * x)
        if not isinstance(value, np.ndarray):
            if isinstance(value, TensorStats):  # statistics standing in for a tensor
                return value.norm
            return l2_norm(value)
        entry = self._entry(value)
        if entry[1] is _UNSET:
            entry[1] = l2_norm(value)
        return entry[1]

    def extent(self, value: np.ndarray) -> tuple[float, float]:
        """(float(value.min()), float(value.max())) of a non-empty array (or of the finite
        elements its statistics describe)."""
        if not isinstance(value, np.ndarray):
            if isinstance(value, TensorStats):  # statistics standing in for a tensor
                return value.min, value.max
            value = np.asarray(value)
            return float(value.min()), float(value.max())
        entry = self._entry(value)
        if entry[2] is _UNSET:
            flat = c_order(value)  # tensor_stats' order, so a min of 0.0 and -0.0 picks the same zero
            entry[2] = (float(flat.min()), float(flat.max()))
        return entry[2]

    def stats(self, value: Any) -> TensorStats:
        """tensor_stats(value) (statistics standing in for a tensor are their own)."""
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            return value if isinstance(value, TensorStats) else tensor_stats(value)
        entry = self._entry(value)
        if entry[3] is _UNSET:
            same = None
            if value.flags.c_contiguous:
                key = (value.__array_interface__["data"][0], value.size, value.dtype.str)
                same = self._by_memory.setdefault(key, entry)
            if same is not None and same is not entry and same[3] is not _UNSET:
                for slot in (1, 2, 4):
                    if entry[slot] is _UNSET:
                        entry[slot] = same[slot]
                entry[3] = replace(same[3], shape=tuple(value.shape))
            elif value.dtype.kind == "f" and value.size:
                # Every pass below reads the elements in C order: a strided or broadcast view
                # is copied once here, not once per pass.
                flat = c_order(value)
                if entry[1] is _UNSET:
                    entry[1] = l2_norm(flat)
                if entry[2] is _UNSET and math.isfinite(entry[1]):
                    entry[2] = (float(flat.min()), float(flat.max()))
                extent = None if entry[2] is _UNSET else entry[2]
                entry[3] = tensor_stats(flat.reshape(value.shape), entry[1], extent)
            else:
                entry[3] = tensor_stats(value)
        return entry[3]

    def one_float(self, value: Any) -> float | None:
        """A one-number float (Python or numpy scalar, 0-d array) as a Python float, else None
        (so that checks can take one number in plain float arithmetic, at once)."""
        if isinstance(value, float):
            return float(value)
        if type(value) is np.ndarray:
            return float(value) if value.ndim == 0 and value.dtype.type in _TORCH_FLOATS else None
        return float(value) if isinstance(value, _TORCH_FLOATS) else None

    def size(self, value: Any) -> int:
        """np.size(value): the number of elements."""
        if isinstance(value, TensorStats):  # statistics standing in for a tensor
            return value.size
        return int(np.size(value))

    def is_float(self, value: Any) -> bool:
        """np.asarray(value).dtype.kind == "f", without making an array."""
        if isinstance(value, (float, np.floating)):
            return True
        if isinstance(value, np.ndarray):
            return value.dtype.kind == "f"
        if isinstance(value, TensorStats):  # statistics standing in for a tensor
            return value.is_float
        return np.asarray(value).dtype.kind == "f"

    def abs_max(self, value: Any) -> float:
        """float(np.max(np.abs(value))) of a finite value, 0 when it is empty (of statistics:
        the largest |min| or |max| of the finite elements)."""
        if isinstance(value, TensorStats):  # statistics standing in for a tensor
            return value.abs_max
        if self.size(value) == 0:
            return 0.0
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            low, high = self.extent(value)
            return max(-low, high)
        return float(np.max(np.abs(value)))

    def any_nonzero(self, value: Any) -> bool:
        """bool(np.any(value != 0)) (NaN counts as nonzero)."""
        if isinstance(value, TensorStats):  # statistics standing in for a tensor
            return value.size > 0 and value.zero_fraction < 1
        return bool(np.any(value != 0))

    def nonfinite_counts(self, value: Any) -> NonFinite | None:
        """How many NaN, +Inf and -Inf `value` holds, of how many elements; None when it does
        not hold floats (only floats are NaN/Inf)."""
        if isinstance(value, TensorStats):  # statistics standing in for a tensor
            if not value.is_float:
                return None
            return NonFinite(value.nan_count, value.posinf_count, value.inf_count - value.posinf_count, value.size)
        if not self.is_float(value):
            return None
        if self.finite(value):
            return NonFinite(0, 0, 0, self.size(value))
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            return _count_nonfinite(np.asarray(value))
        entry = self._entry(value)  # the findings and the mask search ask again for the same arrays
        if entry[5] is _UNSET:
            entry[5] = _count_nonfinite(value)
        return entry[5]

    def prefetch_stats(self, values: Iterable[Any], workers: int | None = None) -> None:
        """stats() of each array, on several cores at once: numpy and torch let go of the GIL
        while they reduce, and each array's numbers are the same whichever thread makes them."""
        todo: dict[int, np.ndarray] = {}
        for value in values:
            if (isinstance(value, np.ndarray) and value.size >= _PARALLEL_SIZE and id(value) not in todo
                    and self._entry(value)[3] is _UNSET):
                todo[id(value)] = value
        workers = min(workers or _cores(), len(todo))
        if workers < 2:
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:  # largest first: the last ones to start are short
            for _ in pool.map(self.stats, sorted(todo.values(), key=lambda a: -a.size)):
                pass


_PARALLEL_SIZE = 1 << 14  # smaller arrays cost less than handing them to a thread


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def facts_of(trace: Any) -> ArrayFacts:
    """The trace's own ArrayFacts, made on first use (a Trace is frozen: set beside its fields)."""
    facts = trace.__dict__.get("_array_facts")
    if facts is None:
        facts = ArrayFacts()
        object.__setattr__(trace, "_array_facts", facts)
    return facts
