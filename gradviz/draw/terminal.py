"""The drawing in a terminal: a rich renderable over a Grid, and a trace drawn step by step.

`render_trace_graph` is what `gradviz trace --graph` prints; `TraceDrawing` is what the
stepper keeps: the layout is made once per detail level, and each step repaints only the
boxes and edges whose text or style changed: all of them (`grid`, O(nodes)), or those of
the nodes the caller names (`repaint`, O(changed), for a step on a graph of thousands).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from gradviz.core.steps import StepState
from gradviz.core.trace import Trace
from gradviz.draw.dot import DEFAULT_TIMEOUT_S, LAYOUT_BUDGET_S, NODE_LIMIT, LayoutTimeout
from gradviz.draw.bridge import bridge
from gradviz.draw.compound import alike_note
from gradviz.draw.fold import (
    MODULE,
    STUB,
    TERMINAL_MODULE_BUDGET,
    Fold,
    box_count,
    box_members,
    fold_look,
    folded_box,
    merged_style,
    plan_fold,
    visible_of,
)
from gradviz.draw.look import (
    DETAILS,
    EDGE_TERMINAL,
    STATE_TERMINAL,
    STYLES,
    WITH_VALUES,
    GraphLook,
    Numbers,
    box_style,
    box_text,
    edge_label,
    edge_style,
    make_view,
    node_kind,
    sizing_look,
    trace_look,
)
from gradviz.draw.cells import text_cells, text_width
from gradviz.draw.handoff import BoxSpec, Rect
from gradviz.draw.layout import box_size
from gradviz.draw.pipeline import lay_out
from gradviz.draw.raster import Grid, rasterise

TIGHT = DETAILS  # every form is drawn with no blank rows around an edge's tracks
LABEL_LIMIT = 40  # nodes: edge labels become rows of their own, worth it on small graphs only


class Theme:
    """Style keys to rich Styles: 'op', 'op.current', 'loss.pending.nonfinite', 'edge.active'…"""

    def __init__(self) -> None:
        self._cache: dict[str, Style] = {}

    def style(self, key: str) -> Style:
        """The rich Style of one key, composed from its kind and its states."""
        if key not in self._cache:
            self._cache[key] = self._compose(key)
        return self._cache[key]

    @staticmethod
    def _compose(key: str) -> Style:
        if not key:
            return Style.null()
        if key.startswith("edge"):
            parts = key.split(".")
            base = ".".join(part for part in parts if part != "nonfinite")
            style = Style.parse(EDGE_TERMINAL.get(base, EDGE_TERMINAL["edge"]))
            return style + Style.parse(STATE_TERMINAL["nonfinite"]) if "nonfinite" in parts else style
        if key == "cluster":
            return Style.parse("grey50")
        kind, *states = key.split(".")
        style = Style.parse(STYLES[kind].terminal) if kind in STYLES else Style.null()
        for state in states:
            style += Style.parse(STATE_TERMINAL.get(state, ""))
        return style


class GraphView:
    """A Grid as a rich renderable; wider than the console, it is cropped with a note."""

    def __init__(self, grid: Grid, theme: Theme | None = None):
        self.grid = grid
        self.theme = theme or Theme()

    def lines(self, start: int = 0, stop: int | None = None, width: int | None = None) -> Iterable[list[Segment]]:
        """Rows start..stop as lists of Segments, cropped to `width` cells (for row caches)."""
        stop = self.grid.height if stop is None else min(stop, self.grid.height)
        for y in range(start, stop):
            segments = []
            room = self.grid.width if width is None else width
            for text, key in self.grid.runs(y):
                if room <= 0:
                    break
                cells = text_width(text)
                if cells > room:
                    text = "".join(text_cells(text)[:room])
                    cells = room
                segments.append(Segment(text, self.theme.style(key)))
                room -= cells
            yield segments

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for segments in self.lines(width=width):
            yield from segments
            yield Segment.line()
        if self.grid.width > width:
            yield Text(
                f"(the drawing is {self.grid.width} columns wide and was cut at {width}: "
                "widen the terminal, use a lower detail, or `gradviz export` it)",
                style="dim",
            )

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(min(self.grid.width, options.max_width), self.grid.width)


PLAIN_LEGEND = "no colour here (output piped?): ? = not computed yet, nan/inf = non-finite; FORCE_COLOR=1 colours the node kinds"


class Legend:
    """The legend line: colour swatches where the console has colour, else words only
    (swatches without colour would all look the same)."""

    def __init__(self, kinds: Iterable[str] | None = None, ascii: bool = False):
        self.coloured = legend(kinds, ascii)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if console.color_system is None or console.no_color:
            yield Text(PLAIN_LEGEND)
        else:
            yield self.coloured


def legend(kinds: Iterable[str] | None = None, ascii: bool = False) -> Text:
    """One line explaining the colours: the node kinds shown, then the states of a step."""
    mark = "#" if ascii else "■"
    shown = set(STYLES if kinds is None else kinds)
    text = Text()
    for kind, look in STYLES.items():
        if kind not in shown:
            continue
        text.append(mark, style=look.terminal or "default")
        text.append(f" {kind}  ")
    text.append("current", style=STATE_TERMINAL["current"])
    text.append("  ")
    text.append("pending ?", style=STATE_TERMINAL["pending"])
    text.append("  ")
    text.append("non-finite", style=STATE_TERMINAL["nonfinite"])
    return text


class TraceDrawing:
    """A trace laid out once (per detail level and folding); `grid(...)` repaints it for one step.

    Building one runs `dot`: where a UI is waiting, build it in a worker thread. Without a
    `fold`, the most open folding that fits the box budget is drawn (fold.plan_fold).
    Drawings of one trace can share `numbers` (its formatted norms: most of the cost).
    """

    def __init__(self, trace: Trace, detail: str = "full", ascii: bool = False, labels: bool | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, fold: Fold | None = None, numbers: Numbers | None = None,
                 current_labels: bool = False, across: bool = False, label_rows: bool = False):
        if detail not in DETAILS:
            raise ValueError(f"detail must be one of {DETAILS}, not {detail!r}")
        self.trace = trace
        self.detail = detail
        self.fold = fold if fold is not None else plan_fold(trace.graph, module_budget=TERMINAL_MODULE_BUDGET)
        if labels is None:
            labels = detail == "full" and len(trace.graph.nodes) <= LABEL_LIMIT and self.fold.is_identity
        # `current_labels` (the stepper): only the current step's active edges show their
        # numbers: in rows of their own with `label_rows` (every edge has its spot, the
        # picture is taller), else beside their lines where blank cells allow
        self.active_labels_only = labels and current_labels and label_rows
        self.current_labels = labels and current_labels and not label_rows
        labels = labels and not self.current_labels
        self.labels = labels
        self._overlays: dict[int, list[int]] = {}  # edge j -> the flat cells its number is written in
        self._numbers = numbers if numbers is not None else Numbers(trace)  # shared: foldings reuse the norms
        # a folded model is laid out module by module, each distinct module once (compound.py)
        self.compound = any(key.startswith(MODULE) for key in self.fold.groups)
        self._labels = [node.label for node in trace.graph.nodes] if self.compound else []  # what ports say
        graph = trace.graph
        self._members = box_members(graph, self.fold)
        self._visible = visible_of(graph, self.fold, self._members)  # only what is drawn is worked out
        sizing = self._folded(sizing_look(trace, detail, labels, numbers=self._numbers, visible=self._visible))
        # ranks as columns, left to right: where every box has a border to put ports on (no
        # stubs), no edge label takes rows of its own, and no module frame (they go down)
        self.across = across and not self.compound and not labels and all(box.border for box in sizing.boxes)
        placed = lay_out(sizing, self.compound, timeout_s, tight=detail in TIGHT, across=self.across)
        self.layout = placed.layout
        if placed.alike:
            self.fold = replace(self.fold, note="; ".join(filter(None, [self.fold.note, alike_note(placed.alike)])))
        self._grid = rasterise(self.layout, sizing.boxes, sizing.edges, ascii)
        self._sizing = sizing
        self._shown: GraphLook | None = None
        for key, node in sizing.targets.items():
            if key.startswith(STUB):
                self._members[key] = [node]
        for key, src in sizing.stands_for.items():
            if key in sizing.targets:  # a port is repainted with the box it stands for
                self._members[key] = self._members.get(src, [sizing.targets[key]])
        self._boxes_of: list[list[str]] = [[] for _ in graph.nodes]  # box keys that show a node
        for key, inside in self._members.items():
            for node in inside:
                self._boxes_of[node].append(key)
        self._edges_of: list[list[int]] = [[] for _ in graph.nodes]  # edge indices touching a node
        for j in range(len(sizing.edges)):
            for child, position in sizing.edges_drawn_by(j):
                self._edges_of[child].append(j)
                self._edges_of[graph.nodes[child].inputs[position]].append(j)
        self._box_looks: dict[str, tuple] = {}  # what repaint() last drew, per box and edge
        self._edge_looks: dict[int, tuple] = {}

    @property
    def width(self) -> int:
        """Columns of the drawing."""
        return self._grid.width

    @property
    def height(self) -> int:
        """Rows of the drawing."""
        return self._grid.height

    def runs(self, y: int) -> list[tuple[str, str]]:
        """Row y as (text, style key) runs, as last painted."""
        return self._grid.runs(y)

    def least_across_width(self) -> int:
        """Fewer columns than this drawing's ranks could take left to right: per rank its
        narrowest box, and a column between ranks (to skip laying out what cannot fit)."""
        ranks: dict[int, int] = {}
        for box in self._sizing.boxes:
            rank = self.layout.boxes[box.key].x if self.across else self.layout.boxes[box.key].y
            width = box_size(box, 1, across=box.border)[0]
            ranks[rank] = min(ranks.get(rank, width), width)
        return sum(ranks.values()) + max(len(ranks) - 1, 0)

    def _folded(self, look: GraphLook) -> GraphLook:
        folded = fold_look(self.trace.graph, look, self.fold, self.detail)
        return bridge(folded, self._labels) if self.compound else folded

    def look(self, state: StepState | None = None, mode: str | None = None, wrt: str | None = None,
             output: str | None = None) -> GraphLook:
        """The boxes and edges of one step (state) or of a finished pass (mode), folded."""
        view = make_view(self.trace, state, mode, wrt, output)
        return self._folded(trace_look(self.trace, view, self.detail, self.labels, numbers=self._numbers,
                                       visible=self._visible))

    def grid(self, state: StepState | None = None, mode: str | None = None, wrt: str | None = None,
             output: str | None = None) -> Grid:
        """The drawing's grid repainted for this step, in place; only what changed is redrawn."""
        look = self.look(state, mode, wrt, output)
        grid = self._grid
        changed = [box for i, box in enumerate(look.boxes) if self._shown is None or self._shown.boxes[i] != box]
        grid.paint_boxes(changed)
        for j, edge in enumerate(look.edges):
            if self._shown is None or self._shown.edges[j] != edge:
                grid.paint_edge(j, edge.style, self._shown_label(edge.style, edge.label))
        if self.current_labels:
            view = make_view(self.trace, state, mode, wrt, output)
            for j, edge in enumerate(look.edges):
                self._overlay(j, edge.style, view)
        self._shown = look
        self._box_looks.clear()
        self._edge_looks.clear()
        return grid

    def repaint(self, state: StepState | None, nodes: Iterable[int]) -> set[int]:
        """Bring the boxes showing `nodes` (their own, their module's, their stubs) and the
        edges touching them to this step, in place; returns the rows that changed. The caller
        says which nodes may have changed."""
        trace, grid, numbers = self.trace, self._grid, self._numbers
        view = make_view(trace, state)
        self._shown = None  # grid() must repaint everything after this
        own: dict[int, BoxSpec] = {}

        def node_box(node_id: int) -> BoxSpec:
            if node_id not in own:
                node = trace.graph.nodes[node_id]
                lines, bad = box_text(numbers, node, view, self.detail)
                style = box_style(numbers, node, view)
                line_styles = tuple(style + ".nonfinite" if flag else None for flag in bad) if any(bad) else ()
                own[node_id] = BoxSpec(f"n{node_id}", lines, style, None, line_styles)
            return own[node_id]

        def node_style(node_id: int) -> str:
            return own[node_id].style if node_id in own else box_style(numbers, trace.graph.nodes[node_id], view)

        rows: set[int] = set()
        edges: set[int] = set()
        keys: set[str] = set()
        for node_id in nodes:
            keys.update(self._boxes_of[node_id])
            edges.update(self._edges_of[node_id])
        boxes = []

        def box_look(key: str) -> tuple:
            if key.startswith("n"):
                box = node_box(int(key[1:]))
                return box.lines, box.style, box.line_styles
            if key in self._sizing.stands_for:  # a port: its text stays, its style is its box's
                return grid.boxes[key].lines, box_look(self._sizing.stands_for[key])[1], ()
            return folded_box(trace.graph, key, self._members[key], node_box, self.detail, node_style)

        for key in keys:
            look = box_look(key)
            if self._box_looks.get(key) != look:
                self._box_looks[key] = look
                boxes.append(replace(grid.boxes[key], lines=look[0], style=look[1], line_styles=look[2]))
                rect = self.layout.boxes[key]
                rows.update(range(rect.y, rect.y + rect.h))
        grid.paint_boxes(boxes)
        for j in sorted(edges):
            drawn = self._sizing.edges_drawn_by(j)
            style = merged_style(edge_style(numbers, child, position, view) for child, position in drawn)
            labelled = self.labels and grid.edges[j].label is not None and len(drawn) == 1
            label = self._shown_label(style, edge_label(numbers, *drawn[0], view)) if labelled else None
            if self._edge_looks.get(j) != (style, label):
                self._edge_looks[j] = (style, label)
                grid.paint_edge(j, style, label)
                rows.update((grid.edge_cells[j] // grid.width).tolist())
                rect = self.layout.labels.get(j)
                if rect is not None:
                    rows.update(range(rect.y, rect.y + rect.h))
            if self.current_labels:
                rows.update(self._overlay(j, style, view))
        return rows

    def _shown_label(self, style: str, label: str | None) -> str | None:
        """An edge's label as drawn: blank on an inactive edge where only active ones show."""
        if self.active_labels_only and label is not None and not style.startswith("edge.active"):
            return ""
        return label

    def _overlay(self, j: int, style: str, view) -> set[int]:
        """Edge j's number written beside its line when it is active, wiped when it is not
        (or changed); returns the rows touched. Written only into blank cells, one blank
        column from the line and from anything else, nearest the edge's source first."""
        grid = self._grid
        rows: set[int] = set()
        old = self._overlays.pop(j, None)
        text = ""
        if style.startswith("edge.active"):
            drawn = self._sizing.edges_drawn_by(j)
            if len(drawn) == 1:
                text = edge_label(self._numbers, *drawn[0], view)
        if old is not None:
            if text and "".join(grid.chars.flat[old].tolist()) == text:
                self._overlays[j] = old
                grid.styles.flat[old] = grid.style_id(style + ".label")
                return {cell // grid.width for cell in old}
            grid.chars.flat[old] = " "
            grid.styles.flat[old] = 0
            rows.update(cell // grid.width for cell in old)
        if not text:
            return rows
        cells = self._label_spot(j, text_width(text))
        if cells:
            grid.chars.flat[cells] = text_cells(text)
            grid.styles.flat[cells] = grid.style_id(style + ".label")
            self._overlays[j] = cells
            rows.add(cells[0] // grid.width)
        return rows

    def _label_spot(self, j: int, width: int) -> list[int]:
        """Flat cells for `width` characters beside a vertical stretch of edge j's line, right
        of it or else left, with a blank column on both sides (above or below a horizontal
        stretch first, when ranks go left to right); [] where there is no room."""
        grid = self._grid
        taken = {cell for cells in self._overlays.values() for cell in cells}

        def blank(cells: range) -> bool:
            return all(grid.chars.flat[c] == " " and grid.owners.flat[c] < 0 and c not in taken for c in cells)

        path = self.layout.paths[j]
        if self.layout.across:
            for (x0, y0), (x1, y1) in zip(path, path[1:]):
                if y0 != y1 or abs(x1 - x0) < width + 3:
                    continue
                left = min(x0, x1) + 1  # the text over the stretch, a column in from either end
                for y in (y0 - 1, y0 + 1):
                    if 0 <= y < grid.height and blank(range(y * grid.width + left, y * grid.width + left + width + 2)):
                        return list(range(y * grid.width + left + 1, y * grid.width + left + 1 + width))
        for (x0, y0), (x1, y1) in zip(path, path[1:]):
            if x0 != x1:
                continue
            step = 1 if y1 > y0 else -1
            for y in range(y0 + step, y1, step):
                for start in (x0 + 2, x0 - 1 - width):
                    lo, hi = start - 1, start + width + 1
                    if lo < 0 or hi > grid.width:
                        continue
                    row = y * grid.width
                    if blank(range(row + lo, row + hi)):
                        return list(range(row + start, row + start + width))
        return []

    def rect_of(self, node_id: int) -> Rect:
        """Where node `node_id`'s box lies in the grid (its module's box when folded)."""
        key = self.fold.box_of(node_id) or f"n{node_id}"
        return self.layout.boxes[key]

    def node_at(self, x: int, y: int) -> int | None:
        """The node whose box (or module box, or stub) covers cell (x, y), for mouse clicks."""
        owner = self._grid.owner_at(x, y)
        return self._sizing.node_of(owner[1]) if owner and owner[0] == "box" else None

    def edge_at(self, x: int, y: int) -> tuple[int, int] | None:
        """The edge (child id, input position) drawn at cell (x, y), or None."""
        owner = self._grid.owner_at(x, y)
        return self._sizing.edge_ids[owner[1]] if owner and owner[0] == "edge" else None

    def view(self, state: StepState | None = None, mode: str | None = None, wrt: str | None = None,
             output: str | None = None) -> GraphView:
        """A renderable of an independent copy of this step's grid."""
        return GraphView(self.grid(state, mode, wrt, output).copy())


def laid_out(trace: Trace, detail: str = "full", fold: Fold | None = None, ascii: bool = False,
             timeout_s: float = LAYOUT_BUDGET_S, numbers: Numbers | None = None,
             current_labels: bool = False, across: bool = False, label_rows: bool = False) -> TraceDrawing:
    """A TraceDrawing of `fold`; when `dot` would take longer than `timeout_s`, one of a
    folding a quarter the size (again if need be), whose note says what happened and how
    to open more: never a long wait, never a picture without edges."""
    fold = fold if fold is not None else plan_fold(trace.graph, module_budget=TERMINAL_MODULE_BUDGET)
    while True:
        try:
            return TraceDrawing(trace, detail, ascii, timeout_s=timeout_s, fold=fold, numbers=numbers,
                                current_labels=current_labels, across=across, label_rows=label_rows)
        except LayoutTimeout:
            boxes = box_count(trace.graph, list(fold.groups), fold.stubs)
            budget = min(boxes, NODE_LIMIT) // 4
            if budget < 4:
                raise
            smaller = plan_fold(trace.graph, budget=budget, module_budget=budget)
            why = f"laying out {boxes} boxes took over {timeout_s:.0f} s"
            fold = replace(smaller, note=f"{why}: {smaller.note}" if smaller.note else why)


# trace --graph prints one finished view with the forms it has always had; line+ is the stepper's
PRINTED_FORMS = tuple(detail for detail in WITH_VALUES if detail != "line+")


def fitted(trace: Trace, width: int, fold: Fold | None = None, ascii: bool = False,
           forms: tuple[str, ...] = PRINTED_FORMS) -> TraceDrawing:
    """The most detailed of `forms` whose drawing is at most `width` columns wide (the last
    one when none is): what `trace --graph` prints; an exporter picks its form the same way
    (`fitted(trace, columns).detail`)."""
    for detail in forms:
        drawing = laid_out(trace, detail, fold, ascii)
        if drawing.width <= width:
            break
    return drawing


def render_trace_graph(trace: Trace, state: StepState | None = None, detail: str = "full", ascii: bool = False,
                       mode: str | None = None, show_legend: bool = True, wrt: str | None = None,
                       output: str | None = None, fold: Fold | None = None, width: int | None = None) -> Group:
    """The trace's graph drawn for the terminal, with a legend: at a step (`state`), or with
    a finished pass (`mode`; by default reverse, else tangent, else forward; the tangent
    pass of `wrt` and the reverse pass of `output`, by default the first). Big graphs are
    folded to fit (fold.plan_fold), with a line saying how. With `width`, the most detailed
    form with values that is no wider (`fitted`)."""
    drawing = fitted(trace, width, fold, ascii) if width is not None else laid_out(trace, detail, fold, ascii)
    parts = [drawing.view(state, mode, wrt, output)]
    if drawing.fold.note:
        parts.append(Text(f"({drawing.fold.note})", style="dim"))
    if show_legend:
        kinds = {node_kind(trace, node) for node in trace.graph.nodes}
        if any(box.style.startswith("module") for box in drawing._sizing.boxes):
            kinds.add("module")
        parts.append(Legend(kinds, ascii))
    return Group(*parts)
