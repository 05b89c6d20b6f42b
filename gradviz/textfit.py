"""One rule for text given too few cells: never cut a word or a number in the middle.

`fit_words(text, width, shorter)` takes `text` if it fits, else the first of the caller's
declared shorter forms that fits, else the shortest form with whole words dropped from
its end and a separate ' …' saying that something was left out. Used by every view that
prints a label into a fixed width (legends, axes, titles).
"""

from __future__ import annotations

from typing import Sequence

from rich.cells import cell_len

MORE = " …"  # what stands for words left out: apart from the last word, so that word reads whole


def fit_words(text: str, width: int, shorter: Sequence[str] = ()) -> str:
    """`text`, or a declared shorter form, or whole words of the shortest and ' …', in `width` cells."""
    for candidate in (text, *shorter):
        if cell_len(candidate) <= width:
            return candidate
    words = (shorter[-1] if shorter else text).split(" ")
    while words and cell_len(" ".join(words) + MORE) > width:
        words.pop()
    return " ".join(words) + MORE if words else ""
