"""The tape: the lecture's trace table (node, definition, value, tangents, adjoints).

Rows fill in as the steps advance; the current row is highlighted and kept in view;
clicking a row selects its node. The header row stays put while the rows scroll.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from rich.cells import cell_len
from rich.segment import Segment
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from gradviz.core.fmt import fmt_value
from gradviz.core.stats import facts_of, l2_norm
from gradviz.textfit import cut_end, cut_start
from gradviz.tui.scene import Scene, changed_nodes

MAX_LABEL = 40
MAX_DEFINITION = 120  # a definition takes the width the pane has, up to this
MIN_LABEL, MIN_DEFINITION = 6, 10  # what a label / definition keeps when the pane is narrow
NUMBER = (7, 24)  # a number column's width: its widest number or header, within these
GAP = 2
MARGIN = 1  # a blank column after the last number: a number against the border reads as cut


def _fit(text: str, width: int, right: bool = False, kind: str = "") -> str:
    """A cell: a name cut from the left (its tail tells rows apart), any other text at its
    end, both at a word's edge (gradviz.textfit); numbers are never cut (plan_columns)."""
    if cell_len(text) > width:
        text = cut_start(text, width) if kind == "label" else cut_end(text, width)
    pad = " " * max(0, width - cell_len(text))
    return pad + text if right else text + pad


def row_name(node) -> str:
    """A row's name: the node's label, after its module's path where the label does not
    already say it (`blocks.3.attn/softmax_3`; `fc1`, `blocks.0.ln1.weight` as they are)."""
    module = node.meta.get("module") or ""
    if not module or node.label == module or node.label.startswith(module + "."):
        return node.label
    return f"{module}/{node.label}"


MEASURED = 2000  # numbers measured one by one; past these a scalar counts as its widest
WIDEST_SCALAR = len("-999999.9999")  # fmt_scalar's widest: e-notation from 1e6 on


def _column_width(header: str, column, norm: Callable[[Any], float] = l2_norm) -> int:
    """A number column's width: its header and its widest number, within NUMBER (`norm`:
    the trace's memo's, so each tensor's norm is taken once). In a long column the scalars
    after the first MEASURED count as WIDEST_SCALAR wide instead of being formatted: 100,000
    of them took 3 s before the first frame."""
    widest = max(5, cell_len(header))
    for count, value in enumerate(column):
        if value is None:
            continue
        if count >= MEASURED and np.size(value) == 1:
            widest = max(widest, WIDEST_SCALAR)
        else:
            widest = max(widest, cell_len(fmt_value(value, norm=norm)))
            if widest >= NUMBER[1]:
                return NUMBER[1]
    return max(NUMBER[0], widest)


def plan_columns(label: int, definition: int, numbers: list[int], width: int | None) -> tuple[int, int] | None:
    """The label and definition widths that leave every number column whole in `width`
    cells (None: unknown, take the natural widths), cutting the wider text column first;
    None when even the narrowest texts leave no room for the numbers."""
    needed = sum(numbers) + GAP * (len(numbers) + 1) + MARGIN  # gaps between all len(numbers) + 2 columns
    if width is None or width <= 0:
        return label, definition
    room = width - needed
    if room >= label + definition:
        return label, definition
    if room < min(label, MIN_LABEL) + min(definition, MIN_DEFINITION):
        return None
    # cut the wider of the two first, down to the other's width, then both together
    label_w, definition_w = label, definition
    while label_w + definition_w > room:
        if definition_w >= label_w and definition_w > min(definition, MIN_DEFINITION):
            definition_w -= 1
        elif label_w > min(label, MIN_LABEL):
            label_w -= 1
        else:
            definition_w -= 1
    return label_w, definition_w


