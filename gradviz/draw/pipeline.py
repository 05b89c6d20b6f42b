"""A look's boxes and edges through the stages to cells: measure, rank, route (handoff.py).

`layout_graph` draws one flat graph; `lay_out` draws a look, module by module when it
holds containers (compound.py runs the same stages once per module scope).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from gradviz.draw.compound import compound_layout
from gradviz.draw.dot import DEFAULT_TIMEOUT_S
from gradviz.draw.handoff import BoxSpec, EdgeSpec, Layout
from gradviz.draw.layout import measure, rank
from gradviz.draw.look import GraphLook
from gradviz.draw.route import place


@dataclass(frozen=True)
class Placed:
    """A look in cells, and the groups of modules found alike (each laid out once)."""

    layout: Layout
    alike: tuple[tuple[str, ...], ...] = ()


def layout_graph(boxes: Sequence[BoxSpec], edges: Sequence[EdgeSpec], timeout_s: float = DEFAULT_TIMEOUT_S,
                 tight: bool = False, across: bool = False) -> Layout:
    """Size the boxes, rank them with dot, and place everything in cells (`tight`: channels
    with no blank rows, for the compact forms; `across`: ranks left to right)."""
    if not boxes:
        return Layout(0, 0, {}, (), {}, {}, across)
    return place(rank(measure(boxes, edges, across), timeout_s), tight)


def lay_out(look: GraphLook, compound: bool, timeout_s: float = DEFAULT_TIMEOUT_S, tight: bool = False,
            across: bool = False) -> Placed:
    """A look in cells: module by module when it is `compound` (bridge.py made it),
    else in one piece (`across`: ranks left to right; module frames go top to bottom only)."""
    if compound:
        if across:
            raise ValueError("a folded model is laid out top to bottom only")
        layout, alike = compound_layout(look.boxes, look.edges, timeout_s)
        return Placed(layout, tuple(tuple(group) for group in alike))
    return Placed(layout_graph(look.boxes, look.edges, timeout_s, tight, across))
