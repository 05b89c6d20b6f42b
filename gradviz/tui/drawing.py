"""The graph pane's drawings: gradviz.draw's Graphviz layout, or the layered stand-in.

Both answer the same small interface (a Drawing): size, styled runs per row, the node
under a cell, a node's box, and `paint(scene)`, which brings the picture to a step and
returns the rows it changed (None: all). Textual-free.

gradviz.draw's `TraceDrawing.grid(state)` builds the whole look each step (O(nodes));
DotDrawing repaints only the boxes and edges of the nodes `changed_nodes` names, with
draw's own look functions, so a step costs the same on 10 nodes or 3000.
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
        from gradviz.draw.look import Numbers
        from gradviz.draw.terminal import Theme, TraceDrawing

        self.trace = trace
        self.detail = detail
        self.note = ""
        self._drawing = TraceDrawing(trace, detail, timeout_s=timeout_s)
        self.grid = self._drawing.grid(None)
        self.width, self.height = self.grid.width, self.grid.height
        self._theme = Theme()
        self._numbers = Numbers(trace)
        self._edge_ids: list[tuple[int, int]] = []
        self._edges_of: list[list[int]] = [[] for _ in trace.graph.nodes]
        for node in trace.graph.nodes:
            for position, source in enumerate(node.inputs):
                j = len(self._edge_ids)
                self._edge_ids.append((node.id, position))
                self._edges_of[node.id].append(j)
                self._edges_of[source].append(j)
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
        from gradviz.draw.layout import BoxSpec
        from gradviz.draw.look import box_style, box_text, edge_label, edge_style, make_view

        trace, grid, numbers = self.trace, self.grid, self._numbers
        view = make_view(trace, scene.state)
        rows: set[int] = set()
        edges: set[int] = set()
        boxes = []
        for node_id in nodes:
            node = trace.graph.nodes[node_id]
            lines, bad = box_text(numbers, node, view, self.detail)
            style = box_style(numbers, node, view)
            line_styles = tuple(style + ".nonfinite" if flag else None for flag in bad) if any(bad) else ()
            look = (lines, style, line_styles)
            if self._boxes.get(node_id) != look:
                self._boxes[node_id] = look
                old = grid.boxes[f"n{node_id}"]
                boxes.append(BoxSpec(old.key, lines, style, old.cluster, line_styles, old.border))
                rect = grid.layout.boxes[old.key]
                rows.update(range(rect.y, rect.y + rect.h))
            edges.update(self._edges_of[node_id])
        grid.paint_boxes(boxes)
        labels = self._drawing.labels
        for j in sorted(edges):
            child, position = self._edge_ids[j]
            style = edge_style(numbers, child, position, view)
            label = edge_label(numbers, child, position, view) if labels and grid.edges[j].label is not None else None
            if self._edge_looks.get(j) != (style, label):
                self._edge_looks[j] = (style, label)
                grid.paint_edge(j, style, label)
                rows.update((grid.edge_cells[j] // grid.width).tolist())
                rect = grid.layout.labels.get(j)
                if rect is not None:
                    rows.update(range(rect.y, rect.y + rect.h))
        return rows

    def runs(self, y: int) -> list[tuple[str, str]]:
        return self.grid.runs(y)

    def style(self, key: str) -> Style:
        return self._theme.style(key)

    def node_at(self, x: int, y: int) -> int | None:
        return self._drawing.node_at(x, y)

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
