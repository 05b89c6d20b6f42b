"""The memory an expression's trace will need, known from shapes before anything runs.

Every node's shape follows from its inputs' shapes (broadcasting, matmul, transpose,
reductions), so a trace whose values, tangents, adjoints and edge terms would not fit
is refused before the first array is allocated, naming the node that makes it big.
numpy only, like the rest of the core.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from gradviz.core.graph import Graph, Node
from gradviz.core.rules import RULES
from gradviz.errors import MemoryBudgetError, ShapeError

Shape = tuple[int, ...]
# The trace is for looking at, so it stays a small share of the machine: the rest is
# left for the terminal, the layout and whatever else the user runs.
DEFAULT_FRACTION = 1 / 16
FALLBACK_MEMORY = 8 * 2**30  # when the machine does not say how much it has
# The op being evaluated holds a few arrays of its own size besides the stored ones
# (a vjp computes the local derivative, the product and its unbroadcast sum).
TRANSIENT_COPIES = 3
# Matrix products are where the time goes: 2.7e10 multiply-adds (one 3000³ product) took
# 3.4 s on the 2-core test machine under load, so the default allows a few seconds' work.
DEFAULT_WORK = 2 * 10**10
REDUCTIONS = tuple(name for name, rule in RULES.items() if rule.option == "axis")  # sum, mean: an optional axis


@dataclass(frozen=True)
class Estimate:
    """What a trace needs: every node's shape, its biggest array and the total in bytes."""

    shapes: tuple[Shape | None, ...]
    largest: int  # node id of the biggest array an op works on
    largest_bytes: int
    total_bytes: int
    work: int = 0  # multiply-adds of the matrix products, over every pass
    heaviest: int = -1  # node id of the biggest matrix product


def machine_memory() -> int:
    """Physical memory of this machine in bytes (FALLBACK_MEMORY when unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return FALLBACK_MEMORY


def default_limit() -> int:
    """The default --max-memory: DEFAULT_FRACTION of the machine's memory."""
    return int(machine_memory() * DEFAULT_FRACTION)


def infer_shapes(graph: Graph, leaf_shapes: Mapping[str, Shape]) -> tuple[Shape | None, ...]:
    """Each node's shape from its inputs'; None where it cannot be known (a mismatch,
    or an op this module does not know), and for everything that depends on it."""
    shapes: list[Shape | None] = []
    for node in graph.nodes:
        if node.op == "const":
            shapes.append(tuple(np.shape(node.attrs["value"])))
        elif node.is_leaf:
            shape = leaf_shapes.get(node.label)
            shapes.append(None if shape is None else tuple(shape))
        else:
            args = [shapes[i] for i in node.inputs]
            if node.op in REDUCTIONS and args[0] is not None:
                _check_axis(graph, node, args[0])
            shapes.append(None if any(a is None for a in args) else _output_shape(node, args))
    return tuple(shapes)


def _check_axis(graph: Graph, node: Node, shape: Shape) -> None:
    """numpy lets sum(x, 0) through on a scalar, and its gradient then fails: refuse it here."""
    axis = node.attrs.get("axis")
    if axis is not None and not -len(shape) <= axis < len(shape):
        source = graph.nodes[node.inputs[0]].label
        raise ShapeError(f"axis {axis} is out of range at {node.definition}: {source} has shape "
                         f"{format_shape(shape)} ({len(shape)} dimension{'s' if len(shape) != 1 else ''})")


def _output_shape(node: Node, args: list[Shape]) -> Shape | None:
    try:
        if node.op == "matmul":
            return _matmul_shape(*args)
        if node.op == "transpose":
            return tuple(reversed(args[0]))
        if node.op in REDUCTIONS:
            axis = node.attrs.get("axis")
            if axis is None:
                return ()
            axis = axis + len(args[0]) if axis < 0 else axis
            return None if not 0 <= axis < len(args[0]) else args[0][:axis] + args[0][axis + 1:]
        rule = RULES.get(node.op)
        if rule is not None and rule.scalar_out:  # norm, the mean losses: one number
            return ()
        if rule is not None and rule.elementwise:
            return tuple(np.broadcast_shapes(*args))
    except ValueError:  # shapes that do not fit: evaluation names them
        return None
    return None


