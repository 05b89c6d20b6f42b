"""Module level: torch.fx traces the model and its loss into a Program, one step per module call
or tensor function, keeping each node's module path for grouping.

torch.nn modules are leaves (fx's default), so `fc1` is one node whose inputs are its
input and its parameters `fc1.weight`, `fc1.bias`. The loss is traced too, and its last
node is called `loss`. In-place calls are run out of place (later uses read the result),
so every node keeps its own value.
"""

from __future__ import annotations

import operator
import traceback
from pathlib import Path
from typing import Any, Callable

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from gradviz.sources.model.describe import (
    call_text, function_name, linear_partials, method_text, module_summary, partial_formulas,
)
from gradviz.sources.model.program import LabelSet, Program, Ref, Step, flat_slots, mark_shared, refs_in, unique_label

ROOT = "model"  # the model's attribute name inside the traced wrapper
DROPOUT_FUNCTIONS = (F.dropout,)
SCALAR_METHODS = {"size", "dim", "numel", "nelement", "ndimension", "item", "tolist", "stride"}
INPUT_LABELS = ("x", "y")
WAS_INPLACE = "_gradviz_was_inplace"


class FxRefused(Exception):
    """fx could not trace the model; `where` is the user's line it stopped at ('' if unknown)."""

    def __init__(self, reason: str, where: str):
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason = reason
        self.where = where


class OpaqueLoss(nn.Module):
    """The spec's loss as one node, for losses fx cannot look into."""

    def __init__(self, fn: Callable[[Any, Any], Any]):
        super().__init__()
        self.fn = fn

    def forward(self, output, target):
        return self.fn(output, target)


class WithLoss(nn.Module):
    """The model followed by its loss: forward(x, y) = loss(model(x), y)."""

    def __init__(self, model: nn.Module, loss: Callable[[Any, Any], Any], opaque_loss: bool = False):
        super().__init__()
        self.model = model
        self.loss_fn = OpaqueLoss(loss) if opaque_loss else loss

    def forward(self, x, y):
        return self.loss_fn(self.model(x), y)


class LeafTracer(torch.fx.Tracer):
    """fx's tracer, with torch.nn modules as leaves (its default) and an opaque loss as one too."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, OpaqueLoss) or super().is_leaf_module(m, module_qualified_name)


def _symbolic_trace(root: nn.Module) -> torch.fx.GraphModule:
    return torch.fx.GraphModule(root, LeafTracer().trace(root))


def prepare_model(model: nn.Module) -> None:
    """Switch modules built with inplace=True (ReLU…) to out of place, so every node keeps its value."""
    for module in model.modules():
        if getattr(module, "inplace", None) is True:
            module.inplace = False
            setattr(module, WAS_INPLACE, True)


def trace_module_level(model: nn.Module, loss: Callable[[Any, Any], Any]) -> tuple[torch.fx.GraphModule, tuple[str, ...]]:
    """(GraphModule of loss(model(x), y), notes); FxRefused names the line fx stopped at."""
    try:
        return _symbolic_trace(WithLoss(model, loss)), ()
    except Exception as exc:  # noqa: BLE001 - any failure means: try the loss as one node
        first = exc
    try:
        gm = _symbolic_trace(WithLoss(model, loss, opaque_loss=True))
    except Exception as exc:  # noqa: BLE001 - fx raises many types; all mean 'cannot trace'
        raise refusal(exc) from None
    return gm, (f"fx could not look inside the loss ({refusal(first)}); it is shown as one node",)


def refusal(exc: BaseException) -> FxRefused:
    """An FxRefused naming the deepest line of user code in the traceback."""
    where = ""
    torch_dir = str(Path(torch.__file__).parent)
    gradviz_dir = str(Path(__file__).parent.parent)
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.filename
        if not name.startswith((torch_dir, gradviz_dir)) and not name.startswith("<"):
            code = (frame.line or "").strip()
            where = f"{name}:{frame.lineno}" + (f" `{code}`" if code else "")
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return FxRefused(f"{type(exc).__name__}: {reason}", where)


def display_path(target: str) -> str:
    """'model.block.query' → 'block.query'; the model itself → ''."""
    if target == ROOT:
        return ""
    return target[len(ROOT) + 1:] if target.startswith(ROOT + ".") else target


def module_of(node: torch.fx.Node) -> str | None:
    """The innermost module path a node was traced in (for grouping), or None at the top."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    path = display_path(list(stack.values())[-1][0])
    return path or None


