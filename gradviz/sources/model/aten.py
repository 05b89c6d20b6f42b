"""Aten level: make_fx traces loss(model(x), y) into aten ops, so a Linear shows as its
transpose, matmul and add, and a LayerNorm as native_layer_norm.

Parameters are passed in (torch.func.functional_call), so each is a placeholder and a
real input of the ops that use it. Dropout is traced as native_dropout, whose second
output is the mask, shown on the dropout's output node. make_fx follows the branches the
real batch takes, so data-dependent control flow traces here. The graph is then
functionalized (`functionalized`): no node's value is one a later in-place op wrote, and
an op that ran in place says so.
"""

from __future__ import annotations

import contextlib
import operator
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch.fx.experimental.proxy_tensor import make_fx
from torch.overrides import TorchFunctionMode

from gradviz.sources.model.describe import call_text, function_name, partial_formulas
from gradviz.sources.model.fx import WAS_INPLACE, INPUT_LABELS, dropout_call, parameter_names
from gradviz.sources.model.program import LabelSet, Program, Ref, Step, flat_slots, mark_shared, refs_in, unique_label

aten = torch.ops.aten


def _addmm(bias, mat1, mat2, beta=1, alpha=1):
    """addmm as mm then add, so the lecture's x·W and + b are two nodes (no ·1 factors)."""
    out = torch.mm(mat1, mat2)
    if alpha != 1:
        out = out * alpha
    if beta == 0:
        return out
    return out + (bias if beta == 1 else bias * beta)


DECOMPOSITIONS = {aten.addmm.default: _addmm}
# An empty tensor holds whatever memory held (NaN, once in four runs here) until an op writes
# into it (bernoulli_ for dropout): gradviz fills it with zeros, so no node shows garbage.
ZERO_FILLED = {aten.empty_like.default: aten.zeros_like.default, aten.new_empty.default: aten.new_zeros.default}