def _matmul_shape(a: Shape, b: Shape) -> Shape | None:
    """numpy's matmul rule: 1-D operands promoted, batch dimensions broadcast."""
    if not a or not b:
        return None
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        return None
    batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    out = (*batch, a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _work_elements(node: Node, shapes: tuple[Shape | None, ...]) -> int:
    """Elements of the biggest array evaluating or differentiating the node touches."""
    own = [shapes[node.id]] + [shapes[i] for i in node.inputs]
    sizes = [_size(s) for s in own if s is not None]
    if node.op in ("bce", "mse"):  # the inputs are broadcast against each other inside
        try:
            # bce's derivatives hold about twice as many broadcast temporaries (measured)
            sizes.append(2 * _size(tuple(np.broadcast_shapes(*(shapes[i] for i in node.inputs)))))
        except (ValueError, TypeError):
            pass
    return max(sizes, default=0)


def _size(shape: Shape) -> int:
    return int(np.prod(shape, dtype=np.float64)) if shape else 1


def estimate(graph: Graph, leaf_shapes: Mapping[str, Shape], itemsize: int,
             modes: tuple[str, ...] = ("tangent", "reverse")) -> Estimate:
    """The bytes a trace will hold: values, a tangent per node and input, an adjoint per
    node and output, every edge's term per output and local partial, and the biggest
    op's working copies."""
    shapes = infer_shapes(graph, leaf_shapes)
    sizes = [0 if s is None else _size(s) for s in shapes]
    values = sum(sizes)
    tangent_passes = len(graph.input_ids) if "tangent" in modes else 0
    reverse_passes = len(graph.outputs) if "reverse" in modes else 0
    edge_terms = sum(sizes[i] for node in graph.nodes for i in node.inputs)
    partials = sum(sizes[node.id] * len(node.inputs) for node in graph.nodes if not node.is_leaf)
    largest, largest_elements = -1, 0
    for node in graph.nodes:
        if shapes[node.id] is None:
            continue
        work = _work_elements(node, shapes)
        if work > largest_elements:
            largest, largest_elements = node.id, work
    elements = (values * (1 + tangent_passes + reverse_passes) + edge_terms * reverse_passes + partials
                + TRANSIENT_COPIES * largest_elements)
    products = {node.id: _product_work(node, shapes) for node in graph.nodes if node.op == "matmul"}
    heaviest = max(products, key=products.get, default=-1)
    # a product runs once forward, once per tangent pass, and twice (one per operand) per reverse pass
    work = sum(products.values()) * (1 + tangent_passes + 2 * reverse_passes)
    return Estimate(shapes, largest, largest_elements * itemsize, int(elements * itemsize), int(work), heaviest)


def _product_work(node: Node, shapes: tuple[Shape | None, ...]) -> int:
    """Multiply-adds of one matrix product: output elements × the summed dimension."""
    out, a = shapes[node.id], shapes[node.inputs[0]]
    if out is None or a is None or not a:
        return 0
    return _size(out) * a[-1]


def check_memory(graph: Graph, leaf_shapes: Mapping[str, Shape], dtype: str,
                 modes: tuple[str, ...] = ("tangent", "reverse"), limit: int | None = None,
                 work_limit: int | None = None) -> Estimate:
    """Refuse a trace that would not fit in `limit` bytes (default: default_limit()), or
    whose matrix products would take more than `work_limit` multiply-adds (DEFAULT_WORK)."""
    limit = default_limit() if limit is None else limit
    work_limit = DEFAULT_WORK if work_limit is None else work_limit
    itemsize = np.dtype(dtype).itemsize
    found = estimate(graph, leaf_shapes, itemsize, modes)
    if found.total_bytes <= limit:
        if found.work > work_limit:
            node = graph.nodes[found.heaviest]
            a, b = (format_shape(found.shapes[i]) for i in node.inputs)
            raise MemoryBudgetError(
                f"the trace would take about {found.work:.1e} multiply-adds, over the limit of {work_limit:.1e} "
                f"(--max-work; a few seconds' work); the biggest product is {node.definition}, {a} @ {b}")
        return found
    node = graph.nodes[found.largest]
    shape = found.shapes[node.id]
    what = node.definition if not node.is_leaf else node.label
    raise MemoryBudgetError(
        f"the trace would need about {format_bytes(found.total_bytes)}, over the memory limit of "
        f"{format_bytes(limit)} (--max-memory); the largest array is at {what}, shape {format_shape(shape)} "
        f"({format_bytes(found.largest_bytes)} as {dtype})")


def format_shape(shape: Shape | None) -> str:
    """2×3 style, 'scalar' for ()."""
    if shape is None:
        return "unknown"
    return "×".join(map(str, shape)) if shape else "scalar"


def format_bytes(n: float) -> str:
    """1.5 GB, 300 MB, 12 kB (powers of 1024, short units)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


def parse_bytes(text: str) -> int:
    """'2G', '500M', '1.5GB', '64k' or a plain number of bytes; ValueError otherwise."""
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = 1
    if cleaned and cleaned[-1] in "KMGT":
        factor = 1024 ** ("KMGT".index(cleaned[-1]) + 1)
        cleaned = cleaned[:-1]
    value = float(cleaned)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(text)
    return int(value * factor)
