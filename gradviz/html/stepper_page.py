"""`gradviz export --html FILE`: the stepper as one self-contained web page.

Nothing here computes math. Every step's picture is the exporter's SVG of that step
(gradviz.draw.export, one layout for all steps), its status line and inspector text
are the terminal stepper's own (tui.status_line, tui.inspector_text), and the keys that
jump between modes and passes land where the terminal's do (tui.actions). The page only
shows step k's stored parts. Consecutive SVGs differ in a few elements (one layout, a few
nodes change), so every distinct element and line is stored once (Drawings): the
lecture's 31 SVGs take 70 kB instead of 461 kB whole. A clicked node's inspector text is
stored as lines the same way.
"""

from __future__ import annotations

import errno
import html
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, RenderableType
from rich.text import Text

from gradviz.core.graph import Node
from gradviz.core.steps import stepper_steps
from gradviz.core.trace import Trace
from gradviz.draw.dot import NODE_LIMIT
from gradviz.draw.export import FRAME_LIMIT, frame_sizes, make_picture, render, write_file
from gradviz.draw.fold import Fold, plan_fold
from gradviz.draw.look import Numbers
from gradviz.errors import ExportError
from gradviz.html.template import KEYS, page_html
from gradviz.tui import actions
from gradviz.tui.inspector_text import INTRO, inspector_report
from gradviz.tui.scene import Scene
from gradviz.tui.status_line import status_text
from gradviz.tui.timeline import Timeline

# steps × nodes: above it, clicking a node does not open its inspector; each report is drawn
# once per step (a teaching graph: 248 for the lecture, 0.2 s; the transformer block sample's
# 4,928, with heatmaps, took 30 s and 0.5 MB more)
SELECT_LIMIT = 2_000
# columns the status line and the inspector are laid out in: wider than any line they write (a
# heatmap stops at 24 cells), so that the page, not rich, wraps them at its pane's width
# (rich's breaks at 100 columns, wrapped again by a narrower pane, left lines of a few words)
TEXT_WIDTH = 400
_PROLOG = re.compile(r"^(<\?xml[^>]*>\s*|<!--.*?-->\s*)*", re.S)


@dataclass
class Pieces:
    """Distinct pieces of texts (lines, by default), each stored once. A text is a list of
    runs, [start, count, start, count, …]: pieces start … start+count−1 in order."""

    texts: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    cut: re.Pattern = re.compile(r"(?<=\n)")  # where a text is cut into pieces: after each line

    def add(self, text: str) -> list[int]:
        """Cut `text` into pieces and return their runs: joined in order, they give it back."""
        runs: list[int] = []
        for piece in self.cut.split(text):
            if not piece:
                continue
            if piece not in self.index:
                self.index[piece] = len(self.texts)
                self.texts.append(piece)
            i = self.index[piece]
            if runs and runs[-2] + runs[-1] == i:
                runs[-1] += 1
            else:
                runs += [i, 1]
        return runs

    def text(self, runs: list[int]) -> str:
        """The text `runs` stand for (as the page's script joins it)."""
        return "".join("".join(self.texts[start:start + count]) for start, count in zip(runs[::2], runs[1::2]))


@dataclass
class Drawings:
    """Every step's SVG, stored in two levels. An SVG is cut into its elements (graphviz
    writes a comment before each node and edge): a step changes a few of them, so a step is
    a few runs of stored elements. Each distinct element is a few runs of stored lines,
    since a node in its next state keeps most of its lines. (Runs of lines alone left the
    270-step page of a 30-term sum at 3.5 MB, 3.2 MB of it references; this way, 1.5 MB.)"""

    elements: Pieces = field(default_factory=lambda: Pieces(cut=re.compile(r"(?=^<!-- )", re.M)))
    lines: Pieces = field(default_factory=Pieces)

    def add(self, svg: str) -> list[int]:
        """The SVG's (less its XML prolog) runs of stored elements."""
        return self.elements.add(_PROLOG.sub("", svg, count=1))

    def data(self) -> dict:
        """As the page reads it: the lines, and each element as runs of them."""
        return {"lines": self.lines.texts, "elements": [self.lines.add(text) for text in self.elements.texts]}


