"""The stepper's keys as text, read from the screens' BINDINGS: a binding's tooltip says
what it does (its help text), so the help screen, the inspector's intro and the screen's
docstring never list keys by hand. Bindings without a tooltip are aliases of one that
has it (the arrows beside `n`/`p`)."""

from __future__ import annotations

from typing import Iterable

from textual.binding import Binding
from textual.keys import format_key


def key_text(binding: Binding) -> str:
    """How a binding's keys read: its key_display, else each key formatted (`?`, `→`)."""
    if binding.key_display:
        return binding.key_display
    return ", ".join(format_key(key.strip()) for key in binding.key.split(","))


def key_rows(bindings: Iterable[Binding]) -> list[tuple[str, str]]:
    """One (keys, what they do) row per help text, keys in binding order: ('m / M', 'next / previous mode…')."""
    rows: dict[str, list[str]] = {}
    for binding in bindings:
        if binding.tooltip:
            keys = rows.setdefault(binding.tooltip, [])
            if key_text(binding) not in keys:
                keys.append(key_text(binding))
    return [(" / ".join(keys), what) for what, keys in rows.items()]


def key_table(rows: list[tuple[str, str]], indent: str = "  ") -> str:
    """The rows as aligned plain text, one key group a line."""
    width = max((len(keys) for keys, _ in rows), default=0)
    return "\n".join(f"{indent}{keys:<{width}}  {what}" for keys, what in rows)
