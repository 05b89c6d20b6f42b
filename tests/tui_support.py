"""Shared by the stepper's tests: the lecture's example and the text a running app shows."""

from __future__ import annotations

import asyncio
import functools
import io
import time
from pathlib import Path

from rich.console import Console

from gradviz.sources.bindings import parse_at
from gradviz.sources.expr import trace_expression

LECTURE = "(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))"
AT = "x1=0.5,x2=1"


def lecture_trace():
    """f(x1, x2) = (exp(x1/x2) + x1/x2)·(x1/x2 − log x2) at x1 = 0.5, x2 = 1."""
    return trace_expression(LECTURE, parse_at([AT]), {}, 0, "float64", ("tangent", "reverse"))


def expression_trace(text: str, at: str = "", shapes: dict | None = None):
    """Any expression, traced like `gradviz step` does."""
    return trace_expression(text, parse_at([at] if at else []), shapes or {}, 0, "float64", ("tangent", "reverse"))


def screen_text(app) -> str:
    """Every cell of the current screen as plain text, one line per row."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system=None, record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def run_async(test):
    """Run an async test with asyncio.run (no pytest-asyncio/anyio plugin is installed)."""
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))
    return wrapper


SAMPLES = Path(__file__).resolve().parent.parent / "samples"


async def wait_for_graph(pilot, timeout: float = 30.0, settled_for: int = 5) -> None:
    """Wait until the layout worker has handed the graph pane its drawing, the findings are
    looked for, and the picture has settled: the pane says its node is centred for its
    geometry as it is now (GraphPane.is_centred), and that offset and geometry have held over
    `settled_for` refreshes in a row (a pane still being resized would show it). Fails loudly
    after `timeout` seconds, saying what had not settled."""
    from gradviz.tui.widgets.graph_pane import GraphPane

    deadline = time.monotonic() + timeout

    def drawn() -> list:
        return [pane for pane in pilot.app.screen.query(GraphPane) if pane.drawing is not None]

    while not drawn():
        if time.monotonic() > deadline:
            raise AssertionError("the graph was not laid out in time")
        await pilot.pause(0.05)
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()  # the findings, looked for once the graph is drawn
    held, last = 0, None
    while held < settled_for:
        await pilot.pause()
        await pilot.pause(0.02)
        pane = drawn()[0]
        now = (pane.scroll_offset, pane.geometry(), pane.region.size) if pane.is_centred() else None
        held = held + 1 if now is not None and now == last else 0
        last = now
        if time.monotonic() > deadline:
            raise AssertionError(f"the graph pane did not settle in {timeout:g} s: centred {pane.centred}, "
                                 f"now {pane.geometry()} at {pane.scroll_offset}")


def assert_centred(pane) -> None:
    """The pane's focus node sits in the middle of the pane's scrollable window (as Textual
    lays it out), to half a cell, on each axis where the scroll range allows; else the pane is
    scrolled to the end nearest that; a box longer than the window shows its start."""
    box = pane.drawing.box(pane.focus_node())
    window = pane.scrollable_content_region.size
    offset, most = pane.scroll_offset, (pane.max_scroll_x, pane.max_scroll_y)
    for axis, (start, length, room) in enumerate([(box[0], box[2], window.width), (box[1], box[3], window.height)]):
        centred = start + length / 2 - room / 2  # the offset that centres it exactly
        where = (axis, box, window, offset, most)
        if length > room:
            assert offset[axis] == min(start, most[axis]), where
        elif 0 < offset[axis] < most[axis]:
            assert abs(offset[axis] - centred) <= 0.5, where
        else:
            assert (offset[axis] == 0 and centred <= 0.5) or (offset[axis] == most[axis] >= centred - 0.5), where


async def wait_until(pilot, predicate, timeout: float = 60.0) -> None:
    """Pause until `predicate()` holds (or fail after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await pilot.pause(0.1)


def gpt_shaped_trace(size: str, level: str = "module"):
    """samples/big/gpt2_shaped.py traced at a small size ('blocks,dim,heads,length')."""
    import os

    from gradviz.sources.model import trace_spec

    os.environ["GRADVIZ_GPT2"] = size
    try:
        return trace_spec(str(SAMPLES / "big" / "gpt2_shaped.py"), batch_size=2, seed=0, level=level, dtype=None)
    finally:
        del os.environ["GRADVIZ_GPT2"]
