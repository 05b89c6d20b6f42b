"""One rule for text given too few cells: never cut a word or a number in the middle.

`fit_words(text, width, shorter)` takes `text` if it fits, else the first of the caller's
declared shorter forms that fits, else the shortest form with whole words dropped from
its end and a separate ' …' saying that something was left out. Used by every view that
prints a label into a fixed width (legends, axes, titles).
"""

from __future__ import annotations

from typing import Sequence

from rich.cells import cell_len
from rich.text import Text

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


def fit_text(text: Text, width: int, shorter: Sequence[Text] = ()) -> Text:
    """`fit_words` for styled text: `text`, or a declared shorter form, or the shortest form's
    whole words that fit with ' …' after them; each kept character keeps its style."""
    for candidate in (text, *shorter):
        if candidate.cell_len <= width:
            return candidate
    last = shorter[-1] if shorter else text
    kept = fit_words(last.plain, width)
    if not kept:
        return Text("")
    # fit_words only drops words from the end: what it kept is a prefix of the text, then ' …'
    return last[:len(kept) - len(MORE)] + Text(MORE, style="dim")


BREAKS_AFTER = " ,([="  # a definition may be cut just after these
NAME_BREAKS = " ._/()[],"  # a name may start just after these


def cut_end(text: str, width: int) -> str:
    """`text` in `width` cells, its end left out after a space or an opening mark and marked
    '…' (a definition: `qkv = Linear(16→48)(…`, `add_2 = …`); '…' alone when no word fits."""
    if cell_len(text) <= width:
        return text
    end = max(0, width - 2)
    while end > 0 and text[end - 1] not in BREAKS_AFTER:
        end -= 1
    if not end:  # no word ends in the room: say that something is there, left out
        return "…" if width >= 1 else ""
    return text[:end].rstrip() + (" …" if text[end - 1] == " " else "…")


def cut_start(text: str, width: int) -> str:
    """`text` in `width` cells, its start left out at a word's edge and marked '…', so that the
    distinguishing tail stays (`…blocks.3.attn.c_attn.weight`)."""
    if cell_len(text) <= width:
        return text
    start = len(text) - max(0, width - 1)
    while start < len(text) and text[start - 1] not in NAME_BREAKS:
        start += 1
    return "…" + text[start:].lstrip() if start < len(text) else ""
