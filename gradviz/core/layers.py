"""Backprop by layers: the lecture's matrix form, recomputed and checked against the Trace.

A layer is `lay_k = act(z_k)`, `z_k = a·W_k + b_k` (a is x or lay_{k−1}): in an
expression a matmul with a leaf on the right, an optional `+ b` with a leaf b, and an
optional activation; in a model a Linear module and the activation after it (torch
stores its weight as W_kᵀ). Named statements (`lay1 = sigmoid(x @ W1 + b1)`) give the
layers their names.

`backprop_by_layers` runs the lecture's backward pass in matrix form from the forward
values alone (from the loss's closed form ∂J/∂h down, J the batch objective:
∂J/∂z_k = ∂J/∂lay_k ⊙ act'(z_k), ∂J/∂W_k = aᵀ·∂J/∂z_k, ∂J/∂b_k = Σ_rows ∂J/∂z_k,
∂J/∂a = ∂J/∂z_k·W_kᵀ) and compares every quantity
with the adjoint the reverse pass already holds for that node: two computations that
must agree. numpy only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from gradviz.core.graph import Graph, Node, canonical_op
from gradviz.core.rules import RULES, dropout_mask, unbroadcast
from gradviz.core.trace import Trace

def _derivative(op: str):
    """act'(z) as numbers, from the op's own rule (core.rules): the math lives there once."""
    return lambda out, pre: RULES[op].derivs((pre,), out, {})[0]


# op → (symbol, act'(z) written with the layer's own names, act'(z) as numbers), read from
# the rules that say they are activations (core.rules: the math and its notation live there).
ACTIVATIONS = {
    name: (rule.symbol, rule.activation.format("{z}", out="{lay}"), _derivative(name))
    for name, rule in RULES.items() if rule.activation is not None
}
DROPOUT_OPS = ("dropout",)  # an expression's dropout(x, p) or a model's nn.Dropout / F.dropout (lower case)
LINEAR_OPS = ("linear",)  # a model's Linear module (or F.linear): z = a·weightᵀ + bias
BCE_OPS = ("bce", "binary_cross_entropy")
MSE_OPS = ("mse", "mse_loss")
AUTO_LABEL = re.compile(r"^v\d+$")
NO_LAYERS = ("no layer of the form act(a @ W + b) feeds {output} "
             "(an expression needs W, b as inputs; a model, Linear modules)")
COLUMN_FORM = ("{product} is the column-vector form W·a: the layers view shows the lecture's row form; "
               "write it a @ W + b (the trace itself is unaffected)")


@dataclass(frozen=True)
class Layer:
    """Where layer k sits in the graph: node ids of a, W, b, a·W, z, lay and its members."""

    index: int
    name: str  # the statement's or module's name, else lay{k}
    input: int
    weight: int
    bias: int | None
    product: int  # the node computing a·W (for a model: the Linear node, which is also z)
    pre: int  # z_k
    output: int  # lay_k (z_k itself when there is no activation)
    activation: str | None
    transposed: bool  # the weight node holds W_kᵀ (torch's Linear stores out × in)
    nodes: tuple[int, ...]


def find_layers(graph: Graph) -> list[Layer]:
    """The dense layers of a graph, in forward order."""
    found: list[dict] = []
    for node in graph.nodes:
        parts = _affine(graph, node)
        if parts is not None:
            found.append(parts)
    layers = []
    for k, parts in enumerate(found, start=1):
        output_node = graph.nodes[parts["output"]]
        # A model names a layer by its module; an expression by the statement that assigns it.
        module = graph.nodes[parts["product"]].meta.get("module")
        named = not AUTO_LABEL.match(output_node.label)
        name = module or (output_node.label if named else f"lay{k}")
        members = tuple(sorted({parts["product"], parts["pre"], parts["output"]}))
        layers.append(Layer(k, name, nodes=members, **parts))
    return layers


def _leaf(graph: Graph, node_id: int) -> bool:
    node = graph.nodes[node_id]
    return node.kind in ("input", "parameter")


def _only_user(graph: Graph, node_id: int) -> Node | None:
    users = graph.users(node_id)
    return graph.nodes[users[0]] if len(users) == 1 else None


def _affine(graph: Graph, node: Node) -> dict | None:
    """The parts of `act(a·W + b)` starting at a matmul or Linear node, or None."""
    op = canonical_op(node.op)
    if op == "matmul" and len(node.inputs) == 2 and _leaf(graph, node.inputs[1]):
        a, weight, transposed = node.inputs[0], node.inputs[1], False
        bias, pre = None, node.id
        user = _only_user(graph, node.id)
        if user is not None and user.op == "add":
            other = user.inputs[1] if user.inputs[0] == node.id else user.inputs[0]
            if other != node.id and _leaf(graph, other):
                bias, pre = other, user.id
    elif op in LINEAR_OPS and len(node.inputs) >= 2 and _leaf(graph, node.inputs[1]):
        a, weight, transposed = node.inputs[0], node.inputs[1], True
        bias = node.inputs[2] if len(node.inputs) > 2 else None
        pre = node.id
    else:
        return None
    output, activation = pre, None
    user = _only_user(graph, pre)
    if user is not None and canonical_op(user.op) in ACTIVATIONS and len(user.inputs) == 1:
        output, activation = user.id, canonical_op(user.op)
    return {"input": a, "weight": weight, "bias": bias, "product": node.id, "pre": pre, "output": output,
            "activation": activation, "transposed": transposed}


@dataclass(frozen=True)
class Check:
    """One matrix-form quantity against the adjoint the reverse pass holds."""

    what: str  # '∂J/∂W1'
    against: str  # the node (or edge) it is compared with: 'W̄1 (adjoint of W1)'
    error: float  # max |matrix form − adjoint|, relative to max |adjoint| (absolute below 1)
    ok: bool


@dataclass(frozen=True)
class Dropout:
    """A dropout between lay_k and the next layer: ∂J/∂lay_k = ∂J/∂drop ⊙ mask/(1−p)."""

    node: int
    p: float
    scale: np.ndarray  # mask/(1−p), the numbers the slide's x_i/(1−p) multiplies by


@dataclass(frozen=True)
class LayerGrads:
    """Layer k's quantities in the lecture's matrix form, and their checks."""

    layer: Layer
    output: np.ndarray  # lay_k
    act_prime: np.ndarray | None  # act'(z_k)
    upstream: np.ndarray  # ∂J/∂lay_k: the lecture's δ_k (taken after the activation)
    upstream_from_trace: bool  # taken from the trace (something other than a layer lies above)
    delta: np.ndarray  # ∂J/∂z_k: δ_k taken before the activation (--delta pre-activation)
    weight: np.ndarray  # W_k (transposed back for a model)
    grad_weight: np.ndarray  # ∂J/∂W_k = aᵀ·∂J/∂z_k
    grad_bias: np.ndarray | None  # ∂J/∂b_k = Σ_rows ∂J/∂z_k
    passed_down: np.ndarray  # ∂J/∂a = ∂J/∂z_k·W_kᵀ
    chain: np.ndarray | None  # ∂lay_k/∂a for the first example (None when a is a leaf such as x)
    checks: tuple[Check, ...]
    dropout: Dropout | None = None  # the dropout ∂J/∂lay_k came back through, from the layer above


@dataclass(frozen=True)
class Head:
    """From the loss down to the last layer: L(h, y), ∂J/∂h in closed form, h = lay_n."""

    loss: int
    h: int
    target: int | None
    kind: str  # 'bce', 'mse' or 'other' (∂J/∂h read from the trace)
    rows: int  # the loss is a mean over this many elements
    grad_h: np.ndarray
    checks: tuple[Check, ...]
    delta_form: str | None = None  # ∂J/∂z_n in closed form where the loss and the last activation cancel


@dataclass(frozen=True)
class Backprop:
    """The whole layer-by-layer backward pass of one output."""

    output: str
    head: Head | None
    layers: tuple[LayerGrads, ...]  # last layer first: the order backprop computes them
    tolerance: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def checks(self) -> tuple[Check, ...]:
        """Every check of the head and the layers."""
        found = self.head.checks if self.head else ()
        return found + tuple(c for g in self.layers for c in g.checks)

    @property
    def ok(self) -> bool:
        """Whether every matrix-form quantity equals the trace's adjoint."""
        return all(c.ok for c in self.checks)


