"""Plain PyTorch code → Trace: the ops recorded as they run, from leaf tensors to a scalar.

Shared by `gradviz trace script.py` (the graph behind a script's backward() call) and
`gradviz.trace(fn, *tensors)`. It builds on the model fallback's recorder
(`sources.model.fallback.Recorder`: one node per torch function, one alias per use so
one backward pass yields every edge term), and adds what free-standing code needs:
leaves are the tensors that require grad (named after the variables that hold them),
factory calls and no-grad code are not recorded, a `backward()` call can be caught, and
identical repeated ops can be merged into one node (`--merge-repeats`).
"""

from __future__ import annotations

import operator
import sys
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Mapping

import torch
from torch.utils._pytree import tree_flatten, tree_map

from gradviz.core.graph import Graph
from gradviz.core.trace import Trace
from gradviz.sources.model.capture import Run, to_trace
from gradviz.sources.model.describe import call_text, partial_formulas
from gradviz.sources.model.fallback import DUNDER_OPERATORS, FallbackFailed, Recorder
from gradviz.sources.model.program import LabelSet, Program, Ref, Step, unique_label

# Calls that never become nodes: they mark, inspect or seed tensors rather than compute.
PASS_THROUGH = {"requires_grad_", "retain_grad", "register_hook", "detach", "detach_", "item", "tolist",
                "numpy", "cpu", "__repr__", "__format__", "__str__", "__bool__", "__len__", "__hash__",
                "size", "dim", "numel", "__iter__", "__float__", "__int__", "__index__", "__array__",
                "__set__", "__delete__"}  # attribute writes (p.grad = None) must reach the tensor itself
# Ops that draw random numbers or read state: two calls with the same inputs differ.
UNMERGEABLE = ("rand", "dropout", "bernoulli", "normal", "multinomial", "uniform", "poisson", "empty", "exponential")


# Arithmetic reaches the recorder as Tensor.div, Tensor.add…: shown as infix, like x1/x2.
INFIX_METHODS = {"div": operator.truediv, "add": operator.add, "sub": operator.sub, "mul": operator.mul,
                 "matmul": operator.matmul, "neg": operator.neg, "pow": operator.pow}


_LIBRARY_DIRS = tuple(str(Path(m.__file__).resolve().parent) for m in (torch, sys.modules["gradviz"]))
USER_FRAMES = 6  # frames of the user's code kept per recorded tensor, innermost first


def user_frames(limit: int = USER_FRAMES) -> list[FrameType]:
    """The frames of the user's code on the stack now (any module but torch's and gradviz's)."""
    frames = []
    frame = sys._getframe(1)
    while frame is not None and len(frames) < limit:
        filename = frame.f_code.co_filename
        if not filename.startswith(_LIBRARY_DIRS) and not filename.startswith("<frozen"):
            frames.append(frame)
        frame = frame.f_back
    return frames


def local_name(value: Any, frames: list[FrameType]) -> str | None:
    """The name a frame's locals give this very object (innermost frame first), if any."""
    for frame in frames:
        for name, bound in list(frame.f_locals.items()):
            if bound is value and not name.startswith("_") and name != "self":
                return name
    return None


def changes_in_place(name: str, kwargs: Mapping[str, Any]) -> bool:
    """Whether a torch function of this name writes into a tensor it was given (add_, __setitem__, out=)."""
    return ((name.endswith("_") and not name.startswith("__")) or name.startswith("__i")
            or name in ("__setitem__", "__set__") or "out" in kwargs)  # __set__: `p.data = …` swaps its memory


