"""A traced model as a program: one step per fx node, with what it runs and what gradviz calls it.

fx (module level) and aten (aten level) build a Program; capture runs it.
A step's arguments hold `Ref(i)` where the fx graph referred to step i's value.
Parameters are steps too (kind 'param'), so a leaf module's weights are real inputs of
its node and their gradients appear in the graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# Step kinds: leaves ('input', 'param', 'const'), 'call' (runs fn), 'output' (the loss).
LEAF_KINDS = ("input", "param", "const")


@dataclass(frozen=True)
class Ref:
    """Inside a step's arguments: the value of step `index`."""

    index: int


@dataclass
class Step:
    """One fx node: how to run it and how to show it.

    - `fn(*args, **kwargs)` runs a 'call' step; `leaf` is set when fn is a leaf module,
      whose parameters (`params`: name inside the module, param step) feed the node.
    - `slots` lists (argument position, step) for flat argument tuples, the fast path;
      `nested` marks arguments whose Refs sit inside lists or keyword arguments.
    - `dropout` holds (p, training) for dropout steps (training None: the module's flag).
    - `shared`: the value has more than one use, so each use gets its own alias and
      its own gradient (the per-edge contribution).
    - `inline`: text that stands for a non-tensor value (`x.size(0)`) in definitions.
    """

    index: int
    kind: str
    label: str
    op: str
    fn: Callable[..., Any] | None = None
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    slots: tuple[tuple[int, int], ...] = ()
    nested: bool = False
    module: str | None = None
    definition: str = ""
    partials: tuple[str, ...] | None = None
    value: Any = None
    leaf: Any = None
    params: tuple[tuple[str, int], ...] = ()
    dropout: tuple[float, bool | None] | None = None
    shared: bool = False
    container: bool = False
    inline: str | None = None
    attrs: dict = field(default_factory=dict)


@dataclass
class Program:
    """Steps in execution order; `inputs` are the steps of x and y; `output` is the loss step;
    `model` is the module (its train/eval mode is recorded with each dropout)."""

    steps: list[Step]
    inputs: tuple[int, int]
    output: int
    level: str
    model: Any = None
    notes: tuple[str, ...] = ()
    dropout_outputs: tuple[int, ...] = ()  # aten level: getitem steps taking native_dropout's output
    graph_cache: dict = field(default_factory=dict)

    def leaf_steps(self) -> list[Step]:
        """Inputs, parameters and constants, in the order their graph nodes get ids."""
        return [s for s in self.steps if s.kind in LEAF_KINDS]


def refs_in(obj: Any) -> list[int]:
    """Step indices referenced anywhere inside `obj`, in order, repeats kept."""
    found: list[int] = []
    _collect(obj, found)
    return found


def _collect(obj: Any, found: list[int]) -> None:
    if type(obj) is Ref:
        found.append(obj.index)
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            _collect(item, found)
    elif isinstance(obj, dict):
        for item in obj.values():
            _collect(item, found)
    elif isinstance(obj, slice):
        for item in (obj.start, obj.stop, obj.step):
            _collect(item, found)


def materialize(obj: Any, load: Callable[[int], Any]) -> Any:
    """`obj` with every Ref replaced by load(index), keeping its structure."""
    if type(obj) is Ref:
        return load(obj.index)
    if type(obj) is tuple:
        return tuple(materialize(item, load) for item in obj)
    if type(obj) is list:
        return [materialize(item, load) for item in obj]
    if type(obj) is dict:
        return {key: materialize(item, load) for key, item in obj.items()}
    if type(obj) is slice:
        return slice(materialize(obj.start, load), materialize(obj.stop, load), materialize(obj.step, load))
    return obj


def flat_slots(args: tuple, kwargs: dict) -> tuple[tuple[tuple[int, int], ...], bool]:
    """(slots, nested): the fast path when every Ref is a top-level positional argument."""
    slots = tuple((position, a.index) for position, a in enumerate(args) if type(a) is Ref)
    nested = len(refs_in(args)) != len(slots) or bool(refs_in(kwargs))
    return slots, nested


def mark_shared(steps: list[Step]) -> None:
    """Flag values used more than once (per-use aliases split their gradient by edge)."""
    uses = [0] * len(steps)
    for step in steps:
        if step.inline:  # x.size(0) reads no gradient: it needs no alias of its own
            continue
        for index in refs_in((step.args, step.kwargs)):
            uses[index] += 1
        for _, index in step.params:
            uses[index] += 1
    for step, count in zip(steps, uses):
        step.shared = count > 1


class LabelSet(set):
    """The labels taken so far, remembering per wanted label the first suffix that may be
    free: a chain of 100k `mul`s then costs O(1) per label, not a scan from mul_1 (which made
    a 20k-op script take 46 s)."""

    def __init__(self, labels=()):
        super().__init__(labels)
        self.next_suffix: dict[str, int] = {}

    def discard(self, label: str) -> None:
        super().discard(label)
        # Every suffix below a wanted label's hint is taken: a freed one moves the hint back.
        self.next_suffix.pop(label, None)
        base, _, number = label.rpartition("_")
        if base and number.isdigit() and int(number) < self.next_suffix.get(base, 0):
            self.next_suffix[base] = int(number)


def unique_label(wanted: str, taken: set[str]) -> str:
    """`wanted`, or wanted_1, wanted_2… (the first one free) when it is taken; the result is
    added to `taken`. A LabelSet makes this O(1) however many times `wanted` was asked for."""
    hints = getattr(taken, "next_suffix", None)
    n = hints.get(wanted, 0) if hints is not None else 0
    label = wanted if n == 0 else f"{wanted}_{n}"
    while label in taken:
        n += 1
        label = f"{wanted}_{n}"
    taken.add(label)
    if hints is not None:
        hints[wanted] = n + 1
    return label