def _compare(what: str, against: str, mine: np.ndarray, theirs: np.ndarray | None, tolerance: float) -> Check:
    if theirs is None:
        return Check(what, against, float("nan"), False)
    theirs = np.asarray(theirs, dtype=float)
    mine = np.asarray(mine, dtype=float).reshape(theirs.shape)
    scale = max(1.0, float(np.max(np.abs(theirs))) if theirs.size else 1.0)
    with np.errstate(invalid="ignore"):
        error = float(np.max(np.abs(mine - theirs))) / scale if theirs.size else 0.0
    return Check(what, against, error, bool(error <= tolerance))


def _received(trace: Trace, output: str, node_id: int, child: int) -> tuple[np.ndarray | None, str]:
    """What the reverse pass says about node_id: its adjoint when child is its only user,
    else the one edge term from child (other uses add their own terms to the adjoint)."""
    graph = trace.graph
    label = graph.nodes[node_id].label
    users = graph.users(node_id)
    edges = [p for p, i in enumerate(graph.nodes[child].inputs) if i == node_id]
    if len(users) == 1 and len(edges) == 1:
        return trace.adjoints[output][node_id], f"adjoint of {label}"
    terms = [trace.contributions.get(output, {}).get((child, p)) for p in edges]
    terms = [t for t in terms if t is not None]
    total = sum(terms) if terms else None
    return total, f"edge term {graph.nodes[child].label}→{label} (the other uses of {label} add more)"


