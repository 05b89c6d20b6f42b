"""Leaf values for expressions: `--at name=value` and `--shape name=2x16` (seeded random)."""

from __future__ import annotations

import ast
import zlib
from typing import Any, Iterable, Mapping

import numpy as np

from gradviz.errors import BindingError

MAX_ELEMENTS = 10_000_000
MAX_DIMS = 6
NON_FINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def split_assignments(text: str) -> list[str]:
    """'x1=0.5,W=[[1,2],[3,4]]' → ['x1=0.5', 'W=[[1,2],[3,4]]']: commas inside brackets stay."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _name_and_rest(item: str, flag: str, example: str) -> tuple[str, str]:
    name, sep, rest = item.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or not rest.strip():
        raise BindingError(f"{flag} expects name=value, like {example}; got {item!r}")
    return name, rest.strip()


def parse_at(items: Iterable[str]) -> dict[str, np.ndarray]:
    """Parse every --at (each may hold several comma-separated assignments)."""
    values: dict[str, np.ndarray] = {}
    for text in items:
        for item in split_assignments(text):
            name, rest = _name_and_rest(item, "--at", "x1=0.5 or 'W=[[1,2],[3,4]]'")
            values[name] = parse_value(name, rest)
    return values


def parse_value(name: str, text: str) -> np.ndarray:
    """A number or a rectangular nested list of numbers ('nan', 'inf' allowed)."""
    if text.lower() in NON_FINITE:
        return np.asarray(NON_FINITE[text.lower()])
    try:
        literal = ast.literal_eval(_non_finite_names(ast.parse(text.strip(), mode="eval")))
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        raise BindingError(f"--at {name}: {text!r} is not a number or a nested list of numbers") from None
    try:
        value = np.asarray(literal, dtype=float)
    except (ValueError, TypeError):
        raise BindingError(f"--at {name}: {text!r} is not a rectangular nested list of numbers") from None
    check_size(name, value.shape)
    return value


class _NonFinite(ast.NodeTransformer):
    """nan and inf inside a list ('[[1, nan], [-inf, 2]]') as the numbers they name."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id.lower() in NON_FINITE:
            return ast.copy_location(ast.Constant(NON_FINITE[node.id.lower()]), node)
        return node


def _non_finite_names(tree: ast.Expression) -> ast.Expression:
    return _NonFinite().visit(tree)


def parse_shapes(items: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """Parse every --shape: 'W1=2x16' (or 2×16, 2,16); 'b=' + '16' for a vector; '1' or 'scalar'."""
    shapes: dict[str, tuple[int, ...]] = {}
    for text in items:
        for item in text.split(","):
            if not item.strip():
                continue
            name, rest = _name_and_rest(item, "--shape", "W1=2x16")
            if rest.lower() == "scalar":
                shapes[name] = ()
                continue
            try:
                shape = tuple(int(d) for d in rest.replace("×", "x").lower().split("x"))
            except ValueError:
                raise BindingError(f"--shape {name}: {rest!r} is not a shape like 2x16") from None
            if any(d <= 0 for d in shape):
                raise BindingError(f"--shape {name}: every dimension must be positive, got {rest!r}")
            check_size(name, shape)
            shapes[name] = shape
    return shapes


def check_size(name: str, shape: tuple[int, ...]) -> None:
    """Refuse absurd tensors before allocating them."""
    if len(shape) > MAX_DIMS:
        raise BindingError(f"{name} has {len(shape)} dimensions; at most {MAX_DIMS} are supported")
    size = int(np.prod(shape, dtype=float))
    if size > MAX_ELEMENTS:
        raise BindingError(f"{name} would have {size:,} elements; the limit is {MAX_ELEMENTS:,}")


def random_value(name: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Seeded standard-normal values; each name draws from its own stream, so adding one
    input does not change the others."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return rng.standard_normal(shape)


def bind_leaves(
    names: list[str], at: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]], seed: int, dtype: str
) -> dict[str, np.ndarray]:
    """A value for every input name; errors name every missing or unknown one."""
    both = sorted(set(at) & set(shapes))
    if both:
        raise BindingError(f"{', '.join(both)} given both a value (--at) and a shape (--shape); give one")
    unknown = sorted((set(at) | set(shapes)) - set(names))
    if unknown:
        used = ", ".join(names) or "none"
        raise BindingError(f"the expression has no input named {', '.join(unknown)} (its inputs: {used})")
    missing = [n for n in names if n not in at and n not in shapes]
    if missing:
        example = " ".join(f"{n}=1.0" for n in missing[:3])
        raise BindingError(f"no value for {', '.join(missing)}: give each one with --at (e.g. --at {example.replace(' ', ',')}) or --shape")
    leaves = {}
    for name in names:
        value = np.asarray(at[name]) if name in at else random_value(name, shapes[name], seed)
        leaves[name] = value.astype(dtype)
    return leaves
