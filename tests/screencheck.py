"""A screen checker: a rendered screen read the way a person reads it, and what they cannot read.

`text_defects(text)` reads plain screen text (Textual's screen as text, tmux capture-pane,
or piped output) for words and numbers cut short:

- cut at the end by an ellipsis (`worl…`, `blocks.0…`): a name cut from the left (`…attn.c_attn`)
  is the declared rule for long names and passes;
- cut by a border or a bar (`converged at step 11│`, `PC2 (24%│`, `end late▏`): text
  running into a vertical border with no blank column before it cannot be told from text
  that was cut there;
- an e-notation number that lost exponent digits (`-1.00e-0`: an exponent written with a
  leading zero has two digits; `7.0e-4`, written short on purpose, is whole).

`stepper_defects(app)` adds what only the app knows: a graph pane with nothing drawn in
it, and the current node's box outside the pane's visible window.
"""

from __future__ import annotations

import re

VERTICAL_BORDERS = "│┃║▏▕"
RULES = (
    ("cut by an ellipsis", re.compile(r"[\w%)\]]…")),
    ("cut by a border", re.compile(rf"[\w%)\]][{VERTICAL_BORDERS}]")),
    ("exponent cut short", re.compile(r"\d[eE][-+]0(?!\d)")),
)


def text_defects(text: str) -> list[str]:
    """Each word or number on the screen that is cut, as 'row N: why: the text around it'."""
    found = []
    for y, line in enumerate(text.splitlines()):
        for why, pattern in RULES:
            for match in pattern.finditer(line):
                around = line[max(0, match.start() - 24):match.end() + 4].strip()
                found.append(f"row {y}: {why}: {around!r}")
    return found


def region_text(text: str, region) -> list[str]:
    """The rows of a widget's region (x, y, width, height) cut out of the screen's text."""
    rows = text.splitlines()
    return [rows[y][region.x:region.x + region.width] if y < len(rows) else ""
            for y in range(region.y, region.y + region.height)]


def stepper_defects(app, text: str) -> list[str]:
    """A blank graph pane, or the current node's box out of the pane's view."""
    from gradviz.tui.widgets.graph_pane import GraphPane

    found = []
    for pane in app.screen.query(GraphPane):
        if not pane.display:
            continue
        inside = region_text(text, pane.content_region)
        if not "".join(inside).strip():
            found.append("blank graph pane")
        scene, drawing = pane.scene, pane.drawing
        node = scene.current if scene is not None else None
        box = drawing.box(node) if drawing is not None and node is not None else None
        if box is not None:
            x, y, w, h = box
            left, top = int(pane.scroll_x), int(pane.scroll_y)
            width, height = pane.scrollable_content_region.size
            if x + w <= left or x >= left + width or y + h <= top or y >= top + height:
                found.append(f"current node {app.trace.graph.nodes[node].label!r} off screen")
    return found