class ValueGuard:
    """Keeps a trace's values as they were at its backward(): a tensor the code is about to change
    in place (an optimizer's step, a `.data` write) is copied first. Only those are copied: a
    tensor is matched by its storage, and skipped when its version counter shows it changed
    already (too late to copy, and said so by `changed_unseen`)."""

    def __init__(self, values: Any):
        self.values = values
        self.pending: dict[int, list[tuple[int, torch.Tensor, int]]] = {}  # storage → (index, tensor, version)
        for index, tensor in values.tensors():
            try:
                key = tensor.untyped_storage().data_ptr()
            except (RuntimeError, NotImplementedError):
                continue  # no plain storage (sparse, meta): nothing to guard
            if tensor.numel():
                self.pending.setdefault(key, []).append((index, tensor, tensor._version))

    def before_change(self, args: tuple, kwargs: Mapping[str, Any]) -> None:
        """Copy every guarded tensor sharing storage with what this call writes (its self, or out=)."""
        written = tree_flatten((args[:1], kwargs.get("out")))[0]
        for tensor in written:
            if not isinstance(tensor, torch.Tensor) or not self.pending:
                continue
            try:
                key = tensor.untyped_storage().data_ptr()
            except (RuntimeError, NotImplementedError):
                continue
            for index, original, version in self.pending.pop(key, []):
                if original._version == version:
                    self.values.freeze(index)
                else:
                    self.pending.setdefault(-1, []).append((index, original, version))

    def changed_unseen(self) -> int:
        """How many guarded tensors changed without passing through before_change."""
        return sum(t._version != v for entries in self.pending.values() for _, t, v in entries)


