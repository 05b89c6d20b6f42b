"""Run a Program on one batch: every node's tensor, and from ONE backward pass every adjoint,
every parameter gradient and every edge's contribution.

How one backward pass yields per-edge contributions: a value with several uses hands
each use its own alias (`v.view_as(v)`). The gradient torch computes for that alias is
exactly the edge's term v̄_j·∂v_j/∂v_i, node j's own vector-Jacobian product (the alias
reaches the loss only through node j), and torch sums those terms into v̄_i itself. A
value with one use has one term, its adjoint. One autograd.grad call over the node
outputs and the aliases returns all of it; parameters' gradients are the ones
`loss.backward()` would store in `.grad`.

A tuple-valued call (a container, e.g. chunk or an LSTM) feeds several getitem nodes.
When more than one of its pieces reaches the loss, each piece's share of an input is one
extra autograd.grad on the same recorded graph, from the piece back to that input's
alias (or to the input itself, when the container is its only use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from gradviz.core.graph import Graph, Node, canonical_op, frozen_mapping
from gradviz.core.trace import Edge, Trace
from gradviz.sources.model.arrays import EdgeTerms, LazyPartials, TensorArrays, numpy_of
from gradviz.sources.model.program import LEAF_KINDS, Program, Ref, Step, materialize, refs_in

# (source step, alias tensor or None, container step it came through or None)
EdgeRecord = tuple[int, Any, Any]


class NodeFailed(Exception):
    """Running one step raised; the message names the node, as fx's Interpreter does."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or ["(no message)"])[0]


@dataclass
class Run:
    """What one execution of a Program recorded, still as tensors."""

    loss: torch.Tensor
    tensors: dict[int, torch.Tensor]           # step → its tensor (leaves and op nodes)
    nodes: list[int]                            # op steps that produced a tensor, in order
    edges: dict[int, list[EdgeRecord]]          # op step → its tensor inputs, one record per edge
    aux: dict[int, dict[str, Any]] = field(default_factory=dict)
    env: list[Any] = field(default_factory=list)  # every step's value, tensors or not (for checks)
    containers: bool = False  # whether any tuple-valued call fed a node
    split_edges: bool = True  # whether shared values were aliased per use
    roots: dict[int, int] = field(default_factory=dict)  # container step → the outermost tuple it is part of
    rng: dict[int, Any] = field(default_factory=dict)  # call step → RNG state just before it ran (record_rng)


