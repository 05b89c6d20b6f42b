"""Numbers as text: one place decides how values, tangents and adjoints read."""

from __future__ import annotations

import math

from typing import Callable

import numpy as np

from gradviz.core.stats import l2_norm

DECIMALS = 4


def is_finite(value: np.ndarray | None) -> bool:
    """True when every element is finite (None counts as finite: nothing to show)."""
    return value is None or bool(np.all(np.isfinite(value)))


def fmt_scalar(x: float, decimals: int = DECIMALS) -> str:
    """A scalar to `decimals` places, with '-0' shown as '0' and large/small in e-notation."""
    x = float(x)
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 10 ** -decimals):
        return f"{x:.{decimals - 1}e}"
    text = f"{x:.{decimals}f}"
    return "0" if float(text) == 0 else text


def fmt_shape(shape: tuple[int, ...]) -> str:
    """(2, 16) as '2×16'; a scalar as 'scalar'."""
    return "×".join(map(str, shape)) if shape else "scalar"


def fmt_value(value: np.ndarray | None, decimals: int = DECIMALS, norm: Callable[[np.ndarray], float] = l2_norm) -> str:
    """Short form: a scalar as a number, a small vector in full, a tensor as shape and summary."""
    if value is None:
        return "—"
    value = np.asarray(value)
    if value.size == 1:
        return fmt_scalar(value.reshape(()), decimals)
    if value.ndim == 1 and value.size <= 3:
        return "[" + ", ".join(fmt_scalar(x, decimals) for x in value) + "]"
    return f"{fmt_shape(value.shape)} {summary_line(value, norm)}"


def summary_line(value: np.ndarray, norm_of: Callable[[np.ndarray], float] = l2_norm) -> str:
    """A tensor in one short token: its norm (the number that shows vanishing or
    exploding), and how many elements are NaN/Inf."""
    norm = norm_of(value)  # a trace's views pass its memo's (core.stats.ArrayFacts.norm)
    if np.isfinite(norm):  # a finite sum of squares: every element is finite
        return f"‖{norm:.4g}‖"
    flat = np.asarray(value).ravel()
    finite = np.isfinite(flat)
    bad = int(flat.size - finite.sum())
    if bad == flat.size:
        return "all NaN/Inf"
    return f"‖{l2_norm(flat[finite]):.4g}‖" + (f" {bad}×NaN/Inf" if bad else "")


def fmt_full(value: np.ndarray | None, decimals: int = DECIMALS) -> str:
    """Every element, numpy-style, for tooltips and inspectors."""
    if value is None:
        return "—"
    value = np.asarray(value)
    if value.size == 1:
        return fmt_scalar(value.reshape(()), decimals)
    return np.array2string(value, precision=decimals, suppress_small=True, max_line_width=100, threshold=2000)


def to_json(value: np.ndarray | None):
    """A JSON-ready form: nested lists of floats, non-finite numbers as 'nan'/'inf'/'-inf'."""
    if value is None:
        return None
    if isinstance(value, float):  # a Python or numpy float64: what tolist() gives, at once
        return float(value) if math.isfinite(value) else _json_scalar(value)
    value = np.asarray(value)
    if value.ndim == 0 and value.dtype.kind == "f":
        x = value.item()
        return x if math.isfinite(x) else _json_scalar(x)
    if np.all(np.isfinite(value)):
        return value.tolist()
    if value.ndim == 0:
        return _json_scalar(float(value))
    return [to_json(v) for v in value]


def _json_scalar(x: float):
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x