def _fetch(root: nn.Module, target: str) -> Any:
    value: Any = root
    for part in target.split("."):
        value = getattr(value, part)
    return value


class _Builder:
    """Turns fx nodes into Steps, one at a time, in graph order."""

    def __init__(self, gm: torch.fx.GraphModule, model: nn.Module):
        self.gm = gm
        self.steps: list[Step] = []
        self.index_of: dict[torch.fx.Node, int] = {}
        self.param_steps: dict[int, int] = {}  # id(parameter) → step
        # From the user's model: the GraphModule's copy registers submodules in order of use.
        self.param_names = parameter_names(model)
        self.taken: set[str] = LabelSet()
        output = next(n for n in gm.graph.nodes if n.op == "output")
        self.loss_node = output.args[0]
        # A value that is only ever taken apart by getitem (a tuple) is a container.
        self.containers = {n for n in gm.graph.nodes if n.users and all(
            u.op == "call_function" and u.target is operator.getitem for u in n.users)}

    # -- helpers -----------------------------------------------------------------------
    def label(self, index: int) -> str:
        step = self.steps[index]
        return step.inline or step.label

    def convert(self, obj: Any) -> Any:
        """fx arguments with nodes replaced by Refs (fx's immutable lists become plain ones)."""
        if isinstance(obj, torch.fx.Node):
            return Ref(self.index_of[obj])
        if isinstance(obj, tuple):
            return tuple(self.convert(item) for item in obj)
        if isinstance(obj, list):
            return [self.convert(item) for item in obj]
        if isinstance(obj, dict):
            return {key: self.convert(item) for key, item in obj.items()}
        if isinstance(obj, slice):
            return slice(self.convert(obj.start), self.convert(obj.stop), self.convert(obj.step))
        return obj

    def add(self, node: torch.fx.Node | None, **fields: Any) -> Step:
        step = Step(index=len(self.steps), container=node in self.containers, **fields)
        self.steps.append(step)
        if node is not None:
            self.index_of[node] = step.index
        return step

    def param(self, tensor: torch.Tensor, label: str, module: str | None) -> int:
        """The step of a parameter, created at its first use, named as named_parameters() names it."""
        if id(tensor) not in self.param_steps:
            names = self.param_names.get(id(tensor), (label,))
            if names[0] != label:  # first used under another of its names: its owner is torch's name's
                module = names[0].rpartition(".")[0] or None
            step = self.add(None, kind="param", label=unique_label(names[0], self.taken), op="param",
                            value=tensor, module=module, attrs={"names": names} if len(names) > 1 else {})
            self.param_steps[id(tensor)] = step.index
        return self.param_steps[id(tensor)]

    def op_label(self, node: torch.fx.Node, wanted: str) -> str:
        return unique_label("loss" if node is self.loss_node else wanted, self.taken)

    def call(self, node: torch.fx.Node, fn: Callable[..., Any], op: str, wanted: str, text: str,
             args: tuple, kwargs: dict, **extra: Any) -> Step:
        label = self.op_label(node, wanted)
        slots, nested = flat_slots(args, kwargs)
        tensor_inputs = [self.label(i) for i in refs_in((args, kwargs)) if not self.steps[i].inline]
        p = extra.get("dropout", (None,))[0]
        fields = {"p": f"{p:g}"} if isinstance(p, (int, float)) else {}
        partials = extra.pop("partials", None) or partial_formulas(op, label, tensor_inputs, **fields)
        return self.add(node, kind="call", label=label, op=op, fn=fn, args=args, kwargs=kwargs,
                        slots=slots, nested=nested, definition=f"{label} = {text}", partials=partials,
                        module=extra.pop("module", module_of(node)), **extra)

    def run_out_of_place(self, node: torch.fx.Node, target: Any, name: str) -> None:
        """After an in-place call on `target`, later uses of it read this node's result,
        and the node says it ran in place (`name`: relu_, inplace=True…)."""
        if isinstance(target, torch.fx.Node):
            stale = _stale_alias(node, target)
            if stale is not None:
                shown = {n: self.label(self.index_of[n]) if n in self.index_of else n.name for n in (target, stale)}
                raise FxRefused(f"in-place {name} writes into {shown[target]}, which shares memory with "
                                f"{shown[stale]}; run out of place, {shown[stale]} would keep its old value "
                                "(--level aten keeps both right)", "")
        step = self.steps[self.index_of[node]]
        step.attrs["inplace"] = name
        step.definition += f"  (ran in place: {name})"
        if isinstance(target, torch.fx.Node):
            self.index_of[target] = self.index_of[node]

    # -- node kinds --------------------------------------------------------------------
    def placeholder(self, node: torch.fx.Node) -> None:
        position = sum(1 for s in self.steps if s.kind == "input")
        label = INPUT_LABELS[position] if position < len(INPUT_LABELS) else node.name
        self.add(node, kind="input", label=unique_label(label, self.taken), op="input")

    def get_attr(self, node: torch.fx.Node) -> None:
        value = _fetch(self.gm, node.target)
        path = display_path(node.target)
        owner = path.rpartition(".")[0] or None
        if isinstance(value, nn.Parameter):
            self.index_of[node] = self.param(value, path, owner)
        elif isinstance(value, torch.Tensor):
            self.add(node, kind="const", label=unique_label(path, self.taken), op="const", value=value, module=owner)
        else:
            self.add(node, kind="call", label=unique_label(node.name, self.taken), op="getattr",
                     fn=lambda value=value: value, inline=path)

    def call_module(self, node: torch.fx.Node) -> None:
        module = self.gm.get_submodule(node.target)
        path = display_path(node.target)
        args, kwargs = self.convert(node.args), self.convert(node.kwargs)
        shown = ", ".join(self.label(i) for i in refs_in((args, kwargs)))
        text = f"{module_summary(module)}({shown})"
        if isinstance(module, OpaqueLoss):
            name = getattr(module.fn, "__name__", "loss")
            self.call(node, module, name, "loss", f"{name}({shown})", args, kwargs, module=None)
            return
        if type(module) is nn.Dropout:
            self.call(node, dropout_call, "Dropout", path, text, args[:1], {},
                      dropout=(module.p, None), leaf=module, module=path)
            return
        params = tuple((name, self.param(p, f"{path}.{name}", path)) for name, p in module.named_parameters())
        partials = None
        if isinstance(module, nn.Linear) and len(refs_in(args)) == 1:
            partials = linear_partials(self.label(refs_in(args)[0]), self.steps[params[0][1]].label,
                                       self.steps[params[1][1]].label if len(params) > 1 else None)
        self.call(node, module, type(module).__name__, path, text, args, kwargs,
                  leaf=module, params=params, module=path, partials=partials)
        if getattr(module, WAS_INPLACE, False):
            self.run_out_of_place(node, node.args[0] if node.args else None, f"{type(module).__name__}(inplace=True)")

    def call_function(self, node: torch.fx.Node) -> None:
        fn = node.target
        args, kwargs = self.convert(node.args), self.convert(node.kwargs)
        name = function_name(fn)
        if fn in DROPOUT_FUNCTIONS:
            p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
            training = kwargs.get("training", args[2] if len(args) > 2 else True)
            text = call_text(name, args[:1], {"p": p, "training": training}, self.label)
            self.call(node, dropout_call, "dropout", node.name, text, args[:1], {}, dropout=(p, bool(training)))
            return
        inplace = kwargs.get("inplace") is True
        if inplace:
            kwargs = {**kwargs, "inplace": False}
        wanted = node.name
        if fn is operator.getitem and type(args[0]) is Ref and self.steps[args[0].index].container:
            wanted = f"{self.label(args[0].index)}[{args[1]}]"
        self.call(node, fn, name, wanted, call_text(name, args, kwargs, self.label, fn), args, kwargs)
        if inplace:
            self.run_out_of_place(node, node.args[0], f"{name}(inplace=True)")

    def call_method(self, node: torch.fx.Node) -> None:
        name = node.target
        args, kwargs = self.convert(node.args), self.convert(node.kwargs)
        inplace = name.endswith("_") and not name.startswith("__") and hasattr(torch.Tensor, name[:-1])
        run = name[:-1] if inplace else name
        fn = getattr(torch.Tensor, run, None) or operator.methodcaller(run)
        text = method_text(run, args, kwargs, self.label)
        inline = text if name in SCALAR_METHODS else None
        self.call(node, fn, run, node.name, text, args, kwargs, inline=inline)
        if inplace:
            self.run_out_of_place(node, node.args[0], name)


