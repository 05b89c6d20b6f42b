"""Dotted cluster paths ('blocks.3.attn'): the module a box sits in, and the ones around it."""

from __future__ import annotations


def parent(path: str) -> str:
    """The path one level out ('' at the top)."""
    return path.rsplit(".", 1)[0] if "." in path else ""


def chain(outer: str, inner: str) -> list[str]:
    """The scopes strictly inside `outer` down to `inner` (its prefixes), outermost first."""
    parts = inner.split(".") if inner else []
    start = len(outer.split(".")) if outer else 0
    return [".".join(parts[:level]) for level in range(start + 1, len(parts) + 1)]


def shared_cluster(a: str | None, b: str | None) -> str:
    """The innermost cluster holding both paths ('' for none): where an edge's label lives."""
    left, right = (a or "").split("."), (b or "").split(".")
    common = []
    for x, y in zip(left, right):
        if x != y or not x:
            break
        common.append(x)
    return ".".join(common)
