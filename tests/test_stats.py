"""core/stats.py: a tensor's statistics against numpy's own two-pass ones."""

from __future__ import annotations

import numpy as np
import pytest

from gradviz.core.stats import tensor_stats


def test_a_constant_tensor_has_no_spread() -> None:
    """E[x²] − E[x]² of 2,000 elements of 1000.0 rounded to std 1e-5: a constant has std 0."""
    stats = tensor_stats(np.full((2000, 1), 1000.0))
    assert stats.mean == 1000.0 and stats.std == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_small_spread_around_a_large_mean_is_numpy_std(dtype) -> None:
    values = (1e4 + np.random.default_rng(0).standard_normal(100_000) * 1e-2).astype(dtype)
    stats = tensor_stats(values)
    assert stats.std == pytest.approx(float(np.std(values, dtype=np.float64)), rel=1e-6)
    assert stats.mean == pytest.approx(float(np.mean(values, dtype=np.float64)), rel=1e-12)


def test_an_ordinary_spread_is_numpy_std() -> None:
    values = np.random.default_rng(1).standard_normal((64, 32)).astype(np.float32)
    assert tensor_stats(values).std == pytest.approx(float(np.std(values, dtype=np.float64)), rel=1e-9)
