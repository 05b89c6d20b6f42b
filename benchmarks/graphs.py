"""Synthetic expressions of a chosen size, for the stepper's benchmarks."""

from __future__ import annotations

import random

from gradviz.sources.expr import trace_expression

FUNCTIONS = ("tanh", "sin", "exp", "sigmoid")


def expression_of_size(nodes: int, inputs: int = 2, seed: int = 0) -> str:
    """A chain of statements, each reading the last one and a recent one: about `nodes` nodes.

    Edges stay local (a network's layers, not a random graph), which is what `dot` lays out
    quickly and what models look like.
    """
    rng = random.Random(seed)
    names = [f"x{j + 1}" for j in range(inputs)]
    lines = [f"a0 = {' * '.join(names)}"]
    count = inputs + max(1, inputs - 1)
    i = 0
    while count < nodes - 1:
        i += 1
        earlier = f"a{max(0, i - rng.randint(2, 3))}" if i > 1 else rng.choice(names)
        lines.append(f"a{i} = {rng.choice(FUNCTIONS)}(a{i - 1}) * {earlier}")
        count += 2
    lines.append(f"f = a{i} * x1")
    return "\n".join(lines)


def trace_of_size(nodes: int, inputs: int = 2):
    """The traced expression (values, tangents for each input, adjoints)."""
    at = {f"x{j + 1}": 0.1 * (j + 1) for j in range(inputs)}
    return trace_expression(expression_of_size(nodes, inputs), at=at)
