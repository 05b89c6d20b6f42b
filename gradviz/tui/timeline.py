"""A fast index over the steps: the state at step k in O(pass length), not O(k).

`gradviz.core.steps.state_at` rescans every earlier step, which is O(k); with one
tangent pass per input a big graph has millions of steps. The Timeline cuts the steps
into passes once, then answers the same StepState from the pass holding k alone. Tests
check it equals `state_at` at every k. Textual-free, so benchmarks and tests can use it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from gradviz.core.steps import Step, StepState, build_steps
from gradviz.core.trace import Trace


@dataclass(frozen=True)
class Pass:
    """One contiguous run of steps: a phase and its key (input, output or None)."""

    phase: str
    key: str | None
    number: int  # 1-based among the passes of its phase
    count: int  # passes of this phase
    start: int  # k of its first step
    stop: int  # k of its last step
    nodes: tuple[int, ...]
    position: dict[int, int] = field(compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.nodes)


class Timeline:
    """The steps of a trace cut into passes, with the state at any k and node look-ups."""

    def __init__(self, trace: Trace, steps: tuple[Step, ...] | None = None):
        self.trace = trace
        self.steps = build_steps(trace) if steps is None else steps
        graph = trace.graph
        self.leaves = frozenset(n.id for n in graph.nodes if n.is_leaf)
        self.constants = frozenset(n.id for n in graph.nodes if n.op == "const")
        self.all_nodes = frozenset(range(len(graph.nodes)))
        self.passes = self._cut_passes()
        self._starts = [p.start for p in self.passes]
        self._full: dict[int, frozenset[int]] = {}
        # (kind, node, key) → the number as text / whether it is finite: a trace's numbers
        # never change, and on a model each is a norm over a big tensor (Scene fills these)
        self.texts: dict[tuple[str, int, str | None], str] = {}
        self.finite: dict[tuple[str, int, str | None], bool] = {}

    def _cut_passes(self) -> list[Pass]:
        runs: list[tuple[str, str | None, int, list[int]]] = []
        for k, step in enumerate(self.steps, start=1):
            if runs and runs[-1][0] == step.phase and runs[-1][1] == step.pass_key:
                runs[-1][3].append(step.node)
            else:
                runs.append((step.phase, step.pass_key, k, [step.node]))
        keys: dict[str, list[str | None]] = {}
        for phase, key, _, _ in runs:
            if key not in keys.setdefault(phase, []):
                keys[phase].append(key)
        passes = []
        for phase, key, start, nodes in runs:
            passes.append(Pass(phase, key, keys[phase].index(key) + 1, len(keys[phase]), start,
                               start + len(nodes) - 1, tuple(nodes), {n: i for i, n in enumerate(nodes)}))
        return passes

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def last(self) -> int:
        """The last k (the number of steps)."""
        return len(self.steps)

    def pass_at(self, k: int) -> Pass | None:
        """The pass that step k belongs to (None at k = 0)."""
        if k <= 0:
            return None
        return self.passes[bisect.bisect_right(self._starts, k) - 1]

    def find_pass(self, phase: str, key: str | None = None) -> Pass | None:
        """The first pass of `phase` (with `key`, when given)."""
        for p in self.passes:
            if p.phase == phase and (key is None or p.key == key):
                return p
        return None

    def phase_passes(self, phase: str) -> list[Pass]:
        """Every pass of `phase`, in order."""
        return [p for p in self.passes if p.phase == phase]

    def done_in(self, p: Pass, k: int) -> frozenset[int]:
        """The nodes pass `p` has computed by step k."""
        if k < p.start:
            return frozenset()
        if k >= p.stop:
            if p.start not in self._full:  # a finished pass: its node set is built once
                self._full[p.start] = frozenset(p.nodes)
            return self._full[p.start]
        return frozenset(p.nodes[: k - p.start + 1])

    def state(self, k: int) -> StepState:
        """Exactly `state_at(trace, steps, k)`, without rescanning the earlier steps."""
        if not 0 <= k <= len(self.steps):
            raise IndexError(f"step {k} is out of range 0..{len(self.steps)}")
        if k == 0:
            return StepState(0, None, "start", None, 0, 0, self.leaves, frozenset(), frozenset())
        p = self.pass_at(k)
        assert p is not None
        done = self.done_in(p, k)
        values = self.leaves | done if p.phase == "forward" else self.all_nodes
        tangents = done | self.constants if p.phase == "tangent" else frozenset()
        adjoints = done if p.phase == "reverse" else frozenset()
        return StepState(k, self.steps[k - 1], p.phase, p.key, p.number, p.count, values, tangents, adjoints)

    def known(self, k: int, phase: str, key: str | None) -> frozenset[int]:
        """The nodes whose number of (phase, key) is known at step k, whichever pass k is in.

        A finished pass stays known (the tape keeps every column filled once computed);
        a pass not reached yet knows nothing.
        """
        if phase == "forward":
            return self.state(k).values_known
        p = self.find_pass(phase, key)
        if p is None:
            return frozenset()
        done = self.done_in(p, k)
        return done | self.constants if phase == "tangent" and done else done

    def step_of(self, node: int, phase: str, key: str | None = None) -> int | None:
        """The k at which `node` is computed in that pass (first pass of the phase if no key)."""
        for p in self.passes:
            if p.phase == phase and (key is None or p.key == key) and node in p.position:
                return p.start + p.position[node]
        return None

    def jump_target(self, node: int, k: int) -> int | None:
        """Where `/name` goes: the node's step in the current pass, else its first step anywhere."""
        p = self.pass_at(k)
        if p is not None and node in p.position:
            return p.start + p.position[node]
        for q in self.passes:
            if node in q.position:
                return q.start + q.position[node]
        return None