def page_steps(trace: Trace, wrt: str | None = None) -> list:
    """The stepper's steps, or one line when a page could not hold them: checked before the
    picture is fitted or drawn (seconds of `dot` on a graph this big)."""
    steps = stepper_steps(trace, wrt)
    if len(steps) + 1 > FRAME_LIMIT:
        raise ExportError(f"the stepper has {len(steps)} steps, too many for one page (at most {FRAME_LIMIT - 1}): "
                          "one per node and pass, folded or not; trace a smaller graph")
    return steps


def rich_html(renderable: RenderableType, width: int) -> str:
    """A rich renderable as HTML spans with inline styles (the page puts it in a <pre>)."""
    console = Console(record=True, width=width, file=io.StringIO(), color_system="truecolor",
                      force_terminal=True, legacy_windows=False)
    console.print(renderable)
    return console.export_html(inline_styles=True, code_format="{code}").rstrip("\n")


def page_data(trace: Trace, wrt: str | None = None, detail: str = "full",
              node_limit: int = NODE_LIMIT, fold: Fold | None = None) -> dict:
    """Everything the page shows, step by step, as plain JSON-able data."""
    steps = page_steps(trace, wrt)
    timeline = Timeline(trace, steps)
    numbers = Numbers(trace)
    fold = fold if fold is not None else plan_fold(trace.graph, budget=node_limit)
    widest = make_picture(trace, None, "reverse", wrt, None, detail, node_limit=node_limit, numbers=numbers, fold=fold)
    labels, sizes = frame_sizes(trace, widest, detail, numbers, fold)
    drawings = Drawings()
    selection = Selection(trace, {}) if (len(steps) + 1) * len(trace.graph.nodes) <= SELECT_LIMIT else None
    shown = []
    for k in range(len(steps) + 1):
        picture = make_picture(trace, k, "reverse", wrt, None, detail, labels, node_limit, numbers, fold)
        scene = Scene(timeline, k)
        current = scene.current
        report = Text(intro()) if current is None else inspector_report(scene, current)
        if selection is not None:
            selection.add_step(scene, picture.look)
        shown.append({
            "svg": drawings.add(render(picture, "svg", sizes).decode("utf-8")),
            "status": rich_html(status_text(scene), TEXT_WIDTH),
            "inspector": rich_html(report, TEXT_WIDTH),
            "phase": scene.phase,
            "node": None if current is None else trace.graph.nodes[current].label,
        })
    return {
        "steps": shown,
        "drawings": drawings.data(),
        "tape": tape_data(timeline),
        "select": None if selection is None else selection.data(),
        "select_limit": SELECT_LIMIT,
        "jumps": {
            "mode_next": [actions.next_phase_start(timeline, k, 1) for k in range(len(shown))],
            "mode_prev": [actions.next_phase_start(timeline, k, -1) for k in range(len(shown))],
            "input": [list(actions.switch_pass(timeline, k, "tangent")) for k in range(len(shown))],
            "output": [list(actions.switch_pass(timeline, k, "reverse")) for k in range(len(shown))],
        },
    }


@dataclass
class Selection:
    """What the inspector says of each node at each step when a person clicks it (as a
    click selects a node in the terminal stepper), each distinct line stored once."""

    trace: Trace
    keys: dict[str, int]  # an SVG box's id -> the node it stands for
    lines: Pieces = field(default_factory=Pieces)
    reports: dict[tuple[int, ...], int] = field(default_factory=dict)
    at: list[list[int]] = field(default_factory=list)  # [k][node] -> index into reports

    def add_step(self, scene: Scene, look) -> None:
        """The reports of every node at the scene's step."""
        for box in look.boxes:
            node = look.node_of(box.key)
            if node is not None:
                self.keys[box.key] = node
        row = []
        for node in range(len(self.trace.graph.nodes)):
            ids = tuple(self.lines.add(rich_html(inspector_report(scene, node, pinned=True), TEXT_WIDTH)))
            row.append(self.reports.setdefault(ids, len(self.reports)))
        self.at.append(row)

    def data(self) -> dict:
        """As the page reads it."""
        return {"keys": self.keys, "labels": [n.label for n in self.trace.graph.nodes], "lines": self.lines.texts,
                "reports": [list(ids) for ids in self.reports], "at": self.at}


