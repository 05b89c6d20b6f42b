"""Aten level: make_fx traces loss(model(x), y) into aten ops, so a Linear shows as its
transpose, matmul and add, and a LayerNorm as native_layer_norm.

Parameters are passed in (torch.func.functional_call), so each is a placeholder and a
real input of the ops that use it. Dropout is traced as native_dropout, whose second
output is the mask, shown on the dropout's output node. make_fx follows the branches the
real batch takes, so data-dependent control flow traces here.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.fx.experimental.proxy_tensor import make_fx
from torch.overrides import TorchFunctionMode

from gradviz.sources.model.describe import call_text, function_name, partial_formulas
from gradviz.sources.model.fx import INPUT_LABELS, dropout_call, parameter_names, prepare_model
from gradviz.sources.model.program import Program, Ref, Step, flat_slots, mark_shared, refs_in, unique_label

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
    with torch.random.fork_rng(devices=[]):  # tracing runs dropout once; the capture must draw afresh
        # Real tensors: a data-dependent branch is followed the way this batch goes.
        gm = make_fx(forward_and_loss, DECOMPOSITIONS, record_module_stack=True,
                     _error_on_data_dependent_ops=False)(params, x.detach(), y)
    gm.graph.eliminate_dead_code()
    return gm


def aten_program(model: torch.nn.Module, loss: Callable[[Any, Any], Any], x: torch.Tensor,
                 y: torch.Tensor) -> Program:
    """The Program of the aten-level trace."""
    prepare_model(model)
    gm = trace_aten_level(model, loss, x, y)
    names = [name for name, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    aliases = parameter_names(model)
    steps: list[Step] = []
    index_of: dict[torch.fx.Node, int] = {}
    taken: set[str] = set()
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
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if placeholders < len(params):
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
            fn = node.target
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
            # A tuple is never a graph node, so its name is not reserved.
            label = node.name if container else unique_label("loss" if node is loss_node else wanted, taken)
            step = add(node, kind="call", label=label, op=name, fn=fn, args=args, kwargs=kwargs, slots=slots,
                       nested=nested, definition=f"{label} = {text}",
                       partials=partial_formulas(name, label, inputs), module=_module_path(node),
                       container=container, attrs=attrs)
            if attrs:
                step.partials = ("mask/(1 − p)",)
    inputs = tuple(s.index for s in steps if s.kind == "input")
    mark_shared(steps)
    return Program(steps, (inputs[0], inputs[1]), index_of[loss_node], "aten", model,
                   dropout_outputs=tuple(dropout_outputs))


def _module_path(node: torch.fx.Node) -> str | None:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    return path or None
