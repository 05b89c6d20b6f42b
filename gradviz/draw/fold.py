"""A graph seen through a folding: which modules are boxes, which nodes are stubs, what is in focus.

The Trace never changes; a `Fold` says, per node, which box draws it, and `fold_look`
turns the per-node look (look.trace_look) into the folded one. Every view that draws
(terminal, stepper, export) shares it. Three ideas, after the TensorFlow Graph
Visualizer (Wongsuphasawat et al., VAST 2018), Model Explorer and torchview's `depth`:

- modules deeper than `depth` are folded into one box (its output's value and adjoint);
- a node with many users (an input, a mask, a shared weight) is drawn as a small stub
  beside each user instead of one box with a hundred edges: high fan-out, not size, is
  what makes `dot` take minutes;
- a focus keeps the k-hop neighbourhood of one node, for big graphs without modules.

`plan_fold` picks the most open view whose box count fits a budget, so a graph of any
size lays out in about a second, and says in `note` what it folded and how to open it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from gradviz.core.graph import Graph
from gradviz.draw.dot import NODE_LIMIT as BOX_BUDGET  # boxes `dot` lays out at once, in about a second
from gradviz.draw.handoff import BoxSpec, EdgeSpec
from gradviz.draw.look import GraphLook, Visible, bordered

STUB_USERS = 6  # a node with more users than this is drawn as a stub beside each user
# A terminal shows a dozen boxes at a time: a model of more boxes than this opens folded to
# the deepest depth that fits (export draws up to BOX_BUDGET, which a viewer can zoom).
TERMINAL_MODULE_BUDGET = 150
MODULE = "m/"  # box keys of folded modules: 'm/block.3.attn' (no ':', which DOT reads as a port)
STUB = "s"  # box keys of stubs: 's12.4' (node 12's fifth stub)
MAIN_WEIGHT = 4  # with stubs beside them, the graph's own edges pull harder, so chains stay straight


@dataclass(frozen=True)
class Fold:
    """Per node the key of the box that draws it ('' when outside the view), and the stubs."""

    groups: tuple[str, ...]
    stubs: frozenset[int] = frozenset()
    note: str = ""
    depth: int | None = None  # modules folded below this depth (None: none folded)
    focus: int | None = None
    hops: int | None = None

    def __post_init__(self) -> None:
        identity = not self.stubs and all(key == f"n{i}" for i, key in enumerate(self.groups))
        object.__setattr__(self, "_identity", identity)
        hidden = not all(self.groups)
        object.__setattr__(self, "_shown", frozenset(i for i, key in enumerate(self.groups) if key) if hidden else None)

    @property
    def shown(self) -> frozenset[int] | None:
        """The nodes in view, None when all are (a focus shows some)."""
        return self._shown  # type: ignore[attr-defined]

    @property
    def is_identity(self) -> bool:
        """True when every node is its own box and none is a stub: the look is unchanged."""
        return self._identity  # type: ignore[attr-defined]

    def box_of(self, node_id: int) -> str | None:
        """The key of the box that shows node `node_id`, or None when it is out of view."""
        return self.groups[node_id] or None

    def members(self, key: str) -> list[int]:
        """The nodes a box stands for (one for a node's own box, many for a module)."""
        return [i for i, group in enumerate(self.groups) if group == key]


def module_path(graph: Graph, node_id: int) -> str:
    """The dotted module path of a node ('' outside every module)."""
    return graph.nodes[node_id].meta.get("module") or ""


def module_depth(graph: Graph) -> int:
    """How deep the module tree goes (0 for a graph without modules, e.g. an expression)."""
    return max((module_path(graph, i).count(".") + 1 for i in range(len(graph.nodes)) if module_path(graph, i)),
               default=0)


def _group_keys(graph: Graph, depth: int | None, expand: frozenset[str], collapse: frozenset[str]) -> list[str]:
    """Per node the box key: a module `depth` levels deep is one box (`expand` opens one
    more level below a module, `collapse` folds a module whole); other nodes are their own."""
    keys = []
    for node in graph.nodes:
        path = module_path(graph, node.id)
        key = f"n{node.id}"
        if path:
            parts = path.split(".")
            for level in range(1, len(parts) + 1):
                prefix = ".".join(parts[:level])
                if prefix in collapse or (depth is not None and level >= _fold_level(parts[:level], expand, depth)):
                    key = MODULE + prefix
                    break
        keys.append(key)
    return keys


def _fold_level(parts: list[str], expand: frozenset[str], depth: int) -> int:
    """The level at which a module folds: `depth`, or one below its deepest expanded ancestor."""
    opened = max((level for level in range(1, len(parts) + 1) if ".".join(parts[:level]) in expand), default=0)
    return max(depth, opened + 1)


def _stub_nodes(graph: Graph, groups: list[str], stub_users: int | None) -> frozenset[int]:
    """Nodes drawn as their own box whose users are too many to draw as edges."""
    if stub_users is None:
        return frozenset()
    return frozenset(
        i for i, key in enumerate(groups)
        if key == f"n{i}" and len({groups[u] for u in graph.users(i) if groups[u] and groups[u] != key}) > stub_users
    )


def box_count(graph: Graph, groups: list[str], stubs: frozenset[int]) -> int:
    """Boxes `dot` will lay out: groups in view plus one stub per stubbed node and user box."""
    count = len({key for key in groups if key})
    for i in stubs:
        count += len({groups[u] for u in graph.users(i) if groups[u]})
    return count


def neighbourhood(graph: Graph, center: int, hops: int, hub_users: int | None = STUB_USERS) -> set[int]:
    """The nodes at most `hops` edges from `center`, edges taken in either direction; a hub
    (a node with more than `hub_users` users, drawn as stubs) is reached but not gone through."""
    seen = {center}
    frontier = deque([(center, 0)])
    while frontier:
        node, distance = frontier.popleft()
        if distance == hops:
            continue
        users = graph.users(node)
        if node != center and hub_users is not None and len(users) > hub_users:
            continue
        for other in (*graph.nodes[node].inputs, *users):
            if other not in seen:
                seen.add(other)
                frontier.append((other, distance + 1))
    return seen


def _focus_groups(graph: Graph, center: int, hops: int, hub_users: int | None) -> list[str]:
    inside = neighbourhood(graph, center, hops, hub_users)
    return [f"n{i}" if i in inside else "" for i in range(len(graph.nodes))]


def plan_fold(graph: Graph, depth: int | None = None, focus: int | None = None, hops: int = 2,
              expand: Iterable[str] = (), collapse: Iterable[str] = (), stub_users: int | None = STUB_USERS,
              budget: int = BOX_BUDGET, module_budget: int | None = None) -> Fold:
    """The folding to draw: a focus when one is asked for, else the given `depth`, else the
    most open depth whose boxes fit `budget` (for a graph with modules, `module_budget` when
    given: a terminal opens a big model folded), else a focus on the output that fits."""
    n = len(graph.nodes)
    expand, collapse = frozenset(expand), frozenset(collapse)
    if focus is not None:
        groups = _focus_groups(graph, focus, hops, stub_users)
        shown = sum(1 for key in groups if key)
        note = (f"focus: the {hops}-hop neighbourhood of {graph.nodes[focus].label}, {shown} of {n} nodes"
                if shown < n else "")
        return Fold(tuple(groups), _stub_nodes(graph, groups, stub_users), note, None, focus, hops)
    levels = module_depth(graph)
    if depth is not None:
        folded_depth = max(depth, 1) if depth < levels + 1 else None
        groups = _group_keys(graph, folded_depth, expand, collapse)
        stubs = _stub_nodes(graph, groups, stub_users)
        note = _fold_note(graph, groups, folded_depth, levels)
        return Fold(tuple(groups), stubs, note, folded_depth)
    limit = budget if not levels or module_budget is None else min(budget, module_budget)
    for candidate in [None, *range(levels, 0, -1)]:
        groups = _group_keys(graph, candidate, expand, collapse)
        stubs = _stub_nodes(graph, groups, stub_users)
        count = box_count(graph, groups, stubs)
        if count <= limit or (candidate == 1 and count <= budget):  # else the top level, if it fits at all
            return Fold(tuple(groups), stubs, _fold_note(graph, groups, candidate, levels), candidate)
    center = _default_focus(graph)
    k = _widest_focus(graph, center, stub_users, budget)
    groups = _focus_groups(graph, center, k, stub_users)
    shown = sum(1 for key in groups if key)
    note = (f"{n} nodes are too many to lay out at once: showing the {k}-hop neighbourhood of "
            f"{graph.nodes[center].label} ({shown} nodes); --focus NODE --hops K shows another")
    return Fold(tuple(groups), _stub_nodes(graph, groups, stub_users), note, None, center, k)


def _widest_focus(graph: Graph, center: int, stub_users: int | None, budget: int) -> int:
    """The most hops around `center` whose neighbourhood fits the budget (at least 1)."""
    low, high = 1, 1
    while high < len(graph.nodes) and _focus_fits(graph, center, high * 2, stub_users, budget):
        high *= 2
    low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if _focus_fits(graph, center, middle, stub_users, budget):
            low = middle
        else:
            high = middle
    return low


def _focus_fits(graph: Graph, center: int, hops: int, stub_users: int | None, budget: int) -> bool:
    groups = _focus_groups(graph, center, hops, stub_users)
    return box_count(graph, groups, _stub_nodes(graph, groups, stub_users)) <= budget


def _default_focus(graph: Graph) -> int:
    """Where a focus starts when none is given: the first output (the loss), else the last node."""
    return next(iter(graph.outputs.values()), len(graph.nodes) - 1)


def _fold_note(graph: Graph, groups: list[str], depth: int | None, levels: int) -> str:
    if depth is None:
        return ""
    modules = len({key for key in groups if key.startswith(MODULE)})
    return (f"{len(graph.nodes)} nodes shown as {modules} folded modules at depth {depth} of {levels}; "
            f"--depth {depth + 1} opens " + ("one level more" if depth < levels else "every module"))


def folded_box(graph: Graph, key: str, members: list[int], node_box: Callable[[int], BoxSpec],
               detail: str, node_style: Callable[[int], str] | None = None
               ) -> tuple[tuple[str, ...], str, tuple[str | None, ...]]:
    """(lines, style, line styles) of a box that is not a node's own: a folded module shows
    its output's value and adjoint and lights up with any member; a stub shows its node's
    name in its node's style. `node_box(i)` is node i's own box at this step; `node_style(i)`
    its style alone, when that is cheaper (the members' text is never shown)."""
    if key.startswith(STUB):
        source = members[0]
        return (_stub_text(graph, source, detail),), node_box(source).style, ()
    out = members[-1]
    path = key[len(MODULE):]
    styles = [node_style(i) for i in members] if node_style else [node_box(i).style for i in members]
    if any(".current" in style for style in styles):
        style = "module.current"
    elif all(".pending" in style for style in styles):
        style = "module.pending"
    else:
        style = "module"
    if detail == "dots":
        return ("■",), style, ()
    if detail in ("ops", "line+", "line"):
        return (f"{path} ({len(members)})",), style, ()
    source = node_box(out)
    if detail == "compact":  # the output's derivative under the module's name
        line_styles = (None, *source.line_styles[1:]) if source.line_styles else ()
        return (f"▣ {path} ({len(members)})", *source.lines[1:]), style, line_styles
    line_styles = (None, None, *source.line_styles[1:]) if source.line_styles else ()
    return (f"▣ {path}", f"{len(members)} nodes", *source.lines[1:]), style, line_styles


def merged_style(styles: Iterable[str]) -> str:
    """One style for an edge that stands for several: the one that says most (active over
    plain over pending), non-finite if any of them is."""
    styles = list(styles)
    bases = [style.removesuffix(".nonfinite") for style in styles]
    base = max(bases, key=lambda b: EDGE_RANK.get(b, 1))
    return base + (".nonfinite" if any(style.endswith(".nonfinite") for style in styles) else "")


def box_members(graph: Graph, fold: Fold) -> dict[str, list[int]]:
    """Per box key the nodes it draws, a module's output last (what `folded_box` expects)."""
    members: dict[str, list[int]] = {}
    for i, key in enumerate(fold.groups):
        if key:
            members.setdefault(key, []).append(i)
    for key, inside in members.items():
        if key.startswith(MODULE):
            out = _module_output(graph, fold.groups, key, inside)
            inside.remove(out)
            inside.append(out)
    return members


def visible_of(graph: Graph, fold: Fold, members: dict[str, list[int]] | None = None) -> Visible | None:
    """What `fold` shows, for trace_look to work out nothing else (None: every node)."""
    if fold.is_identity:
        return None
    members = box_members(graph, fold) if members is None else members
    texts = {inside[-1] if key.startswith(MODULE) else inside[0] for key, inside in members.items()}
    return Visible(fold.groups, frozenset(texts))


def fold_look(graph: Graph, look: GraphLook, fold: Fold, detail: str = "full") -> GraphLook:
    """The per-node look (one box per node, one edge per graph edge) seen through `fold`."""
    if fold.is_identity:
        return look
    boxes, edges, edge_ids = look.boxes, look.edges, look.edge_ids
    groups = fold.groups
    node_box = boxes.__getitem__
    targets: dict[str, int] = {}
    out_boxes: list[BoxSpec] = []
    for key, inside in box_members(graph, fold).items():
        if not key.startswith(MODULE):
            out_boxes.append(boxes[inside[0]])
            continue
        targets[key] = inside[-1]
        path = key[len(MODULE):]
        parent = path.rsplit(".", 1)[0] if "." in path else None
        lines, style, line_styles = folded_box(graph, key, inside, node_box, detail)
        out_boxes.append(BoxSpec(key, lines, style, parent, line_styles, border=bordered(detail)))
    stub_count: dict[int, int] = {}
    stub_of: dict[tuple[int, str], str] = {}
    new_edges: list[EdgeSpec] = []
    new_ids: list[tuple[int, int] | None] = []
    groups_of_edge: dict[int, list[tuple[int, int]]] = {}
    merged: dict[tuple[str, str], int] = {}
    box_cluster = {box.key: box.cluster for box in out_boxes}
    for j, (child, position) in enumerate(edge_ids):
        source = graph.nodes[child].inputs[position]
        src, dst = groups[source], groups[child]
        if not src or not dst or src == dst:
            continue
        edge = edges[j]
        if source in fold.stubs:
            stub = stub_of.get((source, dst))
            if stub is None:
                stub = f"{STUB}{source}.{stub_count.get(source, 0)}"
                stub_count[source] = stub_count.get(source, 0) + 1
                stub_of[(source, dst)] = stub
                targets[stub] = source
                lines, style, _ = folded_box(graph, stub, [source], node_box, detail)
                out_boxes.append(BoxSpec(stub, lines, style, box_cluster.get(dst), border=False))
            src = stub
        if src.startswith(MODULE) or dst.startswith(MODULE):
            pair = (src, dst)
            if pair in merged:
                k = merged[pair]
                groups_of_edge[k].append((child, position))
                new_edges[k] = replace(new_edges[k], style=merged_style((new_edges[k].style, edge.style)))
                continue
            merged[pair] = len(new_edges)
            groups_of_edge[len(new_edges)] = [(child, position)]
            new_edges.append(EdgeSpec(src, dst, None, edge.style))
            new_ids.append(None)
            continue
        weight = MAIN_WEIGHT if fold.stubs and not src.startswith(STUB) else 1
        new_edges.append(replace(edge, src=src, dst=dst, weight=weight))
        new_ids.append((child, position))
    merged_groups = {j: tuple(ids) for j, ids in groups_of_edge.items()}
    return GraphLook(tuple(out_boxes), tuple(new_edges), tuple(new_ids), targets, merged_groups)


def _stub_text(graph: Graph, node_id: int, detail: str) -> str:
    label = graph.nodes[node_id].label
    return f"◂{label}" if detail != "dots" else label


def _module_output(graph: Graph, groups: tuple[str, ...], key: str, inside: list[int]) -> int:
    """The node whose value leaves the module last (its output), else its last node."""
    leaving = [i for i in inside if any(groups[u] != key for u in graph.users(i))]
    ops = [i for i in leaving if not graph.nodes[i].is_leaf]
    return (ops or leaving or inside)[-1]


EDGE_RANK = {"edge.pending": 0, "edge": 1, "edge.active": 2}


@dataclass(frozen=True)
class FoldChoice:
    """What a person asked to see (--depth, modules opened or closed, a focus); `plan`
    turns it into a Fold. Hashable, so each choice's layout is made once and kept."""

    depth: int | None = None
    expand: frozenset[str] = frozenset()
    collapse: frozenset[str] = frozenset()
    focus: int | None = None
    hops: int = 2

    def plan(self, graph: Graph, budget: int = BOX_BUDGET, module_budget: int | None = TERMINAL_MODULE_BUDGET) -> Fold:
        """The Fold for this choice (the most open that fits where nothing is asked; by
        default a model opens as a terminal shows it, see TERMINAL_MODULE_BUDGET)."""
        return plan_fold(graph, self.depth, self.focus, self.hops, self.expand, self.collapse, budget=budget,
                         module_budget=module_budget)

    def toggle_module(self, graph: Graph, fold: Fold, node: int) -> FoldChoice | None:
        """Open the folded module that holds `node`, or fold the innermost open module around
        it; None when the node is in no module."""
        key = fold.box_of(node) or ""
        pinned = replace(self, depth=self.depth if self.depth is not None else fold.depth, focus=None)
        if key.startswith(MODULE):  # the depth that was chosen stays: only this module opens
            path = key[len(MODULE):]
            return replace(pinned, expand=self.expand | {path}, collapse=self.collapse - {path})
        path = module_path(graph, node)
        if not path:
            return None
        if path in self.expand:
            return replace(pinned, expand=self.expand - {path})
        return replace(pinned, collapse=self.collapse | {path})

    def toggle_focus(self, node: int) -> FoldChoice:
        """A view of `node`'s neighbourhood, or back to the whole graph when one is shown."""
        return replace(self, focus=None if self.focus is not None else node)