def rng_state() -> tuple[Any, Any]:
    """torch's CPU RNG state, and CUDA's when CUDA is in use: what dropout draws from next."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def set_rng_state(state: tuple[Any, Any]) -> None:
    """Put back a state rng_state() returned, so the next random draw repeats."""
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state_all(state[1])


def execute(program: Program, x: torch.Tensor, y: torch.Tensor, split_edges: bool = True,
            record_rng: bool = False, watch: Any = None) -> Run:
    """Run every step once, aliasing each use of a shared value when `split_edges`.

    `record_rng` keeps the RNG state before each call (for --check to replay dropout
    inside modules and SDPA); the plain capture skips it, it costs a copy per node.

    `watch` (summaries.Watch) sees each value and alias as it is made and keeps what it
    needs of them; the run then holds stand-ins (shape, dtype, requires_grad) and lets
    go of each value after its last use, so only what autograd saves stays alive.
    """
    steps = program.steps
    env: list[Any] = [None] * len(steps)
    tensors: dict[int, torch.Tensor] = {}
    nodes: list[int] = []
    edges_of: dict[int, list[EdgeRecord]] = {}
    containers: dict[int, tuple[int, list[EdgeRecord]]] = {}  # step → (root container, its edges)
    aux: dict[int, dict[str, Any]] = {}
    rng: dict[int, Any] = {}
    model_training = bool(getattr(program.model, "training", True))
    last_use = _last_uses(steps) if watch is not None else {}
    dropout_sources = {steps[i].attrs["dropout_of"] for i in program.dropout_outputs}

    def use(index: int, edges: list[EdgeRecord], passed: dict[int, Any]) -> Any:
        value = env[index]
        if isinstance(value, torch.Tensor):
            if index in passed:  # the same tensor twice in one call (attn(h, h, h)): one edge, one alias,
                return passed[index]  # so identity checks inside the call still hold
            if split_edges and steps[index].shared and value.requires_grad:
                value = value.view_as(value)
                edges.append((index, value if watch is None else watch.alias(value, index), None))
            else:
                edges.append((index, None, None))
            passed[index] = value
            return value
        inner = containers.get(index)
        if inner is not None:
            root, records = inner
            edges.extend((source, alias, root) for source, alias, _ in records)
        return value

    for step in steps:
        kind = step.kind
        if kind == "call":
            edges: list[EdgeRecord] = []
            passed: dict[int, Any] = {}
            if step.nested:
                args = materialize(step.args, lambda i: use(i, edges, passed))
                kwargs = materialize(step.kwargs, lambda i: use(i, edges, passed))
            else:
                args = list(step.args)
                for position, index in step.slots:
                    args[position] = use(index, edges, passed)
                kwargs = step.kwargs
            if record_rng:
                rng[step.index] = rng_state()
            try:
                if step.dropout is not None:
                    value = _dropout(step, args[0], aux, model_training)
                elif step.params:
                    value = _call_leaf(step, args, kwargs, env, edges, split_edges, steps, watch)
                else:
                    value = step.fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - re-raised naming the node that failed
                raise NodeFailed(f"while running {step.definition}: {type(exc).__name__}: {_first_line(exc)}") from exc
            env[step.index] = value
            if isinstance(value, torch.Tensor):
                tensors[step.index] = value if watch is None else watch.value(step, value, edges)
                nodes.append(step.index)
                edges_of[step.index] = edges
            elif edges and is_container(value):
                # A piece of a container that is itself a tuple keeps the outer container as root.
                vias = {via for _, _, via in edges}
                root = vias.pop() if len(vias) == 1 and None not in vias else step.index
                containers[step.index] = (root, [(s, a, None) for s, a, _ in edges])
                if watch is not None:
                    watch.container(step, passed)
            if watch is not None:
                del args, kwargs, passed, value
                for index in last_use.get(step.index, ()):
                    if steps[index].kind == "call" and index != program.output:
                        # native_dropout's (output, mask): the mask is read after the run
                        env[index] = (None, env[index][1]) if index in dropout_sources else None
        elif kind == "input":
            env[step.index] = x if step.index == program.inputs[0] else y
            tensors[step.index] = env[step.index]
        elif kind in ("param", "const"):
            env[step.index] = step.value
            tensors[step.index] = step.value
    loss = env[program.output]
    _mark_native_dropout(program, env, tensors, aux, model_training)
    roots = {index: root for index, (root, _) in containers.items()}
    return Run(loss, tensors, nodes, edges_of, aux, env, bool(containers), split_edges, roots, rng)


def _last_uses(steps: list[Step]) -> dict[int, list[int]]:
    """step → the values whose last use it is (they can be let go once it ran)."""
    last: dict[int, int] = {}
    for step in steps:
        for index in refs_in((step.args, step.kwargs)):
            last[index] = step.index
        for _, index in step.params:
            last[index] = step.index
    out: dict[int, list[int]] = {}
    for index, user in last.items():
        out.setdefault(user, []).append(index)
    return out


def is_container(value: Any) -> bool:
    """A tuple or list holding tensors (torch.Size, a tuple of ints, is not one)."""
    return isinstance(value, (tuple, list)) and any(isinstance(v, (torch.Tensor, tuple, list)) for v in value) \
        and not isinstance(value, torch.Size)


def _mark_native_dropout(program: Program, env: list[Any], tensors: dict[int, torch.Tensor],
                         aux: dict[int, dict[str, Any]], model_training: bool) -> None:
    """At aten level, dropout is native_dropout → (output, mask): put the mask on the output node."""
    for index in program.dropout_outputs:
        step = program.steps[index]
        if index in tensors:
            source = program.steps[step.attrs["dropout_of"]]
            _, mask = env[source.index]
            p, training = float(source.args[1]), bool(source.args[2])
            aux[index] = {"mask": mask, "p": p, "training": training, "model_training": model_training}


def _dropout(step: Step, x: Any, aux: dict[int, dict[str, Any]], model_training: bool) -> torch.Tensor:
    from gradviz.sources.model.fx import dropout_call

    p, training = step.dropout
    if training is None:
        training = step.leaf.training
    out, mask = dropout_call(x, p, training)
    aux[step.index] = {"mask": mask, "p": float(p), "training": bool(training), "model_training": model_training}
    return out


def _call_leaf(step: Step, args: Any, kwargs: dict, env: list[Any], edges: list[EdgeRecord],
               split_edges: bool, steps: list[Step], watch: Any = None) -> Any:
    """Call a leaf module; a parameter with other uses is passed in as its own alias."""
    override = {}
    for name, index in step.params:
        param = env[index]
        if split_edges and steps[index].shared and param.requires_grad:
            alias = param.view_as(param)
            override[name] = alias
            edges.append((index, alias if watch is None else watch.alias(alias, index), None))
        else:
            edges.append((index, None, None))
    if override:
        return torch.func.functional_call(step.leaf, override, tuple(args), kwargs)
    return step.fn(*args, **kwargs)


def capture(program: Program, x: torch.Tensor, y: torch.Tensor, split_edges: bool = True,
            info: Mapping[str, Any] | None = None) -> Trace:
    """The Trace of one forward and one backward run of `program` on (x, y), every tensor kept.

    (summaries.capture_summaries keeps each tensor's statistics only, from the same run.)
    """
    run = execute(program, x, y, split_edges)
    return to_trace(program, run, info or {})


_UNDIFFERENTIATED = object()  # a tensor that does not require grad: its adjoint is None


def to_trace(program: Program, run: Run, info: Mapping[str, Any]) -> Trace:
    """Turn a Run into a Trace: the backward pass, the (cached) Graph, and numpy views.

    Values, adjoints and contributions become numpy arrays when first read (TensorArrays,
    EdgeTerms): converting every tensor up front cost as much as a small model's forward.
    """
    graph, ids, partial_edges, gid_of = build_graph(program, run)
    grads, isolated = backward(run, program.steps)
    tensors = run.tensors
    values = TensorArrays([tensors[step] for step in ids])
    adjoint_items: list[Any] = []
    for step in ids:
        grad = grads.get(step, _UNDIFFERENTIATED)
        if grad is _UNDIFFERENTIATED:
            adjoint_items.append(None)
        elif grad is None:  # differentiable, but it does not reach the loss
            adjoint_items.append(torch.zeros_like(tensors[step]))
        else:
            adjoint_items.append(grad)
    adjoints = TensorArrays(adjoint_items)
    terms: dict[Edge, Any] = {}
    for step in run.nodes:
        child = gid_of[step]
        for position, (source, alias, _) in enumerate(run.edges[step]):
            gid = gid_of[source]
            if adjoint_items[gid] is None:
                continue
            if (step, position) in isolated:  # one piece's share of a container's input
                terms[(child, position)] = isolated[(step, position)]
            elif alias is None:  # the source's only use: its adjoint is this one term
                terms[(child, position)] = gid
            else:
                grad = grads.get(("alias", step, position))
                terms[(child, position)] = torch.zeros_like(alias) if grad is None else grad
    aux = {gid_of[step]: {**data, "mask": None if data.get("mask") is None else data["mask"].numpy(force=True)}
           for step, data in run.aux.items() if step in gid_of}
    return Trace(graph, values, {}, {"loss": adjoints}, {"loss": EdgeTerms(terms, adjoints)},
                 LazyPartials(graph, values, aux, partial_edges), aux, dict(info))


def backward(run: Run, steps: list[Step] | None = None) -> tuple[dict[Any, torch.Tensor | None], dict[tuple[int, int], Any]]:
    """One autograd.grad over every differentiable node output and every alias.

    Returns grads keyed by step (None: differentiable but not reaching the loss) and by
    ("alias", step, position), plus the container pieces' own shares.
    """
    keys: list[Any] = []
    inputs: list[torch.Tensor] = []
    for step, tensor in run.tensors.items():
        if tensor.requires_grad:
            keys.append(step)
            inputs.append(tensor)
    pieces = container_pieces(run) if run.containers and run.split_edges else {}
    views = _view_pieces(run, steps, pieces) if steps else {}  # split/chunk/unbind pieces: their shares need no extra pass
    for step in run.nodes:
        for position, (_, alias, _) in enumerate(run.edges[step]):
            if alias is not None:
                keys.append(("alias", step, position))
                inputs.append(alias)
    if not inputs or not run.loss.requires_grad:
        return {}, {}
    rest = {step: [p for p in positions if (step, p) not in views] for step, positions in pieces.items()}
    rest = {step: positions for step, positions in rest.items() if positions}
    grads = torch.autograd.grad(run.loss, inputs, allow_unused=True, retain_graph=bool(rest))
    found: dict[Any, torch.Tensor | None] = dict(zip(keys, grads))
    isolated: dict[tuple[int, int], Any] = {}
    for (step, position), place in views.items():
        _share_piece_adjoint(run, found, step, position, place)
        isolated[(step, position)] = EmbeddedShare(found.get(step), *place)
    for step, positions in rest.items():
        seed = found.get(step)
        aliases = [_target(run, step, p) for p in positions]
        if seed is None:
            shares: Any = [None] * len(positions)
        else:
            shares = torch.autograd.grad(run.tensors[step], aliases, grad_outputs=seed,
                                         retain_graph=True, allow_unused=True)
        for position, alias, share in zip(positions, aliases, shares):
            isolated[(step, position)] = numpy_of(share if share is not None else torch.zeros_like(alias))
    return found, isolated


# Calls whose pieces are views of their input, side by side without overlap: a piece's share
# of the input is its adjoint in the piece's place and zeros elsewhere (what torch's
# split/unbind backward computes), so it is made from the adjoint when read, not by an
# extra backward pass that would keep the whole autograd graph alive until it ran.
VIEW_SPLITS = {"split", "chunk", "unbind", "tensor_split", "split_with_sizes", "hsplit", "vsplit", "dsplit"}


def _view_pieces(run: Run, steps: list[Step], pieces: dict[int, list[int]]) -> dict[tuple[int, int], tuple]:
    """(step, position) → (shape, dtype, piece shape, piece stride, piece offset) for each
    piece that is a view of its edge's target made by a VIEW_SPLITS call taken apart by getitem."""
    found: dict[tuple[int, int], tuple] = {}
    for step, positions in pieces.items():
        own = steps[step]
        for position in positions:
            via = run.edges[step][position][2]
            if not (own.op == "getitem" and own.args and own.args[0] == Ref(via) and steps[via].op in VIEW_SPLITS):
                continue
            piece, target = run.tensors[step], _target(run, step, position)
            if piece.untyped_storage().data_ptr() != target.untyped_storage().data_ptr() \
                    or not target.is_contiguous() or piece.dtype != target.dtype:
                continue
            found[(step, position)] = (tuple(target.shape), target.dtype, tuple(piece.shape), piece.stride(),
                                       piece.storage_offset() - target.storage_offset())
    return found


def _share_piece_adjoint(run: Run, found: dict[Any, torch.Tensor | None], step: int, position: int,
                         place: tuple) -> None:
    """A view piece's adjoint becomes a view of the gradient its input got through the split
    (torch's split backward copied it there), so the same numbers are not held twice."""
    source, alias, _ = run.edges[step][position]
    whole = found.get(("alias", step, position)) if alias is not None else found.get(source)
    piece = found.get(step)
    shape, dtype, piece_shape, stride, offset = place
    if piece is None or whole is None or tuple(whole.shape) != shape or whole.dtype != dtype \
            or not whole.is_contiguous() or len(run.edges[step]) != 1:
        return
    found[step] = whole.as_strided(piece_shape, stride, whole.storage_offset() + offset)


class EmbeddedShare:
    """A view piece's share of its input: the piece's adjoint in its place, zeros elsewhere."""

    __slots__ = ("grad", "shape", "dtype", "piece_shape", "stride", "offset")

    def __init__(self, grad: torch.Tensor | None, shape: tuple, dtype: Any, piece_shape: tuple,
                 stride: tuple, offset: int):
        self.grad = grad
        self.shape, self.dtype, self.piece_shape, self.stride, self.offset = shape, dtype, piece_shape, stride, offset

    def materialize(self) -> torch.Tensor:
        share = torch.zeros(self.shape, dtype=self.dtype)
        if self.grad is not None:
            share.as_strided(self.piece_shape, self.stride, self.offset).copy_(self.grad)
        return share


def _target(run: Run, step: int, position: int) -> torch.Tensor:
    """What an edge's gradient is taken at: its alias, or its source when that has one use."""
    source, alias, _ = run.edges[step][position]
    return alias if alias is not None else run.tensors[source]


def container_pieces(run: Run) -> dict[int, list[int]]:
    """Nodes whose edges come through a container shared with other nodes: step → positions."""
    users: dict[int, set[int]] = {}
    for step in run.nodes:
        for position, (_, _, via) in enumerate(run.edges[step]):
            if via is not None and _target(run, step, position).requires_grad:
                users.setdefault(via, set()).add(step)
    pieces: dict[int, list[int]] = {}
    for step in run.nodes:
        for position, (_, _, via) in enumerate(run.edges[step]):
            if via in users and len(users[via]) > 1 and _target(run, step, position).requires_grad:
                pieces.setdefault(step, []).append(position)
    return pieces


def _dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def build_graph(program: Program, run: Run) -> tuple[Graph, list[int], list[Edge], dict[int, int]]:
    """The Graph of a run, the step of each node id, the edges with numeric partials, and
    each step's node id.

    Cached per structure, shapes and dtypes: a second capture of the same program on a
    batch of the same shape reuses it.
    """
    tensors = run.tensors
    edges = run.edges
    # Which steps made tensors, and the inputs' shapes, fix the structure and (but for
    # data-dependent ops like nonzero) every shape: a cheap key for a cache that saves a
    # small model's capture a fifth of its time.
    x, y = tensors[program.inputs[0]], tensors[program.inputs[1]]
    key = (x.shape, x.dtype, y.shape, y.dtype, tuple(run.nodes), sum(len(edges[i]) for i in run.nodes))
    cached = program.graph_cache.get(key)
    if cached is not None:
        return cached
    leaves = [s.index for kind in LEAF_KINDS for s in program.steps if s.kind == kind and s.index in tensors]
    ids = leaves + run.nodes
    gid_of = {step: gid for gid, step in enumerate(ids)}
    nodes = []
    for gid, index in enumerate(ids):
        step = program.steps[index]
        tensor = tensors[index]
        meta: dict[str, Any] = {"shape": tuple(tensor.shape), "dtype": _dtype_name(tensor), "module": step.module}
        inputs: tuple[int, ...] = ()
        attrs: dict[str, Any] = {}
        if step.kind == "call":
            inputs = tuple(gid_of[e[0]] for e in edges[index])
            meta["definition"] = step.definition
            if step.partials is not None and len(step.partials) == len(inputs):
                meta["partials"] = step.partials
            if step.dropout is not None:
                attrs["p"] = float(step.dropout[0])
            op = step.op
        else:
            op = {"input": "input", "param": "param", "const": "const"}[step.kind]
            if "names" in step.attrs:  # a shared parameter: every name it has
                meta["names"] = tuple(step.attrs["names"])
        nodes.append(Node(gid, op, inputs, step.label, frozen_mapping(attrs), frozen_mapping(meta)))
    graph = Graph(tuple(nodes), {"loss": gid_of[program.output]})
    dropouts = {gid_of[step] for step in run.aux if step in gid_of}
    partial_edges = [(n.id, 0) for n in graph.nodes if not n.is_leaf and n.inputs and (
        canonical_op(n.op) in ("sigmoid", "tanh", "relu") or n.id in dropouts)]
    program.graph_cache[key] = (graph, ids, partial_edges, gid_of)
    return graph, ids, partial_edges, gid_of