def tape_data(timeline: Timeline) -> dict:
    """The tape (the lecture's trace table) as the terminal's shows it: each cell's text
    (Scene.text at the last step) and the step from which it is shown ('·' before; None:
    never, e.g. an adjoint of a node the output does not depend on)."""
    trace = timeline.trace
    final = Scene(timeline, timeline.last)
    columns = [("value", None)] + [("tangent", key) for key in trace.tangents] + \
        [("adjoint", key) for key in trace.adjoints]
    headers = {"value": "value", "tangent": "∂·/∂{}", "adjoint": "∂{}/∂·"}
    shown = {key: trace.graph.shown_output(key) for key in trace.adjoints}  # c₃ where c was assigned again
    rows = []
    for node in trace.graph.nodes:
        if node.op == "const":
            continue
        kind_name = "target (data)" if node.id in trace.graph.target_ids else node.kind
        texts = [final.text(kind, node.id, key) for kind, key in columns]
        rows.append({
            "id": node.id,
            "node": node.label,
            "definition": node.definition if not node.is_leaf else kind_name,
            "cells": ["" if text == "?" else text for text in texts],
            "from": [_shown_from(timeline, kind, node, key, text) for (kind, key), text in zip(columns, texts)],
            "bad": [not final.is_finite(kind, node.id, key) for kind, key in columns],
        })
    return {"header": ["node", "definition"] + [headers[kind].format(shown.get(key, key) if kind == "adjoint" else key)
                                                   for kind, key in columns], "rows": rows}


def _shown_from(timeline: Timeline, kind: str, node: Node, key: str | None, text: str) -> int | None:
    if text == "?":
        return None
    if text == "data" or (kind == "value" and node.is_leaf):
        return 0
    phase = {"value": "forward", "tangent": "tangent", "adjoint": "reverse"}[kind]
    return timeline.step_of(node.id, phase, key)


def intro() -> str:
    """What the inspector says at step 0: the terminal's text with the page's keys."""
    keys = "\n".join(f"  {key:<12} {what}" for key, what in KEYS)
    return INTRO.format(keys=keys) + (" Hover a node for its full numbers; click a node (or a tape row) to "
                                      "inspect it, esc to follow the current node again.")


def write_stepper_page(trace: Trace, path: Path, source: str, wrt: str | None = None, detail: str = "full",
                       node_limit: int = NODE_LIMIT, fold: Fold | None = None) -> Path:
    """Write the stepper page for `trace` to `path` (one file: no network, nothing beside it)."""
    check_page_path(path)
    data = page_data(trace, wrt, detail, node_limit, fold)
    write_file(path, page_html(html.escape(f"gradviz step {source}"), data_json(data)).encode("utf-8"))
    return path


def check_page_path(path: Path) -> None:
    """One line now, for a page that could not be written, rather than after every step is drawn
    (minutes on a big model)."""
    if path.suffix.lower() not in (".html", ".htm"):
        raise ExportError(f"--html {path}: the file name must end in .html")
    problem = errno.EISDIR if path.is_dir() else None if path.parent.is_dir() else errno.ENOENT
    if problem is None and not os.access(path.parent, os.W_OK):
        problem = errno.EACCES
    if problem is not None:
        raise ExportError(f"cannot write {path}: {os.strerror(problem)}")


def data_json(data: dict) -> str:
    """JSON safe inside a <script> element: no '<' can close it or open a comment."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
