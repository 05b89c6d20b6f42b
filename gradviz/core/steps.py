"""Steps: the ordered reveal of a trace. The state at step k is a pure function of k.

Step 0 shows the leaves only. Then one step per op node computes its value (forward),
one pass per input computes every tangent in topological order (forward mode), and one
pass per output finalises every adjoint in reverse topological order (reverse mode):
v̄_i is final once all its children's terms are in, which reverse order guarantees.
"""

from __future__ import annotations

from dataclasses import dataclass

from gradviz.core.trace import Trace

PHASES = ("forward", "tangent", "reverse")


@dataclass(frozen=True)
class Step:
    """One reveal: in `phase` (and pass `pass_key`: input label or output name), node `node`."""

    phase: str
    pass_key: str | None
    node: int


@dataclass(frozen=True)
class StepState:
    """What a view shows at step k: the current node and which numbers are known."""

    k: int
    step: Step | None
    phase: str
    pass_key: str | None
    pass_number: int
    pass_count: int
    values_known: frozenset[int]
    tangents_known: frozenset[int]
    adjoints_known: frozenset[int]

    @property
    def current(self) -> int | None:
        """The node computed at this step (None at step 0)."""
        return None if self.step is None else self.step.node


def forward_steps(trace: Trace) -> list[Step]:
    """One step per op node, in topological order."""
    return [Step("forward", None, n.id) for n in trace.graph.nodes if not n.is_leaf]


def tangent_steps(trace: Trace, wrt: str) -> list[Step]:
    """One forward-mode pass for input `wrt`: every non-constant node in topological order."""
    constants = trace.graph.constant_ids
    return [Step("tangent", wrt, n.id) for n in trace.graph.nodes if n.id not in constants]


def reverse_steps(trace: Trace, output: str) -> list[Step]:
    """One reverse-mode pass for `output`: its ancestors, from the output back to the leaves."""
    graph = trace.graph
    reached = graph.ancestors(graph.outputs[output])
    skipped = graph.constant_ids | graph.target_ids  # targets are data: no adjoint is shown for them
    return [Step("reverse", output, n.id) for n in reversed(graph.nodes) if n.id in reached and n.id not in skipped]


def tangent_keys(trace: Trace) -> list[str]:
    """The inputs a forward-mode pass is run for: all but a loss's targets (data)."""
    targets = {trace.graph.nodes[i].label for i in trace.graph.target_ids}
    return [key for key in trace.tangents if key not in targets]


def build_steps(trace: Trace, phases: tuple[str, ...] = PHASES) -> tuple[Step, ...]:
    """All steps of the chosen phases, for every pass the trace holds."""
    steps: list[Step] = []
    if "forward" in phases:
        steps += forward_steps(trace)
    if "tangent" in phases:
        for wrt in tangent_keys(trace):
            steps += tangent_steps(trace, wrt)
    if "reverse" in phases:
        for output in trace.adjoints:
            steps += reverse_steps(trace, output)
    return tuple(steps)


def stepper_steps(trace: Trace, wrt: str | None = None) -> tuple[Step, ...]:
    """The one numbering of steps the stepper shows and `export --step` takes: the values,
    every tangent pass (`wrt`'s first, when given), then every adjoint pass."""
    if wrt is None or wrt not in trace.tangents:
        return build_steps(trace)
    steps = forward_steps(trace)
    for key in [wrt] + [key for key in tangent_keys(trace) if key != wrt]:
        steps += tangent_steps(trace, key)
    for output in trace.adjoints:
        steps += reverse_steps(trace, output)
    return tuple(steps)


def state_at(trace: Trace, steps: tuple[Step, ...], k: int) -> StepState:
    """The state after the first k steps (0 ≤ k ≤ len(steps)); nothing else matters."""
    if not 0 <= k <= len(steps):
        raise IndexError(f"step {k} is out of range 0..{len(steps)}")
    graph = trace.graph
    leaves = frozenset(n.id for n in graph.nodes if n.is_leaf)
    if k == 0:
        return StepState(0, None, "start", None, 0, 0, leaves, frozenset(), frozenset())
    step = steps[k - 1]
    done = steps[:k]
    forward_done = [s.node for s in done if s.phase == "forward"]
    # Later phases need every value: once past the forward steps, all values are known.
    if step.phase == "forward":
        values = leaves | frozenset(forward_done)
    else:
        values = frozenset(range(len(graph.nodes)))
    same_pass = [s.node for s in done if s.phase == step.phase and s.pass_key == step.pass_key]
    tangents = frozenset(same_pass) | graph.constant_ids if step.phase == "tangent" else frozenset()
    adjoints = frozenset(same_pass) if step.phase == "reverse" else frozenset()
    keys = _pass_keys(steps, step.phase)
    return StepState(
        k, step, step.phase, step.pass_key, keys.index(step.pass_key) + 1, len(keys),
        values, frozenset(tangents), adjoints,
    )


def _pass_keys(steps: tuple[Step, ...], phase: str) -> list[str | None]:
    keys: list[str | None] = []
    for s in steps:
        if s.phase == phase and s.pass_key not in keys:
            keys.append(s.pass_key)
    return keys


def first_step_of(steps: tuple[Step, ...], phase: str, pass_key: str | None = None) -> int | None:
    """The k at which `phase` (optionally a given pass) shows its first node, or None."""
    for index, s in enumerate(steps):
        if s.phase == phase and (pass_key is None or s.pass_key == pass_key):
            return index + 1
    return None
