"""Text measured in terminal cells: a combining mark (the bar of v̄) shares its base's cell."""

from __future__ import annotations

import unicodedata


def text_cells(text: str) -> list[str]:
    """Split text into terminal cells, keeping combining marks (the bar of v̄) with their base."""
    cells: list[str] = []
    for ch in text:
        if cells and unicodedata.combining(ch):
            cells[-1] += ch
        else:
            cells.append(ch)
    return cells


def text_width(text: str) -> int:
    """The number of cells `text` takes (combining marks take none)."""
    return sum(1 for ch in text if not unicodedata.combining(ch))