class CodeRecorder(Recorder):
    """The fallback Recorder for free-standing code: leaves by requires_grad, names resolved late."""

    def __init__(self, merge_repeats: bool = False, names: Callable[[], list[Mapping[str, Any]]] | None = None):
        super().__init__(torch.nn.Module(), split_edges=True)
        self.merge_repeats = merge_repeats
        self.names = names or (lambda: [])  # namespaces to name leaves and modules from
        self.done = False
        self.seen: dict[Any, int] = {}  # merge key → step of the first result
        self.calls: dict[int, tuple[Any, str, Any, Any]] = {}  # step → (fn, op, shown args, shown kwargs)
        self.paths: dict[int, str] = {}
        self.guard: ValueGuard | None = None  # after the capture: the trace's values, kept as they were
        self.frames_of: dict[int, list[FrameType]] = {}  # step → the user's frames when it was made
        self.unnamed: dict[int, str] = {}  # id(module) → ClassName, ClassName_1…: one name per instance
        self.batch_size: int | None = None  # the leading size of the first top-level module call's input

    # -- recording -----------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if self.guard is not None and changes_in_place(name, kwargs):
            self.guard.before_change(args, kwargs)
        if self.done or name in PASS_THROUGH or not torch.is_grad_enabled():
            return func(*args, **kwargs)
        if name == "backward":
            return self.on_backward(func, args, kwargs)
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        if not args or not any(t.requires_grad for t in tensors):
            # Factories and work on plain data (loading, preprocessing, masks) are not part
            # of the autograd graph: their results become constant leaves where used.
            return func(*args, **kwargs)
        key = self._merge_key(func, name, args, kwargs) if self.merge_repeats else None
        if key is not None and key in self.seen:
            return self.tensors[self.seen[key]]
        out = super().__torch_function__(func, types, args, kwargs)
        if key is not None and isinstance(out, torch.Tensor) and self.step_of.get(id(out)) is not None:
            self.seen[key] = self.step_of[id(out)]
        return out

    def on_backward(self, func, args, kwargs):
        """Subclasses catch backward(); plain code just runs it."""
        return func(*args, **kwargs)

    def _merge_key(self, func: Any, name: str, args: tuple, kwargs: dict) -> Any:
        """The same function on the same recorded tensors with equal other arguments, or None."""
        if any(word in name.lower() for word in UNMERGEABLE) or (name.endswith("_") and not name.startswith("__")):
            return None

        def token(obj: Any) -> Any:
            return ("tensor", self._source(obj)) if isinstance(obj, torch.Tensor) else obj

        key = (func, repr(tree_map(token, (args, kwargs))))
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def _leaf(self, tensor: torch.Tensor, kind: str, label: str, module: str | None) -> int:
        index = super()._leaf(tensor, kind, label, module)
        self.frames_of[index] = user_frames()
        return index

    def enter(self, path: str, module: torch.nn.Module, args: tuple = ()) -> None:
        if not self.stack and self.batch_size is None and args and isinstance(args[0], torch.Tensor) \
                and args[0].ndim >= 2:
            self.batch_size = int(args[0].shape[0])
        super().enter(path, module)

    def _source(self, tensor: torch.Tensor) -> int:
        """A tensor from outside the recording: a parameter, an input (requires grad) or a constant."""
        index = self.step_of.get(id(tensor))
        if index is not None:
            return index
        if isinstance(tensor, torch.nn.Parameter):
            return self._leaf(tensor, "param", "param", None)
        if tensor.requires_grad and tensor.is_leaf:
            return self._leaf(tensor, "input", "x", None)
        return self._leaf(tensor, "const", "tensor", (self.stack[-1][0] if self.stack else None) or None)

    def _record(self, func: Any, name: str, args: tuple, kwargs: dict, out: Any, edges: list) -> None:
        if isinstance(out, torch.Tensor) and not out.requires_grad:
            return  # empty_like(x), argmax, comparisons: no gradient flows; a constant where used
        before = len(self.steps)
        super()._record(func, name, args, kwargs, out, edges)
        shown = tree_map(lambda a: Ref(self.step_of[id(a)]) if isinstance(a, torch.Tensor) and id(a) in self.step_of
                         else a, (args, kwargs))
        frames = user_frames() if len(self.steps) > before else []
        for step in self.steps[before:]:
            self.frames_of[step.index] = frames
            if step.kind == "call" and not step.container:
                op = name.strip("_") or "op"
                fn = DUNDER_OPERATORS.get(name) or (INFIX_METHODS.get(op) if not kwargs else None) or func
                self.calls[step.index] = (fn, op, *shown)

    # -- module paths (for naming and grouping) ---------------------------------------------
    def module_path(self, module: torch.nn.Module) -> str:
        """`model.fc1` for a module reachable from a variable of the code (the running frames'
        locals first, in any module), else its class name made unique per instance (Conv2d,
        Conv2d_1): two modules of one class are two frames of the picture."""
        if id(module) in self.unnamed:  # searched for once already: not held by any variable
            return self.unnamed[id(module)]
        if id(module) not in self.paths:
            namespaces = [frame.f_locals for frame in user_frames()] + list(self.names())
            for namespace in namespaces:
                for var, value in list(namespace.items()):
                    if isinstance(value, torch.nn.Module) and var != "self" and not var.startswith("_"):
                        for sub, m in value.named_modules():
                            self.paths.setdefault(id(m), f"{var}.{sub}" if sub else var)
        if id(module) in self.paths:
            return self.paths[id(module)]
        if id(module) not in self.unnamed:
            self.unnamed[id(module)] = unique_label(type(module).__name__, set(self.unnamed.values()))
        return self.unnamed[id(module)]

    # -- the trace -------------------------------------------------------------------------
    def trace(self, loss: torch.Tensor, output_name: str, info: dict[str, Any]) -> Trace:
        """Name everything, keep what `loss` depends on, and capture one backward pass."""
        if not isinstance(loss, torch.Tensor) or id(loss) not in self.step_of:
            raise FallbackFailed("the value differentiated was not computed by recorded torch operations "
                                 "from tensors that require grad")
        if loss.numel() != 1:
            raise FallbackFailed(f"the value differentiated must be a scalar, got shape {tuple(loss.shape)}")
        output = self.step_of[id(loss)]
        keep = self._ancestors(output)
        leaves = [s.index for s in self.steps if s.index in keep and s.kind in ("input", "param")]
        if not leaves:
            raise FallbackFailed("nothing it depends on requires grad (set requires_grad=True on the inputs)")
        self._name(keep, output, output_name)
        nodes = [i for i in self.nodes if i in keep]
        tensors = {i: t for i, t in self.tensors.items() if i in keep}
        inputs = (leaves[0], leaves[1] if len(leaves) > 1 else leaves[0])
        program = Program(self.steps, inputs, output, "autograd", self.model)
        run = Run(loss, tensors, nodes, {i: self.edges[i] for i in nodes},
                  {i: a for i, a in self.aux.items() if i in keep},
                  containers=any(s.container for s in self.steps), split_edges=True)
        # Scalar graphs (the lecture's) read best as the trace table of numbers; tensors as
        # the model report's statistics.
        scalar = all(t.numel() == 1 for t in tensors.values())
        info = {"source": "script" if scalar else "model", "level": "autograd",
                "dtype": str(loss.dtype).removeprefix("torch."),
                **({"batch_size": self.batch_size} if self.batch_size is not None else {}), **info}
        trace = to_trace(program, run, info)
        return rename_output(trace, output_name)

    def _name(self, keep: set[int], output: int, output_name: str) -> None:
        """Leaves after the variables that hold them, ops v1, v2… (or their module), the output by name."""
        found: dict[int, str] = {}
        frames: dict[int, FrameType] = {}  # the user's frames the kept steps were made in, in order
        for index in sorted(keep):
            for frame in self.frames_of.get(index, []):
                frames.setdefault(id(frame), frame)
        for namespace in [*(frame.f_locals for frame in frames.values()), *self.names()]:
            for var, value in list(namespace.items()):
                if var == "self" or var.startswith("_"):
                    continue
                if isinstance(value, torch.Tensor):
                    found.setdefault(id(value), var)
                elif isinstance(value, torch.nn.Module):
                    for pname, param in value.named_parameters():
                        found.setdefault(id(param), f"{var}.{pname}")
        taken: set[str] = LabelSet()
        for step in self.steps:
            if step.index in keep and step.kind in ("input", "param", "const"):
                wanted = (found.get(id(step.value)) or local_name(step.value, self.frames_of.get(step.index, []))
                          or step.label.rstrip("_0123456789") or step.kind)
                step.label = unique_label(wanted, taken)
                if step.kind == "param" and "." in step.label:
                    step.module = step.label.rpartition(".")[0]
        count = 0
        for index in self.nodes:
            step = self.steps[index]
            if index not in keep:
                continue
            if index == output:
                step.label = unique_label(output_name, taken)
            elif step.module and (step.label == step.module or step.label.startswith(step.module + "_")):
                step.label = unique_label(step.module, taken)  # the result a module returned
            elif (name := local_name(self.tensors[index], self.frames_of.get(index, []))) is not None:
                step.label = unique_label(name, taken)  # `h = torch.tanh(z)`: the code calls it h
            else:
                count += 1
                step.label = unique_label(f"v{count}", taken)
        labels = lambda i: self.steps[i].label  # noqa: E731 - one use, reads as what it is
        for index in self.nodes:
            if index in keep and index in self.calls:
                fn, op, args, kwargs = self.calls[index]
                step = self.steps[index]
                step.definition = f"{step.label} = {call_text(op, args, kwargs, labels, fn)}"
                step.partials = partial_formulas(op, step.label, [self.steps[e[0]].label for e in self.edges[index]])