class NativeDropout(TorchFunctionMode):
    """While tracing, F.dropout runs as native_dropout, which returns the mask it drew."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.dropout:
            x = args[0]
            p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
            training = kwargs.get("training", args[2] if len(args) > 2 else True)
            return dropout_call(x, p, training)[0]
        return func(*args, **kwargs)


def trace_aten_level(model: torch.nn.Module, loss: Callable[[Any, Any], Any], x: torch.Tensor,
                     y: torch.Tensor) -> torch.fx.GraphModule:
    """make_fx of (params, x, y) → loss, with the module path of each op in its meta."""
    params = dict(model.named_parameters())

    def forward_and_loss(params, x, y):
        with NativeDropout():
            return loss(torch.func.functional_call(model, params, (x,)), y)

    forward_and_loss._orig_mod = model  # lets make_fx record each op's module path
    buffers = [(b, b.clone()) for b in model.buffers()]  # tracing runs BatchNorm: its statistics are put back
    try:
        # Tracing runs dropout: the capture must draw afresh. No stack trace per node: extracting
        # them took a fifth of a GRU's aten trace. Real tensors: a data-dependent branch is
        # followed the way this batch goes.
        with torch.random.fork_rng(devices=[]), _no_stack_traces():
            gm = make_fx(forward_and_loss, DECOMPOSITIONS, record_module_stack=True,
                         _error_on_data_dependent_ops=False)(params, x.detach(), y)
            gm = functionalized(gm, [*params.values(), x.detach(), y])
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
    return gm


@contextlib.contextmanager
def _no_stack_traces() -> Iterator[None]:
    config = torch.fx.config
    before = config.do_not_emit_stack_traces
    config.do_not_emit_stack_traces = True
    try:
        yield
    finally:
        config.do_not_emit_stack_traces = before


def functionalized(gm: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> torch.fx.GraphModule:
    """The aten graph with every in-place op run out of place (torch.func.functionalize).

    make_fx alone keeps add_, relu_, masked_fill_…, which overwrite tensors earlier nodes
    still hold, so those nodes would show the later value. make_fx decomposes composite
    ops (GRU cells, dropout) below any functionalize wrapped around the model, so the aten
    graph itself is re-traced under functionalize. Each new node keeps the node it came
    from (`from_node`): an op that ran in place is marked `inplace` with its aten name.
    What does not reach the loss (BatchNorm's running-statistics updates) is dropped.
    """
    import torch.fx.traceback as fx_traceback

    def replay(*args: Any) -> Any:
        with fx_traceback.preserve_node_meta():
            return torch.fx.Interpreter(gm).run(*args)

    constants = _constants_as_inputs(gm)  # a masked_fill_ on zeros_like(buffer) is functionalized only so
    by_name = {node.name: node for node in gm.graph.nodes}
    out = make_fx(torch.func.functionalize(replay, remove="mutations"),
                  _error_on_data_dependent_ops=False)(*inputs, *(value for _, value in constants))
    out.gradviz_constants = constants
    for node in out.graph.nodes:
        sources = node.meta.get("from_node") or ()
        origin = by_name.get(sources[-1].name) if sources else None
        if origin is not None and origin.op == "call_function" and _in_place(origin.target) \
                and not _in_place(node.target):
            node.meta["inplace"] = origin.target._schema.name.partition("::")[2]
            node.meta["inplace_label"] = origin.name
    _keep_what_reaches_the_output(out.graph)
    return out


def _constants_as_inputs(gm: torch.fx.GraphModule) -> list[tuple[str, torch.Tensor]]:
    """Turn the tensors make_fx lifted into constants (buffers, masks) into trailing inputs."""
    constants = []
    last = [n for n in gm.graph.nodes if n.op == "placeholder"][-1]
    for node in list(gm.graph.nodes):
        if node.op == "get_attr" and isinstance(getattr(gm, node.target), torch.Tensor):
            with gm.graph.inserting_after(last):
                last = gm.graph.placeholder(f"const_{node.name}")
            node.replace_all_uses_with(last)
            gm.graph.erase_node(node)
            constants.append((node.target, getattr(gm, node.target)))
    gm.recompile()
    return constants


def _in_place(target: Any) -> bool:
    """An aten op that writes into its first argument (add_, relu_, masked_fill_…)."""
    schema = getattr(target, "_schema", None)
    return schema is not None and schema.name.endswith("_") and bool(schema.arguments) \
        and schema.arguments[0].alias_info is not None and schema.arguments[0].alias_info.is_write


def _keep_what_reaches_the_output(graph: torch.fx.Graph) -> None:
    output = next(n for n in graph.nodes if n.op == "output")
    needed = {output}
    for node in reversed(graph.nodes):
        if node in needed:
            needed.update(node.all_input_nodes)
    for node in reversed(graph.nodes):
        if node not in needed and node.op != "placeholder":
            graph.erase_node(node)


def aten_program(model: torch.nn.Module, loss: Callable[[Any, Any], Any], x: torch.Tensor,
                 y: torch.Tensor) -> Program:
    """The Program of the aten-level trace."""
    undo_prepare(model)  # functionalize runs relu_ out of place itself, and the node says it ran in place
    gm = trace_aten_level(model, loss, x, y)
    names = [name for name, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    aliases = parameter_names(model)
    steps: list[Step] = []
    index_of: dict[torch.fx.Node, int] = {}
    taken: set[str] = LabelSet()
    output = next(n for n in gm.graph.nodes if n.op == "output")
    loss_node = next(a for a in torch.utils._pytree.tree_leaves(output.args) if isinstance(a, torch.fx.Node))
    dropout_outputs = []

    def label_of(i: int) -> str:
        return steps[i].label

    def convert(obj: Any) -> Any:
        if isinstance(obj, torch.fx.Node):
            return Ref(index_of[obj])
        if isinstance(obj, (tuple, list)):
            return type(obj)(convert(o) for o in obj) if isinstance(obj, tuple) else [convert(o) for o in obj]
        if isinstance(obj, dict):
            return {k: convert(v) for k, v in obj.items()}
        return obj

    def add(node: torch.fx.Node, **fields: Any) -> Step:
        step = Step(index=len(steps), **fields)
        steps.append(step)
        index_of[node] = step.index
        return step

    placeholders = 0
    constants = getattr(gm, "gradviz_constants", [])
    buffer_names = {id(b): name for name, b in model.named_buffers()}
    const_steps: dict[int, int] = {}
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if placeholders >= len(params) + len(INPUT_LABELS):  # a lifted constant: a buffer is named as one
                target, value = constants[placeholders - len(params) - len(INPUT_LABELS)]
                if id(value) in const_steps:  # one buffer lifted twice is one node
                    index_of[node] = const_steps[id(value)]
                else:
                    const_steps[id(value)] = len(steps)
                    add(node, kind="const", label=unique_label(buffer_names.get(id(value), target), taken),
                        op="const", value=value)
            elif placeholders < len(params):
                name = names[placeholders]
                every = aliases[id(params[placeholders])]
                add(node, kind="param", label=unique_label(name, taken), op="param", value=params[placeholders],
                    module=name.rpartition(".")[0] or None, attrs={"names": every} if len(every) > 1 else {})
            else:
                label = INPUT_LABELS[placeholders - len(params)]
                add(node, kind="input", label=unique_label(label, taken), op="input")
            placeholders += 1
        elif node.op == "get_attr":
            value = getattr(gm, node.target)
            add(node, kind="const", label=unique_label(node.name, taken), op="const", value=value)
        elif node.op == "call_function":
            fn = ZERO_FILLED.get(node.target, node.target)
            args, kwargs = convert(node.args), convert(node.kwargs)
            name = function_name(fn)
            container = bool(node.users) and all(u.target is operator.getitem for u in node.users)
            slots, nested = flat_slots(args, kwargs)
            inputs = [label_of(i) for i in refs_in((args, kwargs))]
            attrs: dict[str, Any] = {}
            text = call_text(name, args, kwargs, label_of, fn)
            wanted = node.name
            if fn is operator.getitem and isinstance(node.args[0], torch.fx.Node):
                # A piece of a tuple (native_layer_norm → output, mean, rstd): named after the call.
                source, k = node.args[0], node.args[1]
                outer = steps[index_of[source]]
                text = f"{outer.definition.partition(' = ')[2]}[{k}]"
                wanted = outer.label if len(source.users) == 1 else f"{outer.label}[{k}]"
                name = outer.op if len(source.users) == 1 else name
                if source.target is aten.native_dropout.default and k == 0:
                    attrs["dropout_of"] = index_of[source]
                    dropout_outputs.append(len(steps))
            wanted = node.meta.get("inplace_label", wanted)
            # A tuple is never a graph node, so its name is not reserved.
            label = node.name if container else unique_label("loss" if node is loss_node else wanted, taken)
            step = add(node, kind="call", label=label, op=name, fn=fn, args=args, kwargs=kwargs, slots=slots,
                       nested=nested, definition=f"{label} = {text}",
                       partials=partial_formulas(name, label, inputs), module=_module_path(node),
                       container=container, attrs=attrs)
            if attrs:
                step.partials = ("mask/(1 − p)",)
            if node.meta.get("inplace"):  # shown as what ran: relu_, out of place so every value is kept
                step.attrs["inplace"] = node.meta["inplace"]
                step.definition += f"  (ran in place: {node.meta['inplace']})"
    inputs = tuple(s.index for s in steps if s.kind == "input")
    mark_shared(steps)
    return Program(steps, (inputs[0], inputs[1]), index_of[loss_node], "aten", model,
                   dropout_outputs=tuple(dropout_outputs))


def undo_prepare(model: torch.nn.Module) -> None:
    """Modules built with inplace=True get it back (a module-level trace of the same model turned it off)."""
    for module in model.modules():
        if getattr(module, WAS_INPLACE, False):
            module.inplace = True


def _module_path(node: torch.fx.Node) -> str | None:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    return path or None
