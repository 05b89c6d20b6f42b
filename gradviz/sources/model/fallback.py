"""The fallback for models fx cannot trace (data-dependent control flow): record the graph
as autograd builds it, one node per torch function that runs, with the branch the batch took.

A TorchFunctionMode sees every torch function call (F.linear inside nn.Linear, torch.sigmoid,
x + y, the loss); each call whose result holds tensors becomes a node, its tensor arguments
its inputs. Every argument that requires grad is passed as its own alias, so the one
backward pass yields each edge's contribution, as in model.capture. Module paths come from
global forward hooks; the op whose result a torch.nn module returns is named after the
module (`fc1`). The result is the same Program/Run pair model.capture turns into a Trace.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

from gradviz.core.trace import Trace
from gradviz.sources.model.capture import Run, to_trace
from gradviz.sources.model.describe import call_text, partial_formulas
from gradviz.sources.model.fx import dropout_call, parameter_names
from gradviz.sources.model.program import LabelSet, Program, Ref, Step, unique_label

DUNDER_OPERATORS = {"__add__": operator.add, "__sub__": operator.sub, "__mul__": operator.mul,
                    "__truediv__": operator.truediv, "__matmul__": operator.matmul, "__neg__": operator.neg,
                    "__pow__": operator.pow, "__getitem__": operator.getitem}
TENSOR_PROPERTIES = {"T", "mT", "H", "mH"}  # attribute reads that compute a new tensor


class FallbackFailed(Exception):
    """Recording the run failed (an in-place op on a tensor that needs a gradient, an error)."""


def record_model(model: torch.nn.Module, loss: Callable[[Any, Any], Any], x: torch.Tensor, y: torch.Tensor,
                 split_edges: bool, info: dict[str, Any]) -> Trace:
    """Run loss(model(x), y) once under the recorder, then one backward pass: the Trace."""
    from gradviz.sources.model.fx import prepare_model

    prepare_model(model)
    recorder = Recorder(model, split_edges)
    recorder.add_input(x, "x")
    recorder.add_input(y, "y")
    paths = {id(m): name for name, m in model.named_modules()}
    pre = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: recorder.enter(paths.get(id(module), type(module).__name__), module))
    post = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: recorder.leave(out), always_call=True)
    try:
        with recorder:
            value = loss(model(x), y)
    except FallbackFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model failed while recording
        raise FallbackFailed(f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}") from None
    finally:
        pre.remove()
        post.remove()
    program, run = recorder.finish(value)
    return to_trace(program, run, info)


class Recorder(TorchFunctionMode):
    """Records each torch function call as a Step, its result as a node of the Run."""

    def __init__(self, model: torch.nn.Module, split_edges: bool):
        super().__init__()
        self.model = model
        self.split_edges = split_edges
        self.params = parameter_names(model)  # by identity: a shared parameter is one leaf
        self.steps: list[Step] = []
        self.tensors: dict[int, torch.Tensor] = {}
        self.nodes: list[int] = []
        self.edges: dict[int, list] = {}
        self.aux: dict[int, dict[str, Any]] = {}
        self.step_of: dict[int, int] = {}  # id(tensor) → step; tensors are kept alive, so ids stay unique
        self.taken: set[str] = LabelSet()
        self.stack: list[list[Any]] = []  # [module path, is a torch.nn module, ops so far]

    # -- module stack ------------------------------------------------------------------
    def enter(self, path: str, module: torch.nn.Module) -> None:
        self.stack.append([path, type(module).__module__.startswith("torch.nn")])

    def leave(self, output: Any) -> None:
        """A torch.nn module's result is named after the module (`fc1`), as at module level."""
        if not self.stack:
            return
        path, builtin = self.stack.pop()
        index = self.step_of.get(id(output)) if isinstance(output, torch.Tensor) else None
        if builtin and path and index is not None and self.steps[index].kind == "call":
            step = self.steps[index]
            if step.module == path:  # made inside this call, not passed through it
                self.taken.discard(step.label)
                old, step.label = step.label, unique_label(path, self.taken)
                step.definition = step.label + step.definition[len(old):]

    # -- leaves --------------------------------------------------------------------------
    def add_input(self, tensor: torch.Tensor, label: str) -> None:
        self._leaf(tensor, "input", label, None)

    def _leaf(self, tensor: torch.Tensor, kind: str, label: str, module: str | None) -> int:
        step = Step(index=len(self.steps), kind=kind, label=unique_label(label, self.taken), op=kind,
                    value=tensor, module=module)
        self.steps.append(step)
        self.tensors[step.index] = tensor
        self.step_of[id(tensor)] = step.index
        return step.index

    def _source(self, tensor: torch.Tensor) -> int:
        """The step a tensor argument comes from; parameters and stray tensors become leaves."""
        index = self.step_of.get(id(tensor))
        if index is not None:
            return index
        names = self.params.get(id(tensor))
        if names is not None:
            index = self._leaf(tensor, "param", names[0], names[0].rpartition(".")[0] or None)
            if len(names) > 1:
                self.steps[index].attrs["names"] = names
            return index
        return self._leaf(tensor, "const", "tensor", (self.stack[-1][0] if self.stack else None) or None)

    # -- ops ---------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "__get__":
            prop = getattr(getattr(func, "__self__", None), "__name__", "")
            if prop not in TENSOR_PROPERTIES:
                return func(*args, **kwargs)
            name = prop
        inplace = (name.endswith("_") and not name.startswith("__")) or name.startswith("__i") \
            or name == "__setitem__" or kwargs.get("inplace") is True
        if inplace and args and isinstance(args[0], torch.Tensor) and args[0].requires_grad:
            raise FallbackFailed(f"in-place {name} on a tensor that requires grad; write it out of place")
        edges: list[tuple[int, Any, Any]] = []
        passed: dict[int, Any] = {}  # one edge and one alias per tensor, however often it is passed

        def use(obj: Any) -> Any:
            if not isinstance(obj, torch.Tensor):
                return obj
            if id(obj) in passed:
                return passed[id(obj)]
            index = self._source(obj)
            value = obj
            if self.split_edges and obj.requires_grad and not inplace:
                value = obj.view_as(obj)
                edges.append((index, value, None))
            else:
                edges.append((index, None, None))
            passed[id(obj)] = value
            return value

        call_args, call_kwargs = tree_map(use, args), tree_map(use, kwargs)
        if func is F.dropout:
            p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
            training = bool(kwargs.get("training", args[2] if len(args) > 2 else True))
            out, mask = dropout_call(call_args[0], p, training)
            self._record(func, "dropout", (args[0],), {"p": p, "training": training}, out, edges[:1])
            index = self.step_of[id(out)]
            self.aux[index] = {"mask": mask, "p": float(p), "training": training,
                               "model_training": self.model.training}
            return out
        out = func(*call_args, **call_kwargs)
        if inplace and isinstance(args[0], torch.Tensor) and id(args[0]) in self.step_of:
            old = self.step_of.pop(id(args[0]))
            self.tensors[old] = args[0].detach().clone()  # its value before the op changed it
        self._record(func, name, args, kwargs, out, edges)
        return out

    def _record(self, func: Any, name: str, args: tuple, kwargs: dict, out: Any, edges: list) -> None:
        tensors = [t for t in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(t, torch.Tensor)]
        if not tensors or not edges and not isinstance(out, torch.Tensor):
            return
        op = name.strip("_") or type(func).__name__
        fn = DUNDER_OPERATORS.get(name, func)
        label = self._label(op)
        shown = tree_map(lambda a: Ref(self.step_of[id(a)]) if isinstance(a, torch.Tensor) and id(a) in self.step_of
                         else a, (args, kwargs))
        text = call_text(op, shown[0], shown[1], lambda i: self.steps[i].label, fn)
        module = (self.stack[-1][0] if self.stack else None) or None
        inputs = [self.steps[e[0]].label for e in edges]
        if isinstance(out, torch.Tensor):
            self._node(label, op, f"{label} = {text}", module, out, edges, partial_formulas(op, label, inputs))
            return
        # A tuple of tensors: one node per piece, each fed through the tuple (its container).
        container = Step(index=len(self.steps), kind="call", label=label, op=op, module=module, container=True)
        self.steps.append(container)
        for k, piece in enumerate(out):
            if isinstance(piece, torch.Tensor):
                piece_label = unique_label(f"{label}[{k}]", self.taken)
                self._node(piece_label, op, f"{piece_label} = {text}[{k}]", module, piece,
                           [(s, a, container.index) for s, a, _ in edges], None)

    def _label(self, op: str) -> str:
        return unique_label(op, self.taken)

    def _node(self, label: str, op: str, definition: str, module: str | None, out: torch.Tensor,
              edges: list, partials: tuple[str, ...] | None) -> None:
        step = Step(index=len(self.steps), kind="call", label=label, op=op, module=module,
                    definition=definition, partials=partials)
        self.steps.append(step)
        self.tensors[step.index] = out
        self.nodes.append(step.index)
        self.edges[step.index] = edges
        self.step_of[id(out)] = step.index

    # -- result ------------------------------------------------------------------------
    def finish(self, loss: Any) -> tuple[Program, Run]:
        """Name the loss node, keep what the loss depends on, and package Program and Run."""
        if not isinstance(loss, torch.Tensor) or id(loss) not in self.step_of:
            raise FallbackFailed("the loss was not computed by recorded torch operations")
        output = self.step_of[id(loss)]
        step = self.steps[output]
        if step.kind == "call":
            self.taken.discard(step.label)
            old = step.label
            step.label = unique_label("loss", self.taken)
            step.definition = step.label + step.definition[len(old):]
        keep = self._ancestors(output) | {s.index for s in self.steps if s.kind == "input"}
        tensors = {i: t for i, t in self.tensors.items() if i in keep}
        nodes = [i for i in self.nodes if i in keep]
        inputs = [s.index for s in self.steps if s.kind == "input"]
        program = Program(self.steps, (inputs[0], inputs[1]), output, "autograd", self.model)
        run = Run(loss, tensors, nodes, {i: self.edges[i] for i in nodes},
                  {i: a for i, a in self.aux.items() if i in keep},
                  containers=any(s.container for s in self.steps), split_edges=self.split_edges)
        return program, run

    def _ancestors(self, output: int) -> set[int]:
        seen = {output}
        stack = [output]
        while stack:
            for source, _, _ in self.edges.get(stack.pop(), []):
                if source not in seen:
                    seen.add(source)
                    stack.append(source)
        return seen

