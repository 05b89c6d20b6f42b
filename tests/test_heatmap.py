"""The heatmap and statistics line, rendered on a fixed-width console without colour."""

from __future__ import annotations

import numpy as np
from rich.console import Console

from gradviz.views.heatmap import Heatmap, leading_slice, short, stats_line


def render(renderable, width: int = 80) -> str:
    console = Console(width=width, color_system=None, record=True)
    console.print(renderable)
    return console.export_text()


def test_shade_follows_magnitude_and_the_caption_says_what_is_shown() -> None:
    text = render(Heatmap(np.array([[0.0, 0.25, 0.5, 1.0], [-1.0, np.nan, np.inf, -0.5]])))
    assert text.splitlines() == ["  ░░▒▒██", "██??∞∞▒▒", "all 2×4; █ = |1|, red > 0, blue < 0"]


def test_large_tensors_show_a_leading_slice() -> None:
    value = np.arange(2 * 3 * 20 * 40, dtype=np.float32).reshape(2, 3, 20, 40)
    lines = render(Heatmap(value, max_rows=4, max_cols=10)).splitlines()
    assert len(lines) == 5 and all(len(line) == 20 for line in lines[:4])
    assert lines[4].startswith("[0, 0, :, :] rows 0–3 of 20, cols 0–9 of 40")
    plane, where = leading_slice(np.zeros(5))
    assert plane.shape == (1, 5) and where == ""


def test_masks_show_kept_and_dropped_units() -> None:
    text = render(Heatmap(np.array([[True, False, True]])))
    assert text.splitlines()[0] == "██··██"


def test_stats_line_counts_non_finite_values() -> None:
    line = stats_line(np.array([1.0, 0.0, np.nan, 3.0], dtype=np.float32), "value").plain
    assert line == "value 4 float32: mean 1.33 std 1.25 min 0 max 3 ‖·‖ 3.16 zeros 25%  NaN 1 Inf 0"
    assert stats_line(None, "adjoint").plain == "adjoint: — (not differentiated)"
    assert [short(x) for x in (0.0352, -47.71, 2.2e-7, 12345.0, float("nan"))] == \
        ["0.0352", "-47.7", "2.2e-7", "1.2e4", "nan"]
