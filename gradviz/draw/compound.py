"""Laying out a folded graph one module at a time, each distinct module structure once.

A folded model is drawn as nested scopes: the graph's top level, and inside it each open
module (a cluster) as one box of its own, a *container*, holding its members. Every scope
is laid out on its own by `dot` (a few dozen boxes, tens of milliseconds), innermost
first, and a container takes the size of its inside; the picture is the scopes' layouts
put together. This is how Model Explorer and the TensorFlow Graph Visualizer stay fast on
big models, and what makes opening one module cheap: only that module and the scopes
around it are laid out again.

Repeated structure (twelve identical transformer blocks) is recognised: scopes whose
members and edges match are drawn at one size (the widest of each member) and so hand
`dot` the same text, which it answers once (`dot_plain` keeps its answers).

Each scope runs the stages of any drawing (layout.measure, layout.rank, route.place) on
a look that bridge.py has cut at the containers' frames, so every edge lies in one scope.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Sequence

from gradviz.draw.bridge import CONTAINER, PORT_IN, PORT_OUT, is_port, port_source  # noqa: F401  (also imported from here)
from gradviz.draw.clusters import chain, parent
from gradviz.draw.dot import DEFAULT_TIMEOUT_S, LayoutTimeout, run_dot
from gradviz.draw.handoff import BoxSpec, EdgeSpec, Layout, Rect, Sized
from gradviz.draw.layout import measure, rank
from gradviz.draw.route import place

FRAME_X, FRAME_Y = 2, 1  # a container's inside starts two columns and one row in from its corner
PLAIN_KEPT = 512  # dot answers kept per process

_plain: dict[str, str] = {}  # DOT text -> dot's `-Tplain` answer
_plain_lock = threading.Lock()  # layout workers of a cancelled and a new layout may overlap


def dot_plain(source: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """dot's answer for `source`, asked once per process: identical scopes, and a module
    folded and opened again, are laid out by `dot` once. No time left: LayoutTimeout."""
    with _plain_lock:
        plain = _plain.get(source)
    if plain is None:
        if timeout_s <= 0:
            raise LayoutTimeout("`dot` ran out of time laying out the modules one by one")
        plain = run_dot(source, "plain", timeout_s).decode("utf-8")
        with _plain_lock:
            if len(_plain) >= PLAIN_KEPT:
                _plain.pop(next(iter(_plain)))
            _plain[source] = plain
    return plain


@dataclass
class _Scope:
    """One scope's members (box indices) and edges (edge indices), and what it was laid out as."""

    path: str
    boxes: list[int]
    edges: list[int]
    signature: tuple = ()
    layout: Layout | None = None