def _head(trace: Trace, output: str, last: Layer, tolerance: float) -> tuple[Head | None, np.ndarray, bool]:
    """∂J/∂h for h = the last layer's output: a closed form when the loss is bce or mse of h."""
    graph = trace.graph
    loss_id = graph.outputs[output]
    loss = graph.nodes[loss_id]
    h = trace.values[last.output]
    op = canonical_op(loss.op)
    direct = graph.users(last.output) == (loss_id,) and loss.inputs[0] == last.output
    if direct and op in BCE_OPS + MSE_OPS and len(loss.inputs) == 2:
        y = trace.values[loss.inputs[1]]
        rows = int(np.prod(np.broadcast_shapes(h.shape, y.shape)))
        with np.errstate(all="ignore"):
            if op in BCE_OPS:
                grad = (h - y) / (h * (1 - h)) / rows
                kind = "bce"
            else:
                grad = 2 * (h - y) / rows
                kind = "mse"
        grad = unbroadcast(np.broadcast_to(grad, np.broadcast_shapes(h.shape, y.shape)), h.shape)
        theirs, against = _received(trace, output, last.output, loss_id)
        checks = [_compare("∂J/∂h", against, grad, theirs, tolerance)]
        # The slide's cancellation: bce after σ gives δ_n = h − y per example (mse after
        # no activation: 2(h − y)); the mean over the batch divides by B.
        form = None
        if (kind, last.activation) in (("bce", "sigmoid"), ("mse", None)):
            factor = 1 if kind == "bce" else 2
            closed = unbroadcast(np.broadcast_to(factor * (h - y) / rows, np.broadcast_shapes(h.shape, y.shape)), h.shape)
            form = f"{'' if factor == 1 else '2·'}(h − y)/{rows}" if rows > 1 else f"{'' if factor == 1 else '2·'}(h − y)"
            form = "h − y" if form == "(h − y)" else form
            theirs = trace.adjoints[output][last.pre]
            checks.append(_compare(f"∂J/∂z{last.index} = {form}", f"adjoint of {graph.nodes[last.pre].label}",
                                   closed, theirs, tolerance))
        return Head(loss_id, last.output, loss.inputs[1], kind, rows, grad, tuple(checks), form), grad, False
    adjoint = trace.adjoints[output][last.output]
    return None, np.asarray(adjoint), True


