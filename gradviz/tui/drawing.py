"""The graph pane's drawings: gradviz.draw's Graphviz layout, or the layered stand-in.

Both answer the same small interface (a Drawing): size, styled runs per row, the node
under a cell, a node's box, and `paint(scene)`, which brings the picture to a step and
returns the rows it changed (None: all). Textual-free.

gradviz.draw's `TraceDrawing.grid(state)` rebuilds the whole look each step (50 ms at
1000 nodes here); DotDrawing instead repaints only the boxes and edges of the nodes
`changed_nodes` names, with draw's own look functions, so a step stays in milliseconds.
"""

from __future__ import annotations

from typing import Protocol

from rich.style import Style

from gradviz.core.trace import Trace
from gradviz.errors import GradvizError
from gradviz.tui.scene import Scene, changed_nodes

LAYOUT_TIMEOUT_S = 60.0


class Drawing(Protocol):
    """What the graph pane paints."""

    detail: str
    width: int
    height: int
    note: str

    def paint(self, scene: Scene) -> set[int] | None: ...
    def runs(self, y: int) -> list[tuple[str, str]]: ...
    def style(self, key: str) -> Style: ...
    def node_at(self, x: int, y: int) -> int | None: ...
    def box(self, node: int) -> tuple[int, int, int, int] | None: ...


class DotDrawing:
    """gradviz.draw's layout (dot, orthogonal edges), repainted node by node per step."""

    def __init__(self, trace: Trace, detail: str = "full", timeout_s: float = LAYOUT_TIMEOUT_S):
        from gradviz.draw.terminal import Theme, TraceDrawing

        self.trace = trace
        self.detail = detail
        self.note = ""
        self._drawing = TraceDrawing(trace, detail, timeout_s=timeout_s)
        self.grid = self._drawing.grid(None)
        self.width, self.height = self.grid.width, self.grid.height
        self._theme = Theme()
        self._edges_of: list[list[int]] = [[] for _ in trace.graph.nodes]
        j = 0
        for node in trace.graph.nodes:
            for source in node.inputs:
                self._edges_of[node.id].append(j)
                self._edges_of[source].append(j)
                j += 1
        self._scene: Scene | None = None
        self._boxes: dict[int, tuple] = {}
        self._edge_looks: dict[int, tuple] = {}

    def paint(self, scene: Scene) -> set[int] | None:
        """Repaint for `scene`: the changed nodes' boxes and edges, or everything on a new pass."""
        changed = changed_nodes(self._scene, scene) if self._scene is not None else None
        self._scene = scene
        nodes = range(len(self.trace.graph.nodes)) if changed is None else changed
        rows = self._repaint(scene, nodes)
        return None if changed is None else rows

    def _repaint(self, scene: Scene, nodes) -> set[int]:
        from gradviz.draw.look import box_style, box_text, edge_label, edge_style, make_view

        trace, grid = self.trace, self.grid
        view = make_view(trace, scene.state)
        rows: set[int] = set()
        edges: set[int] = set()
        for node_id in nodes:
            node = trace.graph.nodes[node_id]
            lines, bad = box_text(trace, node, view, self.detail)
            style = box_style(trace, node, view)
            line_styles = tuple(style + ".nonfinite" if flag else None for flag in bad) if any(bad) else ()
            look = (lines, style, line_styles)
            if self._boxes.get(node_id) != look:
                self._boxes[node_id] = look
                grid.paint_box(f"n{node_id}", lines, style, line_styles)
                rect = grid.layout.boxes[f"n{node_id}"]
                rows.update(range(rect.y, rect.y + rect.h))
            edges.update(self._edges_of[node_id])
        labels = self._drawing.labels
        for j in edges:
            child, position = self._drawing_edge(j)
            source = trace.graph.nodes[child].inputs[position]
            style = edge_style(trace, child, source, view)
            label = edge_label(trace, child, position, view) if labels and grid.edges[j].label is not None else None
            if self._edge_looks.get(j) != (style, label):
                self._edge_looks[j] = (style, label)
                grid.paint_edge(j, style, label)
                cells = grid.edge_cells[j] if j < len(grid.edge_cells) else ()
                rows.update(int(i) // grid.width for i in cells)
                rect = grid.layout.labels.get(j)
                if rect is not None:
                    rows.update(range(rect.y, rect.y + rect.h))
        return rows

    def _drawing_edge(self, j: int) -> tuple[int, int]:
        if not hasattr(self, "_edge_ids"):
            self._edge_ids = [(node.id, p) for node in self.trace.graph.nodes for p in range(len(node.inputs))]
        return self._edge_ids[j]

    def runs(self, y: int) -> list[tuple[str, str]]:
        return self.grid.runs(y)

    def style(self, key: str) -> Style:
        return self._theme.style(key)

    def node_at(self, x: int, y: int) -> int | None:
        owner = self.grid.owner_at(x, y)
        if owner is None or owner[0] != "box":
            return None
        return int(str(owner[1])[1:])

    def box(self, node: int) -> tuple[int, int, int, int] | None:
        rect = self.grid.layout.boxes.get(f"n{node}")
        return None if rect is None else (rect.x, rect.y, rect.w, rect.h)


def build_drawing(trace: Trace, detail: str = "full", timeout_s: float = LAYOUT_TIMEOUT_S) -> Drawing:
    """The Graphviz drawing, or the layered stand-in (with a note) when dot is missing or too slow."""
    from gradviz.tui.picture import LayeredDrawing

    try:
        return DotDrawing(trace, detail, timeout_s)
    except ImportError:
        return LayeredDrawing(trace, detail)
    except GradvizError as exc:
        drawing = LayeredDrawing(trace, detail)
        drawing.note = f"simple layout: {exc.message}"
        return drawing