def compound_layout(boxes: Sequence[BoxSpec], edges: Sequence[EdgeSpec],
                    timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[Layout, list[list[str]]]:
    """Lay out a bridged look (`bridge`) scope by scope, innermost first, and put the
    scopes' layouts together inside their containers. Also returns the modules found
    alike (each group laid out once), outermost groups only."""
    if not boxes:
        return Layout(0, 0, {}, (), {}, {}), []
    index = {box.key: i for i, box in enumerate(boxes)}
    scopes: dict[str, _Scope] = {}
    for i, box in enumerate(boxes):
        path = box.cluster or ""
        scopes.setdefault(path, _Scope(path, [], [])).boxes.append(i)
    scopes.setdefault("", _Scope("", [], []))
    for j, edge in enumerate(edges):
        path = boxes[index[edge.src]].cluster or ""
        if (boxes[index[edge.dst]].cluster or "") != path:
            raise ValueError(f"edge {edge.src} -> {edge.dst} crosses a scope: bridge() the look first")
        scopes[path].edges.append(j)
    innermost_first = sorted(scopes.values(), key=lambda scope: -len(chain("", scope.path)))
    sized = measure(boxes, edges)  # a container's own size is its inside's, below
    for scope in innermost_first:
        scope.signature = (
            tuple(_member_signature(boxes[i], scopes) for i in scope.boxes),
            tuple((scope.boxes.index(index[edges[j].src]), scope.boxes.index(index[edges[j].dst]), edges[j].weight)
                  for j in scope.edges),
        )
    deadline = time.monotonic() + timeout_s  # the budget is for the whole layout, not each dot run
    alike: dict[tuple, list[_Scope]] = defaultdict(list)
    for scope in scopes.values():
        alike[scope.signature].append(scope)
    for scope in innermost_first:
        if scope.layout is not None:
            continue
        group = alike[scope.signature]  # laid out together, at the widest size of each member
        sizes = tuple(max(sizes_at) for sizes_at in zip(*(
            [_size(i, boxes[i], sized, scopes) for i in other.boxes] for other in group)))
        for other in group:
            members = tuple(replace(boxes[i], cluster=None) for i in other.boxes)
            inside = Sized(members, tuple(edges[j] for j in other.edges), sizes, {},
                           {box.key: sized.ports[box.key] for box in members})
            other.layout = place(rank(inside, deadline - time.monotonic(), plain=dot_plain))
    repeated = [sorted((scope.path for scope in group), key=_natural) for group in alike.values() if len(group) > 1]
    inside_repeat = {path for group in repeated for path in group}
    outermost = [group for group in repeated if not any(
        ancestor in inside_repeat for ancestor in chain("", parent(group[0])))]
    return _assemble(scopes, boxes, edges, index), sorted(outermost, key=lambda group: _natural(group[0]))


def _natural(path: str) -> tuple:
    """blocks.2 before blocks.10."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.split("."))


def alike_note(groups: list[list[str]]) -> str:
    """'blocks.0 … blocks.11: 12 alike, laid out once' for each group of alike modules
    ('blocks.0, blocks.2, blocks.3: …' when the run has a gap)."""
    return "; ".join(f"{_names(group)}: {len(group)} alike, laid out once" for group in groups)


def _names(group: list[str]) -> str:
    """blocks.0 … blocks.11 for a run of siblings numbered without a gap, else the names."""
    parents = {parent(path) for path in group}
    tails = [path.rsplit(".", 1)[-1] for path in group]
    if len(group) > 3 and len(parents) == 1 and all(tail.isdigit() for tail in tails):
        numbers = [int(tail) for tail in tails]
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            return f"{group[0]} … {group[-1]}"
    return ", ".join(group) if len(group) <= 4 else f"{', '.join(group[:3])}, … {group[-1]}"


def _member_signature(box: BoxSpec, scopes: dict[str, _Scope]) -> tuple:
    if box.key.startswith(CONTAINER):
        return ("container", scopes[box.key[len(CONTAINER):]].signature)
    return ("box", box.border, len(box.lines))


def _size(i: int, box: BoxSpec, sized: Sized, scopes: dict[str, _Scope]) -> tuple[int, int]:
    """A member's size: a container's is its inside's (laid out before it), plus the frame."""
    if not box.key.startswith(CONTAINER):
        return sized.sizes[i]
    ports = sized.ports[box.key]
    inside = scopes[box.key[len(CONTAINER):]].layout
    assert inside is not None, "scopes are laid out innermost first"
    title = len(box.lines[0]) + 6 if box.lines else 0
    return max(inside.width + 2 * FRAME_X, 2 * ports + 1, title), inside.height + 2 * FRAME_Y


def _assemble(scopes: dict[str, _Scope], boxes: Sequence[BoxSpec], edges: Sequence[EdgeSpec],
              index: dict[str, int]) -> Layout:
    """The root scope's layout with every container's inside put in place."""
    rects: dict[str, Rect] = {}
    paths: list[tuple[tuple[int, int], ...]] = [()] * len(edges)
    pending = [("", 0, 0)]
    while pending:
        path, dx, dy = pending.pop()
        layout = scopes[path].layout
        assert layout is not None
        for key, rect in layout.boxes.items():
            rects[key] = Rect(rect.x + dx, rect.y + dy, rect.w, rect.h)
            if key.startswith(CONTAINER):
                pending.append((key[len(CONTAINER):], rect.x + dx + FRAME_X, rect.y + dy + FRAME_Y))
        for j, points in zip(scopes[path].edges, layout.paths):
            paths[j] = tuple((x + dx, y + dy) for x, y in points)
    root = scopes[""].layout
    assert root is not None
    return Layout(root.width, root.height, rects, tuple(paths), {}, {})