class Tape(ScrollView, can_focus=True):
    """The trace table, one row per non-constant node, filled in up to the current step."""

    COMPONENT_CLASSES = {"tape--header", "tape--pending", "tape--current", "tape--bad", "tape--selected"}
    DEFAULT_CSS = """
    Tape > .tape--header { text-style: bold; color: $text; }
    Tape > .tape--pending { color: $text-disabled; }
    Tape > .tape--current { background: $accent 50%; text-style: bold; }
    Tape > .tape--selected { text-style: underline; }
    Tape > .tape--bad { color: $error; text-style: bold; }
    """

    class RowClicked(Message):
        """A row was clicked."""

        def __init__(self, node: int) -> None:
            super().__init__()
            self.node = node

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.scene: Scene | None = None
        self.selected: int | None = None
        self.nodes: list[int] = []
        self.row_of: dict[int, int] = {}
        self.columns: list[tuple[str, str, str | None, int]] = []  # (header, kind, key, width)
        self._rows: dict[int, tuple[tuple, Strip]] = {}
        self._widths: tuple[int, int] | None = None
        self._number_widths: dict[tuple[str, str | None], int] = {}

    def _width(self, kind: str, key: str | None) -> int:
        """A number column's width, measured once per trace and column."""
        if (kind, key) not in self._number_widths:
            trace = self.scene.trace  # type: ignore[union-attr]
            header = {"value": "value", "tangent": f"∂·/∂{key}", "adjoint": f"∂{self._shown(key)}/∂·"}[kind]
            column = trace.values if kind == "value" else (trace.tangents if kind == "tangent" else trace.adjoints)[key]
            self._number_widths[(kind, key)] = _column_width(header, [column[n] for n in self.nodes],
                                                             facts_of(trace).norm)
        return self._number_widths[(kind, key)]

    def _shown(self, output: str | None) -> str | None:
        """The output as its column names it: c₃ where the name c was assigned again."""
        return self.scene.trace.graph.shown_output(output) if output else output  # type: ignore[union-attr]

    def natural_width(self) -> int:
        """The table's width with every column whole (what the pane would like to be)."""
        if self.scene is None:
            return 0
        columns = self._layout(self.scene, None)
        return sum(c[3] for c in columns) + GAP * (len(columns) - 1) + MARGIN

    def _layout(self, scene: Scene, width: int | None = -1) -> list[tuple[str, str, str | None, int]]:
        """Every column at its content's width when the pane has room (all tangent
        columns side by side, as the lecture's table); else only the passes in play,
        and the wider of node and definition cut first, never a number."""
        trace = scene.trace
        if self._widths is None:  # measured once per trace: a step must not cost O(nodes)
            labels = max((cell_len(row_name(trace.graph.nodes[n])) for n in self.nodes), default=4)
            definitions = max((cell_len(trace.graph.nodes[n].definition) for n in self.nodes), default=10)
            self._widths = (min(MAX_LABEL, max(4, labels)), min(MAX_DEFINITION, max(10, definitions)))
        label, definition = self._widths
        if width == -1:  # the pane's own width
            width = self.scrollable_content_region.width or None
        inputs, outputs = list(trace.tangents), list(trace.adjoints)
        choices = [(inputs, outputs)]
        if len(inputs) > 1 or len(outputs) > 1:
            choices.append(([scene.wrt] if inputs else [], outputs if len(outputs) <= 1 else [scene.output]))
        # still too wide: only the column the phase computes (values, the tangent or the adjoint in play)
        if scene.phase == "reverse":
            choices.append(([], [scene.output] if outputs else []))
        elif scene.phase == "tangent":
            choices.append(([scene.wrt], []))
        else:
            choices.append(([], []))
        plan = None
        for tangent_keys, adjoint_keys in choices:
            if len(tangent_keys) + len(adjoint_keys) > 64:  # a model with very many inputs
                continue
            numbers = [self._width("value", None)] + [self._width("tangent", k) for k in tangent_keys] + \
                [self._width("adjoint", k) for k in adjoint_keys]
            plan = plan_columns(label, definition, numbers, width)
            if plan is not None:
                break
        if plan is None:  # nothing fits whole: the passes in play, the texts at their least
            plan = (min(label, MIN_LABEL), min(definition, MIN_DEFINITION))
        label_w, definition_w = plan
        columns = [("node", "label", None, label_w), ("definition", "definition", None, definition_w),
                   ("value", "value", None, self._width("value", None))]
        columns += [(f"∂·/∂{key}", "tangent", key, self._width("tangent", key)) for key in tangent_keys]
        columns += [(f"∂{self._shown(key)}/∂·", "adjoint", key, self._width("adjoint", key)) for key in adjoint_keys]
        return columns

    def show(self, scene: Scene, selected: int | None) -> None:
        """Move to a new step: repaint the rows that changed and keep the current row in view."""
        old, old_selected = self.scene, self.selected
        self.scene, self.selected = scene, selected
        if old is None or old.trace is not scene.trace:
            self.nodes = [n.id for n in scene.trace.graph.nodes if n.op != "const"]
            self.row_of = {n: i for i, n in enumerate(self.nodes)}
            self._rows.clear()
            self._widths = None
            self._number_widths = {}
        columns = self._layout(scene)
        changed = changed_nodes(old, scene) if old is not None else None
        if columns != self.columns or changed is None:
            self.columns = columns
            width = sum(c[3] for c in columns) + GAP * (len(columns) - 1)
            self.virtual_size = Size(width, len(self.nodes) + 1)
            self.refresh()
        else:
            for node in changed | {n for n in (old_selected, selected) if n is not None}:
                if node in self.row_of:
                    self.refresh_lines(self.row_of[node] + 1, 1)
        self.keep_in_view()

    def on_resize(self) -> None:
        if self.scene is not None:  # the columns that fit depend on the width
            self.show(self.scene, self.selected)

    def keep_in_view(self) -> None:
        """Centre the focus row (selected, else current) below the header; a function of k alone."""
        if self.scene is None:
            return
        node = self.selected if self.selected is not None else self.scene.current
        row = self.row_of.get(node, 0) if node is not None else 0
        visible = max(1, self.scrollable_content_region.height - 1)
        self.scroll_to(y=max(0, row - visible // 2), animate=False, immediate=True)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if self.scene is None:
            return Strip.blank(width, self.rich_style)
        if y == 0:
            header = "  ".join(_fit(h, w, right=kind not in ("label", "definition"), kind="header")
                               for h, kind, _, w in self.columns)
            strip = Strip([Segment(header, self.get_component_rich_style("tape--header"))])
        else:
            row = scroll_y + y - 1
            if row >= len(self.nodes):
                return Strip.blank(width, self.rich_style)
            strip = self._row_strip(row)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _row_strip(self, row: int) -> Strip:
        scene = self.scene
        assert scene is not None
        node_id = self.nodes[row]
        node = scene.trace.graph.nodes[node_id]
        cells = []
        for _, kind, key, width in self.columns:
            if kind == "label":
                cells.append((row_name(node), "label", width, False))
            elif kind == "definition":
                kind = "target (data)" if node_id in scene.trace.graph.target_ids else node.kind
                cells.append((node.definition if not node.is_leaf else kind, "text", width, False))
            else:
                number_kind = "value" if kind == "value" else kind
                text = scene.text(number_kind, node_id, key)
                look = "pending" if text in ("?", "") else (
                    "bad" if not scene.is_finite(number_kind, node_id, key) else "")
                cells.append(("·" if text == "?" else text, look, width, True))
        row_look = "current" if node_id == scene.current else ("selected" if node_id == self.selected else "")
        key = (tuple(cells), row_look)
        cached = self._rows.get(row)
        if cached is not None and cached[0] == key:
            return cached[1]
        row_style = self.get_component_rich_style(f"tape--{row_look}") if row_look else self.rich_style
        segments = []
        for i, (text, look, width, right) in enumerate(cells):
            text_kind = look if look in ("label", "text") else ""
            look = "" if text_kind else look
            style = row_style + self.get_component_rich_style(f"tape--{look}") if look else row_style
            segments.append(Segment(_fit(text, width, right, text_kind), style))
            if i < len(cells) - 1:
                segments.append(Segment("  ", row_style))
        strip = Strip(segments)
        self._rows[row] = (key, strip)
        return strip

    def row_text(self, node: int) -> str:
        """The plain text of a node's row as drawn now (for tests and captures)."""
        return self._row_strip(self.row_of[node]).text.rstrip()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        row = int(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self.nodes):
            self.post_message(self.RowClicked(self.nodes[row]))
