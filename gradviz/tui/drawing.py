"""The graph pane's drawings: gradviz.draw's Graphviz layout, or the layered stand-in.

Both answer the same small interface (a Drawing): size, styled runs per row, the node
under a cell, a node's box, and `paint(scene)`, which brings the picture to a step and
returns the rows it changed (None: all). Textual-free.

gradviz.draw's `TraceDrawing.grid(state)` builds the whole look each step (O(nodes));
DotDrawing asks it to `repaint` only the nodes `changed_nodes` names, so a step costs
the same on 10 nodes or 3000.
"""

from __future__ import annotations

from typing import Protocol

from rich.style import Style

from gradviz.core.trace import Trace
from gradviz.draw.dot import LAYOUT_BUDGET_S
from gradviz.draw.fold import Fold, FoldChoice
from gradviz.draw.look import Numbers
from gradviz.errors import GradvizError
from gradviz.tui.scene import Scene, changed_nodes



class Drawing(Protocol):
    """What the graph pane paints."""

    detail: str
    across: bool  # ranks left to right (else top to bottom)
    width: int
    height: int
    note: str
    choice: FoldChoice  # the folding asked for (draw/fold.py)
    fold: Fold | None  # the folding drawn (None: every node its own box)

    def paint(self, scene: Scene) -> set[int] | None: ...
    def runs(self, y: int) -> list[tuple[str, str]]: ...
    def least_across_width(self) -> int: ...  # a floor on the columns its ranks take left to right
    def style(self, key: str) -> Style: ...
    def node_at(self, x: int, y: int) -> int | None: ...
    def box(self, node: int) -> tuple[int, int, int, int] | None: ...


class DotDrawing:
    """gradviz.draw's layout (dot, orthogonal edges), repainted node by node per step."""

    def __init__(self, trace: Trace, detail: str = "full", timeout_s: float = LAYOUT_BUDGET_S,
                 choice: FoldChoice | None = None, numbers: Numbers | None = None, across: bool = False,
                 label_rows: bool = False):
        from gradviz.draw.terminal import Theme, laid_out

        self.trace = trace
        self.detail = detail
        self.choice = choice or FoldChoice()
        # edge numbers on the current node's edges only (the inspector lists them all): in
        # rows of their own with `label_rows` (each edge has its spot), else beside the lines
        # where there is room, so the full form fits more often
        self._drawing = laid_out(trace, detail, self.choice.plan(trace.graph), timeout_s=timeout_s, numbers=numbers,
                                 current_labels=True, across=across, label_rows=label_rows)
        self.across = self._drawing.across  # not for a folded model's module frames
        self.fold = self._drawing.fold  # a smaller one than asked for when dot was too slow
        self.note = self.fold.note
        self._drawing.grid(None)
        self.width, self.height = self._drawing.width, self._drawing.height
        self._theme = Theme()
        self._scene: Scene | None = None

    def paint(self, scene: Scene) -> set[int] | None:
        """Repaint for `scene`: the changed nodes' boxes and edges, or everything on a new pass."""
        changed = changed_nodes(self._scene, scene) if self._scene is not None else None
        self._scene = scene
        nodes = range(len(self.trace.graph.nodes)) if changed is None else changed
        rows = self._drawing.repaint(scene.state, nodes)
        return None if changed is None else rows

    def runs(self, y: int) -> list[tuple[str, str]]:
        return self._drawing.runs(y)

    def least_across_width(self) -> int:
        return self._drawing.least_across_width()

    def style(self, key: str) -> Style:
        return self._theme.style(key)

    def node_at(self, x: int, y: int) -> int | None:
        return self._drawing.node_at(x, y)

    def box(self, node: int) -> tuple[int, int, int, int] | None:
        try:
            rect = self._drawing.rect_of(node)
        except KeyError:
            return None
        return rect.x, rect.y, rect.w, rect.h


def build_drawing(trace: Trace, detail: str = "full", timeout_s: float = LAYOUT_BUDGET_S,
                  choice: FoldChoice | None = None, numbers: Numbers | None = None, across: bool = False,
                  label_rows: bool = False) -> Drawing:
    """The Graphviz drawing (folded as `choice` asks; `across`: ranks left to right), or the
    layered stand-in (with a note, top to bottom) when dot is missing or too slow.
    `numbers`: the trace's formatted numbers, shared by its drawings."""
    from gradviz.tui.picture import LayeredDrawing

    try:
        return DotDrawing(trace, detail, timeout_s, choice, numbers, across, label_rows)
    except ImportError:
        drawing = LayeredDrawing(trace, detail)
    except GradvizError as exc:
        drawing = LayeredDrawing(trace, detail)
        drawing.note = f"simple layout: {exc.message}"
    drawing.choice = choice or FoldChoice()  # what was asked for, though the stand-in does not fold
    return drawing