def backprop_by_layers(trace: Trace, output: str | None = None) -> Backprop:
    """Recompute the backward pass layer by layer in matrix form and check it against the trace."""
    graph = trace.graph
    output = output or trace.output_names[0]
    if output not in trace.adjoints:
        raise ValueError(f"no reverse pass for output {output!r}")
    dtype = np.asarray(trace.values[graph.outputs[output]]).dtype
    tolerance = 1e-5 if dtype == np.float32 else 1e-10
    feeding = graph.ancestors(graph.outputs[output])
    found = [layer for layer in find_layers(graph) if layer.output in feeding]
    column = next((layer for layer in found if _column_form(trace, layer)), None)
    if column is not None:
        return Backprop(output, None, (), tolerance, (COLUMN_FORM.format(
            product=graph.nodes[column.product].definition),))
    layers = [layer for layer in found if _matrix_shaped(trace, layer)]
    if not layers:
        return Backprop(output, None, (), tolerance, (NO_LAYERS.format(output=output),))
    head, upstream, from_trace = _head(trace, output, layers[-1], tolerance)
    results: list[LayerGrads] = []
    dropout = None
    for position in range(len(layers) - 1, -1, -1):
        layer = layers[position]
        grads, passed = _layer(trace, output, layer, upstream, from_trace, tolerance, dropout)
        results.append(grads)
        below = layers[position - 1] if position > 0 else None
        dropout = _dropout_between(trace, below, layer) if below is not None else None
        if below is not None and graph.users(below.output) == (layer.product,):
            upstream, from_trace = passed, False
        elif dropout is not None:
            with np.errstate(all="ignore"):
                upstream, from_trace = passed * dropout.scale, False
        elif below is not None:
            upstream, from_trace = np.asarray(trace.adjoints[output][below.output]), True
    notes = []
    if any(g.upstream_from_trace for g in results):
        notes.append("where lay_k has other uses, or other operations lie between two layers (dropout), "
                     "∂J/∂lay_k is the trace's adjoint")
    return Backprop(output, head, tuple(results), tolerance, tuple(notes))


def _dropout_between(trace: Trace, below: Layer, layer: Layer) -> Dropout | None:
    """The dropout (active, mask known) that alone joins `below`'s output to `layer`'s input, or None."""
    graph = trace.graph
    users = graph.users(below.output)
    if len(users) != 1 or layer.input != users[0] or graph.users(users[0]) != (layer.product,):
        return None
    node = graph.nodes[users[0]]
    if node.op.lower() not in DROPOUT_OPS:
        return None
    data = getattr(trace, "aux", {}).get(node.id, {})
    if data.get("mask") is not None and data.get("training"):  # a model: the mask torch drew
        mask, p = np.asarray(data["mask"]), float(data["p"])
    elif "p" in node.attrs and "seed" in node.attrs:  # an expression: the seeded mask its rule draws
        p = float(node.attrs["p"])
        mask = dropout_mask(np.shape(trace.values[below.output]), p, node.attrs["seed"])
    else:
        return None
    return Dropout(node.id, p, mask.astype(float) / (1 - p))


