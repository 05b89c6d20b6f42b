"""Text snapshots of rendered views: compare with tests/snapshots/, GRADVIZ_UPDATE_SNAPSHOTS=1 rewrites."""

from __future__ import annotations

import io
import os
from pathlib import Path

from rich.console import Console

SNAPSHOTS = Path(__file__).parent / "snapshots"


def plain(renderable, width: int) -> str:
    """A renderable as plain text at this width (no colour), trailing spaces stripped."""
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"


def assert_text_snapshot(text: str, name: str) -> None:
    """Equal to the stored snapshot `name` (or store it when GRADVIZ_UPDATE_SNAPSHOTS is set)."""
    path = SNAPSHOTS / name
    if os.environ.get("GRADVIZ_UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (GRADVIZ_UPDATE_SNAPSHOTS=1 to accept)"