def rename_output(trace: Trace, name: str) -> Trace:
    """The same trace with its one output called `name` (captures call it 'loss')."""
    if name == "loss" or list(trace.graph.outputs) != ["loss"]:
        return trace
    graph = Graph(trace.graph.nodes, {name: trace.graph.outputs["loss"]})
    return Trace(graph, trace.values, {}, {name: trace.adjoints["loss"]}, {name: trace.contributions["loss"]},
                 trace.partials, trace.aux, trace.info)


def install_module_hooks(recorder: CodeRecorder) -> Callable[[], None]:
    """Global forward hooks that tell the recorder which module runs; returns their remover."""
    pre = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: recorder.enter(recorder.module_path(module), module, args))
    post = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: recorder.leave(out), always_call=True)

    def remove() -> None:
        pre.remove()
        post.remove()

    return remove


def trace_function(fn: Callable[..., Any], tensors: tuple[Any, ...], names: list[str],
                   merge_repeats: bool = False, info: dict[str, Any] | None = None) -> Trace:
    """Run fn(*tensors) once under the recorder; the scalar it returns is the output `f`."""
    leaves = []
    for tensor in tensors:
        if not isinstance(tensor, torch.Tensor):
            tensor = torch.as_tensor(tensor, dtype=torch.float64)
        if tensor.is_floating_point() and not (tensor.requires_grad and tensor.is_leaf):
            tensor = tensor.detach().clone().requires_grad_(True)
        leaves.append(tensor)
    namespace = dict(zip(names, leaves))
    recorder = CodeRecorder(merge_repeats, lambda: [namespace])
    remove = install_module_hooks(recorder)
    try:
        with recorder:
            out = fn(*leaves)
    except FallbackFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's function failed while recording
        raise FallbackFailed(f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}") from None
    finally:
        remove()
    recorder.done = True
    return recorder.trace(out, "f", dict(info or {}))