# Calls whose result can share memory with their first argument (a view of it).
VIEW_METHODS = {"view", "view_as", "reshape", "reshape_as", "transpose", "t", "permute", "narrow", "select",
                "expand", "expand_as", "unsqueeze", "squeeze", "flatten", "unflatten", "diagonal", "unfold",
                "as_strided", "chunk", "split", "unbind", "movedim", "swapaxes", "detach", "contiguous",
                "__getitem__", "getitem"}


def _is_view(node: torch.fx.Node) -> bool:
    if node.op not in ("call_method", "call_function"):
        return False
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    if node.target is getattr:  # x.T is a view; x.shape is not a tensor
        return len(node.args) > 1 and node.args[1] in ("T", "mT", "H", "mH")
    return name in VIEW_METHODS


def _stale_alias(inplace: torch.fx.Node, target: torch.fx.Node) -> torch.fx.Node | None:
    """A tensor sharing memory with `target` that is read after the in-place call: running the call
    out of place would leave it stale. None when there is none (the usual case)."""
    root = target
    while _is_view(root) and isinstance(root.args[0], torch.fx.Node):
        root = root.args[0]
    family, frontier = {root}, [root]
    while frontier:
        for user in frontier.pop().users:
            if _is_view(user) and user not in family:
                family.add(user)
                frontier.append(user)
    order = {n: i for i, n in enumerate(inplace.graph.nodes)}
    for member in family - {target}:
        if any(order[u] > order[inplace] and u not in family for u in member.users):
            return member
    return None