def _layer(trace: Trace, output: str, layer: Layer, upstream: np.ndarray, from_trace: bool,
           tolerance: float, dropout: Dropout | None = None) -> tuple[LayerGrads, np.ndarray]:
    values = trace.values
    out = np.asarray(values[layer.output])
    pre = np.asarray(values[layer.pre])
    a = np.asarray(values[layer.input])
    stored = np.asarray(values[layer.weight])
    weight = stored.T if layer.transposed else stored
    k = layer.index
    checks: list[Check] = []
    if dropout is not None:  # ∂J/∂lay_k through the dropout's mask/(1−p), against the trace
        checks.append(_compare(f"∂J/∂lay{k}", f"adjoint of {trace.graph.nodes[layer.output].label}", upstream,
                               trace.adjoints[output][layer.output], tolerance))
    act_prime = None
    with np.errstate(all="ignore"):
        if layer.activation:
            act_prime = ACTIVATIONS[layer.activation][2](out, pre)
            delta = upstream * act_prime
        else:
            delta = np.asarray(upstream)
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        d2 = delta.reshape(1, -1) if delta.ndim == 1 else delta
        grad_weight = a2.T @ d2
        grad_bias = None if layer.bias is None else unbroadcast(delta, np.asarray(values[layer.bias]).shape)
        passed_down = (d2 @ weight.T).reshape(a.shape)
    theirs, against = (trace.adjoints[output][layer.pre], f"adjoint of {trace.graph.nodes[layer.pre].label}") \
        if layer.activation else _received(trace, output, layer.pre, _user_of(trace.graph, layer.pre))
    checks.append(_compare(f"∂J/∂z{k}", against, delta, theirs, tolerance))
    theirs, against = _received(trace, output, layer.weight, layer.product)
    if theirs is not None and layer.transposed:
        theirs = np.asarray(theirs).T
    checks.append(_compare(f"∂J/∂W{k}", against, grad_weight, theirs, tolerance))
    if layer.bias is not None:
        bias_user = layer.product if layer.transposed else layer.pre
        theirs, against = _received(trace, output, layer.bias, bias_user)
        checks.append(_compare(f"∂J/∂b{k}", against, grad_bias, theirs, tolerance))
    theirs, against = _received(trace, output, layer.input, layer.product)
    if theirs is not None and not _is_constant(trace, layer.input):  # a model's data x has no adjoint
        checks.append(_compare(f"∂J/∂{'x' if k == 1 else f'lay{k - 1}'}", against, passed_down, theirs, tolerance))
    chain = _chain(trace, layer) if not trace.graph.nodes[layer.input].is_leaf else None
    grads = LayerGrads(layer, out, act_prime, np.asarray(upstream), from_trace, delta, weight, grad_weight,
                       grad_bias, passed_down, chain, tuple(checks), dropout)
    return grads, passed_down


def _chain(trace: Trace, above: Layer) -> np.ndarray:
    """The chain factor ∂lay_k/∂lay_{k−1} = diag(act'(z_k))·W_kᵀ for the first example (H_k × H_{k−1})."""
    values = trace.values
    stored = np.asarray(values[above.weight])
    weight = stored.T if above.transposed else stored
    out = np.asarray(values[above.output]).reshape(-1, weight.shape[1])[0]
    pre = np.asarray(values[above.pre]).reshape(-1, weight.shape[1])[0]
    prime = ACTIVATIONS[above.activation][2](out, pre) if above.activation else np.ones_like(out)
    return prime[:, None] * weight.T


WEIGHT_NAME = re.compile(r"^(W|weight)", re.IGNORECASE)


def _column_form(trace: Trace, layer: Layer) -> bool:
    """z = W·a + b with column vectors: the matrix form here is the row form a·W + b, and
    reading W·a that way would call a the weight. Told by a bias that is one column of
    per-unit values, or by a leaf named like a weight on the left of the product."""
    if layer.transposed:
        return False  # a Linear module: its orientation is known
    graph = trace.graph
    left, right = graph.nodes[layer.input], graph.nodes[layer.weight]
    if left.is_leaf and WEIGHT_NAME.match(left.label) and not WEIGHT_NAME.match(right.label):
        return True
    if layer.bias is None:
        return False
    bias, product = np.shape(trace.values[layer.bias]), np.shape(trace.values[layer.product])
    return len(bias) == 2 and bias[1] == 1 and bias[0] > 1 and len(product) == 2 and product[0] == bias[0]


def no_layers_message(backprop: Backprop | None) -> str | None:
    """The one line saying why there is no layers view (None: there are layers). No
    backprop means no reverse pass. The CLI, the stepper and the view all say this."""
    if backprop is None:
        return "the layers view needs the reverse pass (adjoints)"
    if backprop.layers:
        return None
    return backprop.notes[0] if backprop.notes else NO_LAYERS.format(output=backprop.output)


def _matrix_shaped(trace: Trace, layer: Layer) -> bool:
    """The matrix form needs W to be a matrix and a a vector or a batch of rows."""
    return np.ndim(trace.values[layer.weight]) == 2 and np.ndim(trace.values[layer.input]) in (1, 2)


def _user_of(graph: Graph, node_id: int) -> int:
    users = graph.users(node_id)
    return users[0] if users else node_id


def _is_constant(trace: Trace, node_id: int) -> bool:
    return node_id in trace.graph.constant_ids
