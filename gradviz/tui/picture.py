"""The layered stand-in drawing, for when Graphviz's `dot` is missing or too slow.

Boxes in rows by depth (leaves on top), no edges: each box's definition names its
inputs. A LayeredDrawing restyles node cells per step (pending dim, current highlighted,
non-finite red) and writes each node's numbers into its slots; the characters of the
layout never change, so a step repaints a few rows. Textual-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.style import Style

from gradviz.core.trace import Trace
from gradviz.tui.scene import Scene, changed_nodes

from gradviz.draw.look import DETAILS

# the stand-in draws the compact forms as its nearest own: boxes with slots, or one line
STAND_IN = {"compact": "full", "line+": "ops", "line": "ops"}
NUMBER_WIDTH = 10
# The number lines a box has at each detail: the value and the current pass's derivative,
# or one line with the number the current phase computes.
SLOTS = {"full": ("value", "derivative"), "ops": ("current",), "dots": ()}
H_GAP = 2
V_GAP = 1


@dataclass(frozen=True)
class Box:
    """Where a node sits: its rectangle and the slot its number is written into."""

    node: int
    x: int
    y: int
    width: int
    height: int
    slots: tuple[tuple[str, int, int, int], ...]  # (kind, x, y, width): 'value', 'derivative', 'current'


@dataclass
class GraphPicture:
    """Rows of characters plus, per row, the node spans that restyle with the state."""

    detail: str
    rows: list[str]
    boxes: dict[int, Box]
    row_spans: list[list[tuple[int, int, int]]] = field(default_factory=list)  # (x0, x1, node)

    def __post_init__(self) -> None:
        if not self.row_spans:
            self.row_spans = [[] for _ in self.rows]
            for box in self.boxes.values():
                for y in range(box.y, box.y + box.height):
                    self.row_spans[y].append((box.x, box.x + box.width, box.node))
            for spans in self.row_spans:
                spans.sort()

    @property
    def width(self) -> int:
        return max((len(r) for r in self.rows), default=0)

    @property
    def height(self) -> int:
        return len(self.rows)

    def node_at(self, x: int, y: int) -> int | None:
        """The node owning cell (x, y), or None."""
        if not 0 <= y < len(self.row_spans):
            return None
        for x0, x1, node in self.row_spans[y]:
            if x0 <= x < x1:
                return node
        return None

    def rows_of(self, node: int) -> range:
        """The rows a node's box covers (empty when it is not drawn)."""
        box = self.boxes.get(node)
        return range(0) if box is None else range(box.y, box.y + box.height)


def build_picture(trace: Trace, detail: str = "full") -> GraphPicture:
    """The graph laid out at `detail` ('full' boxes, 'ops' names, 'dots')."""
    if detail not in DETAILS:
        raise ValueError(f"unknown detail level {detail!r}; one of {', '.join(DETAILS)}")
    return layered_picture(trace, STAND_IN.get(detail, detail))


STYLES = {
    "lines": Style(dim=True),
    "known": Style(),
    "pending": Style(dim=True),
    "off": Style(dim=True),
    "current": Style(reverse=True, bold=True),
    "bad": Style(color="red", bold=True),
}


class LayeredDrawing:
    """A GraphPicture painted for a Scene: the Drawing interface of gradviz.tui.drawing."""

    def __init__(self, trace: Trace, detail: str = "full"):
        self.picture = build_picture(trace, detail)
        self.detail = detail
        self.width, self.height = self.picture.width, self.picture.height
        self.note = ""
        self.fold = None  # the layered stand-in draws every node
        self.across = False  # and draws ranks top to bottom only
        self._scene: Scene | None = None

    def paint(self, scene: Scene) -> set[int] | None:
        """Take the step's scene; the rows of the nodes that changed look (None: all)."""
        changed = changed_nodes(self._scene, scene) if self._scene is not None else None
        self._scene = scene
        if changed is None:
            return None
        return {y for node in changed for y in self.picture.rows_of(node)}

    def least_across_width(self) -> int:
        """No width is enough: the stand-in draws top to bottom only."""
        return 1 << 30

    def runs(self, y: int) -> list[tuple[str, str]]:
        """Row y as (text, style key) runs, numbers written into their slots."""
        scene, picture = self._scene, self.picture
        text = picture.rows[y]
        if scene is None:
            return [(text, "lines")]
        spans = picture.row_spans[y]
        chars = list(text.ljust(max((x1 for _, x1, _ in spans), default=0)))
        runs: list[tuple[str, str]] = []
        cursor = 0
        for x0, x1, node in spans:
            for kind, x, sy, w in picture.boxes[node].slots:
                if sy == y:
                    chars[x:x + w] = list(scene.slot_text(kind, node)[:w].center(w))
            if x0 > cursor:
                runs.append(("".join(chars[cursor:x0]), "lines"))
            runs.append(("".join(chars[x0:x1]), scene.look(node)))
            cursor = x1
        if cursor < len(chars):
            runs.append(("".join(chars[cursor:]), "lines"))
        return runs

    def style(self, key: str) -> Style:
        return STYLES.get(key, Style())

    def node_at(self, x: int, y: int) -> int | None:
        return self.picture.node_at(x, y)

    def box(self, node: int) -> tuple[int, int, int, int] | None:
        b = self.picture.boxes.get(node)
        return None if b is None else (b.x, b.y, b.width, b.height)