def parameter_names(model: nn.Module) -> dict[int, tuple[str, ...]]:
    """id(parameter) → every name it has, torch's own (named_parameters()) first.

    A shared parameter (`head.weight = emb.weight`) is one tensor with several names; it
    is identified by identity, so it is one node with one gradient, equal to its .grad.
    """
    names: dict[int, tuple[str, ...]] = {id(p): (name,) for name, p in model.named_parameters()}
    for name, p in model.named_parameters(remove_duplicate=False):
        if name not in names.get(id(p), ()):
            names[id(p)] = names.get(id(p), ()) + (name,)
    return names


def module_program(gm: torch.fx.GraphModule, model: nn.Module, notes: tuple[str, ...] = ()) -> Program:
    """The Program of a traced WithLoss module."""
    builder = _Builder(gm, model)
    for node in gm.graph.nodes:
        if node.op == "output":
            break
        getattr(builder, node.op)(node)
    steps = builder.steps
    loss = builder.index_of[builder.loss_node]
    inputs = tuple(s.index for s in steps if s.kind == "input")
    mark_shared(steps)
    return Program(steps, (inputs[0], inputs[1]), loss, "module", model, notes)


def dropout_call(x: torch.Tensor, p: float, training: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Dropout as torch runs it, plus the keep-mask it drew (None when nothing was dropped).

    torch.native_dropout draws the same Bernoulli mask as F.dropout under the same seed
    on CPU and gives the output bit for bit, so the mask shown is the one used.
    """
    if not training or p == 0:
        return F.dropout(x, p, training), None
    if p == 1:
        return F.dropout(x, p, training), torch.zeros_like(x, dtype=torch.bool)
    out, mask = torch.native_dropout(x, p, True)
    return out, mask