def _layers(trace: Trace) -> list[list[int]]:
    """Nodes by longest path from the leaves, each layer ordered near its inputs."""
    depth: list[int] = []
    for node in trace.graph.nodes:
        depth.append(1 + max((depth[i] for i in node.inputs), default=-1))
    layers: list[list[int]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for node_id, d in enumerate(depth):
        layers[d].append(node_id)
    order: dict[int, float] = {}
    for layer in layers:
        def centre(n: int) -> float:
            ins = [order[i] for i in trace.graph.nodes[n].inputs if i in order]
            return sum(ins) / len(ins) if ins else float(n)
        layer.sort(key=centre)
        for position, n in enumerate(layer):
            order[n] = position
    return layers


def _box_text(trace: Trace, node_id: int, detail: str) -> list[str]:
    node = trace.graph.nodes[node_id]
    if detail == "full":
        return [node.definition if not node.is_leaf else f"{node.label} ({node.kind})"]
    if detail == "ops":
        return [node.label if node.is_leaf else f"{node.label} {node.op}"]
    return [f"● {node.label}"]


def layered_picture(trace: Trace, detail: str = "full") -> GraphPicture:
    """Boxes in rows, leaves on top and outputs at the bottom (a stand-in for gradviz.draw)."""
    framed = detail != "dots"
    sized: dict[int, tuple[list[str], int, int]] = {}
    for node in trace.graph.nodes:
        lines = _box_text(trace, node.id, detail)
        inner = max(max(len(t) for t in lines), NUMBER_WIDTH if framed else 0)
        width = inner + 4 if framed else inner
        height = len(lines) + len(SLOTS[detail]) + 2 if framed else 1
        sized[node.id] = (lines, width, height)
    layers = _layers(trace)
    widths = [sum(sized[n][1] for n in layer) + H_GAP * (len(layer) - 1) for layer in layers]
    total_width = max(widths, default=0)
    canvas: list[list[str]] = []
    boxes: dict[int, Box] = {}
    y = 0
    for layer, layer_width in zip(layers, widths):
        height = max(sized[n][2] for n in layer)
        for _ in range(height + V_GAP):
            canvas.append([" "] * total_width)
        x = (total_width - layer_width) // 2
        for n in layer:
            lines, width, h = sized[n]
            boxes[n] = _paint_box(canvas, n, x, y, width, h, lines, SLOTS[detail] if framed else None)
            x += width + H_GAP
        y += height + V_GAP
    return GraphPicture(detail, ["".join(row).rstrip() for row in canvas], boxes)


def _paint_box(canvas: list[list[str]], node: int, x: int, y: int, width: int, height: int,
               lines: list[str], slots: tuple[str, ...] | None) -> Box:
    def put(row: int, col: int, text: str) -> None:
        canvas[row][col:col + len(text)] = list(text)

    if slots is None:
        put(y, x, lines[0])
        return Box(node, x, y, width, 1, ())
    put(y, x, "╭" + "─" * (width - 2) + "╮")
    for i, text in enumerate(lines):
        put(y + 1 + i, x, "│ " + text.center(width - 4) + " │")
    first_slot = y + 1 + len(lines)
    for i in range(len(slots)):
        put(first_slot + i, x, "│" + " " * (width - 2) + "│")
    put(y + height - 1, x, "╰" + "─" * (width - 2) + "╯")
    placed = tuple((kind, x + 2, first_slot + i, width - 4) for i, kind in enumerate(slots))
    return Box(node, x, y, width, height, placed)
