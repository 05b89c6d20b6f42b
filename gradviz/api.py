"""`gradviz.trace(...)`: the command line's Trace from Python, and an object that shows it.

One entry point for every source the command line reads, plus live objects:

    gradviz.trace("(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", x1=0.5, x2=1.0)
    gradviz.trace(model, x, target=y, loss=F.cross_entropy)      # any nn.Module
    gradviz.trace(fn, a, b)                                       # fn returns a scalar tensor
    gradviz.trace("samples/two_layer_mlp.py")                     # a spec or a plain script

The result (a :class:`Traced`) answers values, adjoints, edge terms and gradients by node
label, prints as `gradviz trace` does, exports, opens the stepper, and draws itself in
Jupyter. torch is imported only when a model, a function or tensors are traced.
"""

from __future__ import annotations

import inspect
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from gradviz.errors import GradvizError, UsageError

if TYPE_CHECKING:
    from gradviz.core.findings import Finding
    from gradviz.core.trace import Trace

MODES = ("forward", "tangent", "reverse")
FIRST = "₁"  # c₁ asks for the first value of a name assigned again (labelled c; then c₂, c₃…)


class Traced:
    """A traced computation: the Trace plus how to read, print, export and step through it."""

    def __init__(self, trace: Trace, source: str = "", check: Any = None):
        self.trace = trace
        self.source = source
        self.check = check  # the oracles' verdict when traced with check=True, else None
        self._svg: str | None = None

    # -- reading by label --------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        """Every node's label, in topological order."""
        return [node.label for node in self.trace.graph.nodes]

    @property
    def inputs(self) -> list[str]:
        """Labels of the differentiable leaves (inputs and parameters)."""
        return list(self.trace.input_labels)

    @property
    def outputs(self) -> list[str]:
        """Output names (`f`, `loss`)."""
        return list(self.trace.output_names)

    def value(self, label: str) -> np.ndarray:
        """The forward value of node `label`."""
        return self.trace.values[self._id(label)]

    def adjoint(self, label: str, output: str | None = None) -> np.ndarray | None:
        """v̄ = ∂output/∂label (None where nothing is differentiated: constants)."""
        return self.trace.adjoints[self._output(output)][self._id(label)]

    def tangent(self, label: str, wrt: str | None = None) -> np.ndarray | None:
        """v' = ∂label/∂wrt along all-ones (forward mode; expressions only)."""
        if not self.trace.tangents:
            raise GradvizError("this trace has no forward-mode tangents (models and scripts are traced in reverse mode)")
        wrt = wrt or next(iter(self.trace.tangents))
        if wrt not in self.trace.tangents:
            raise GradvizError(f"no tangent pass for {wrt!r} (inputs: {', '.join(self.trace.tangents)})")
        return self.trace.tangents[wrt][self._id(label)]

    def gradient(self, input_label: str, output: str | None = None) -> np.ndarray | None:
        """∂output/∂input for a leaf: for a parameter, what `param.grad` holds."""
        node = self.trace.graph.find(input_label)
        if node is not None and node.id in self.trace.graph.input_ids:  # an input assigned again is still the input
            return self.trace.adjoints[self._output(output)][node.id]
        return self.adjoint(input_label, output)

    @property
    def gradients(self) -> dict[str, np.ndarray | None]:
        """∂output/∂input for every input and parameter (the first output's)."""
        return {label: self.gradient(label) for label in self.inputs}

    def edge_terms(self, label: str, output: str | None = None) -> dict[str, np.ndarray]:
        """The terms v̄_j·∂v_j/∂v of node `label`'s adjoint, keyed by child label; they sum to it.

        A child using the node twice has keys `child` and `child#1`.
        """
        terms: dict[str, np.ndarray] = {}
        for (child, _), value in self.trace.edge_terms(self._output(output), self._id(label)):
            if value is None:
                continue
            key = self.trace.graph.nodes[child].label
            n = 0
            while key in terms:
                n += 1
                key = f"{self.trace.graph.nodes[child].label}#{n}"
            terms[key] = value
        return terms

    @property
    def findings(self) -> list[Finding]:
        """The debugging signals: NaN/Inf origins, vanishing or exploding adjoints, dead units…"""
        from gradviz.core.findings import find_issues

        return find_issues(self.trace)

    # -- views -------------------------------------------------------------------------------
    def to_json(self, full: bool = False) -> dict[str, Any]:
        """The `gradviz trace --json` document (schema in the README), as Python data."""
        from gradviz.views.json_report import trace_to_json

        return trace_to_json(self.trace, self.source, full=full)

    def export(self, path: str | Path, mode: str = "reverse", step: int | None = None,
               detail: str = "full") -> Path:
        """Write the graph as .svg, .png, .pdf or .dot (as `gradviz export` does); returns the path."""
        from gradviz.draw.export import export_trace

        return export_trace(self.trace, Path(path), _mode(mode), step, self._wrt(), None, detail)

    def svg(self, mode: str = "reverse", detail: str = "full") -> str:
        """The drawing as SVG text: values and adjoints on the nodes, big graphs folded to fit."""
        from gradviz.draw.export import make_picture, render

        if mode == "reverse" and detail == "full" and self._svg is not None:
            return self._svg
        text = render(make_picture(self.trace, None, _mode(mode), self._wrt(), None, detail), "svg").decode("utf-8")
        if mode == "reverse" and detail == "full":
            self._svg = text
        return text

    def step(self, start: int = 0, detail: str = "full") -> None:
        """Open the stepper on this trace (blocks until you quit it with q)."""
        # The API is a front end, as the command line is: it opens the stepper as `gradviz
        # step` does, importing textual only here (tests/test_import_graph.py holds the layers).
        from gradviz.streams import terminal_problem
        from gradviz.tui.app import StepperApp

        problem = terminal_problem()
        if problem:  # the app would wait for keys that never come
            raise GradvizError(f"the stepper is an interactive app and {problem}; print the trace instead (print(traced))")
        spec = self.source if self.trace.info.get("spec") == self.source else None
        StepperApp(self.trace, source=self.source or "python", spec_path=spec, wrt=None, start=start,
                   detail=detail).run()

    def report(self, width: int | None = None) -> str:
        """What `gradviz trace` prints for this trace, as plain text."""
        from rich.console import Console

        from gradviz.views.trace_report import trace_report

        from gradviz.streams import TrimmedLines

        buffer = io.StringIO()
        console = Console(file=TrimmedLines(buffer), width=width or _terminal_width(), color_system=None,
                          force_terminal=False)  # as `gradviz trace` prints to a pipe: no trailing spaces
        console.print(trace_report(self.trace, "all", self._wrt()))
        if self.check is not None:
            console.print(self.check.summary())
        return buffer.getvalue()

    def __str__(self) -> str:
        return self.report()

    def __repr__(self) -> str:
        outputs = ", ".join(self.outputs)
        return f"<gradviz.Traced {self.source or 'trace'!s}: {len(self.trace.graph.nodes)} nodes, output {outputs}>"

    def __rich__(self) -> Any:
        from gradviz.views.trace_report import trace_report

        return trace_report(self.trace, "all", self._wrt())

    def _picture(self) -> tuple[str | None, str]:
        """(the drawing as SVG, '') or (None, the one-line reason there is none)."""
        try:
            return self.svg(), ""
        except GradvizError as exc:
            return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__

    def _repr_svg_(self) -> str:
        """Jupyter: the exported drawing, or a one-line picture of why there is none."""
        import html

        svg, reason = self._picture()
        if svg is not None:
            return svg
        line = html.escape(f"gradviz: no drawing: {reason}")
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{12 + 7 * len(reason) + 140}" height="24">'
                f'<text x="6" y="16" font-family="monospace" font-size="12">{line}</text></svg>')

    def _repr_html_(self) -> str:
        """Jupyter: the drawing inline, with the gradients in a line above it (or why there is no drawing)."""
        import html
        import re

        svg, reason = self._picture()
        if svg is None:
            return f'<div class="gradviz" style="font-family:monospace">gradviz: no drawing: {html.escape(reason)}</div>'

        svg = re.sub(r"^\s*<\?xml[^>]*>\s*", "", svg)  # a declaration is not allowed inside HTML
        shown = self.trace.graph.shown_output(self.outputs[0])  # c₃ where the name c was assigned again
        grads = ", ".join(f"∂{shown}/∂{k} = {_short(v)}" for k, v in list(self.gradients.items())[:8])
        return (f'<div class="gradviz"><div style="font-family:monospace">{html.escape(grads)}</div>'
                f'<div style="overflow:auto;max-height:80vh">{svg}</div></div>')

    # -- helpers -------------------------------------------------------------------------------
    def _id(self, label: str) -> int:
        graph = self.trace.graph
        later = [n.label for n in graph.nodes if n.meta.get("rebinds") == label]
        if later:  # `c` names several values: say which labels hold them (as the table does)
            middle = "".join(f", {name!r}" for name in reversed(later[:-1]))
            raise GradvizError(f"{label!r} was assigned {len(later) + 1} times, so it names {len(later) + 1} values: "
                               f"ask for {later[-1]!r} (its value at the end){middle} or {label + FIRST!r} "
                               f"(its first value, labelled {label} in the table)")
        if label.endswith(FIRST) and any(n.meta.get("rebinds") == label[:-1] for n in graph.nodes):
            label = label[:-1]  # c₁: the first of the values c₂, c₃… follow
        node = graph.find(label)
        if node is None:
            shown = ", ".join(self.labels[:20]) + (" …" if len(self.labels) > 20 else "")
            raise GradvizError(f"no node labelled {label!r} (labels: {shown})")
        return node.id

    def _output(self, output: str | None) -> str:
        if output is None:
            if not self.trace.adjoints:
                raise GradvizError("this trace has no reverse pass")
            return next(iter(self.trace.adjoints))
        if output not in self.trace.adjoints:
            raise GradvizError(f"no output {output!r} (outputs: {', '.join(self.trace.adjoints)})")
        return output

    def _wrt(self) -> str | None:
        return next(iter(self.trace.tangents), None)


def trace(source: Any, *args: Any, target: Any = None, loss: Callable[[Any, Any], Any] | None = None,
          level: str = "module", train: bool = True, check: bool = False, seed: int = 0,
          dtype: str | None = None, shapes: Mapping[str, tuple[int, ...]] | None = None,
          merge_repeats: bool = False, backward: int = 1, **values: Any) -> Traced:
    """Trace an expression, a module, a function, a spec or a script into a :class:`Traced`.

    - ``trace("exp(x1/x2) * x2", x1=0.5, x2=1.0)``: values as numbers, lists, numpy arrays
      or tensors; ``shapes={"W": (2, 3)}`` draws the missing ones (seeded by ``seed``).
    - ``trace(model, inputs, target=y, loss=F.cross_entropy)``: one forward and backward of
      ``loss(model(inputs), target)``; ``level`` 'module' or 'aten'; ``train=False`` traces
      in evaluation mode (the model's own mode is restored afterwards).
    - ``trace(fn, *tensors)``: ``fn(*tensors)`` must return a scalar tensor.
    - ``trace("file.py")``: a spec file, or a plain script (its ``backward``-th
      backward() call, ``merge_repeats`` as the command line's ``--merge-repeats``).
    ``check=True`` compares the derivatives with independent oracles (``.check``).

    Every failure is a :class:`GradvizError` (a subclass) with the one line the command line
    prints; an error raised by your own model, loss or function is chained as its cause.
    """
    try:
        return _trace(source, args, target, loss, level, train, check, seed, dtype, shapes, merge_repeats,
                      backward, values)
    except GradvizError:
        raise
    except (Exception, SystemExit) as exc:  # the API's boundary: the same one line as the CLI's
        text = " ".join(str(exc).split())[:300] or "no message"
        raise GradvizError(f"{type(exc).__name__}: {text}") from exc


def _trace(source: Any, args: tuple, target: Any, loss: Any, level: str, train: bool, check: bool, seed: int,
           dtype: str | None, shapes: Any, merge_repeats: bool, backward: int, values: dict[str, Any]) -> Traced:
    if dtype is not None and dtype not in ("float32", "float64"):
        raise UsageError(f"dtype {dtype!r}: gradviz traces in 'float32' or 'float64'")
    if isinstance(source, str):
        if source.endswith(".py") and not values:
            from gradviz.files.read import check_regular

            check_regular(source, "spec or script")  # a missing file is named, not parsed as an expression
            return _trace_file(source, level, train, check, seed, dtype, merge_repeats, backward)
        return _trace_expression(source, values, _shapes(shapes), seed, dtype or "float64", check)
    if values:
        raise GradvizError(f"named values ({', '.join(values)}) are for expressions; pass tensors positionally")
    import torch

    if isinstance(source, torch.nn.Module):
        if len(args) != 1:
            raise GradvizError("trace(model, inputs, target=..., loss=...): give the model's input as one tensor")
        return _trace_module(source, args[0], target, loss, level, train, check, seed, dtype)
    if callable(source):
        return _trace_callable(source, args, check, merge_repeats)
    raise GradvizError(f"cannot trace a {type(source).__name__}: give an expression, an nn.Module, a function or a .py file")


def _trace_expression(text: str, values: Mapping[str, Any], shapes: Any, seed: int, dtype: str,
                      check: bool) -> Traced:
    from gradviz.sources.expr import trace_expression

    at = {name: _array(name, value) for name, value in values.items()}
    traced = trace_expression(text, at, shapes, seed, dtype)
    result = None
    if check:
        from gradviz.check import check_trace

        result = check_trace(traced, text)
    return Traced(traced, text, result)


def _shapes(shapes: Any) -> dict[str, tuple[int, ...]]:
    """shapes={'W': (2, 3)} (or '2x3', as --shape takes it) as tuples of positive whole numbers."""
    from gradviz.sources.bindings import parse_shapes

    if shapes is None:
        return {}
    if not isinstance(shapes, Mapping):
        raise UsageError(f"shapes must be a dict like {{'W': (2, 3)}}, not a {type(shapes).__name__}")
    out = {}
    for name, shape in shapes.items():
        if isinstance(shape, str):
            out.update(parse_shapes([f"{name}={shape}"]))
            continue
        dims = (shape,) if isinstance(shape, int) else shape
        if not isinstance(dims, (tuple, list)) or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                          for d in dims):
            raise UsageError(f"shapes[{name!r}]: {shape!r} is not a shape like (2, 3) or '2x3'")
        out[name] = tuple(dims)
    return out


def _array(name: str, value: Any) -> np.ndarray:
    """A value given in Python (number, nested list, numpy array, tensor) as a float array."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise GradvizError(f"{name}: {type(value).__name__} is not a number, a list of numbers or an array") from None
    return array


def _trace_module(model: Any, inputs: Any, target: Any, loss: Any, level: str, train: bool, check: bool,
                  seed: int, dtype: str | None) -> Traced:
    import torch

    from gradviz.sources.model import ModelRunError, to_dtype, trace_model

    if loss is None:
        if target is not None:
            raise GradvizError("trace(model, inputs, target=...): say which loss, e.g. loss=F.cross_entropy")
        loss = _output_itself
    if target is None:
        target = torch.zeros(())
    if not isinstance(inputs, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise GradvizError("trace(model, inputs, target=..., loss=...): inputs and target must be tensors")
    was_training = model.training
    model, inputs, target = to_dtype(model, inputs, target, dtype)
    model.train(train)
    info = {"name": type(model).__name__, "batch_size": inputs.shape[0] if inputs.dim() else 1, "seed": seed,
            "training": train}
    try:
        _check_loss(model, loss, inputs, target)
        traced = trace_model(model, loss, inputs, target, level=level, seed=seed, info=info)
        result = None
        if check:
            from gradviz.sources.model.check import check_model

            result = check_model(model, loss, inputs, target, level, seed)
    except ModelRunError as exc:
        raise GradvizError(f"{type(model).__name__}: {exc}") from None
    finally:
        model.train(was_training)
    return Traced(traced, type(model).__name__, result)


def _output_itself(output: Any, _target: Any) -> Any:
    """The loss when none is given: the model's output must be a scalar already."""
    return output


def _check_loss(model: Any, loss: Callable[[Any, Any], Any], inputs: Any, target: Any) -> None:
    """loss(model(inputs), target) once, without gradients, on a forked RNG and with the
    buffers put back (the trace's dropout masks and BatchNorm statistics stay the same): it
    must be one number as a tensor, what backward() needs."""
    import torch

    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}  # BatchNorm's running stats
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            value = loss(model(inputs), target)
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
    given = "the model's output" if loss is _output_itself else "loss(output, target)"
    if not isinstance(value, torch.Tensor):
        raise UsageError(f"{given} is a {type(value).__name__}, not a tensor; return the loss as a one-element tensor")
    if value.numel() != 1:
        hint = "; give target=... and loss=..." if loss is _output_itself else "; reduce it, e.g. .mean()"
        raise UsageError(f"{given} has shape {tuple(value.shape)}, not one number{hint}")


def _trace_callable(fn: Callable[..., Any], args: tuple, check: bool, merge_repeats: bool) -> Traced:
    from gradviz.sources.model.fallback import FallbackFailed
    from gradviz.sources.recorded import trace_function

    name = getattr(fn, "__name__", "function")
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = params[:len(args)] + [f"x{i + 1}" for i in range(len(params), len(args))]
    try:
        traced = trace_function(fn, args, names, merge_repeats, {"name": name})
    except FallbackFailed as exc:
        raise GradvizError(f"{name}: {exc}") from None
    return Traced(traced, name, _check_function(fn, traced, args, names) if check else None)


def _check_function(fn: Callable[..., Any], traced: Trace, args: tuple, names: list[str]) -> Any:
    """The oracle for functions: torch.autograd.grad of a plain call on fresh copies."""
    import torch

    from gradviz.check import CheckResult

    leaves = [torch.as_tensor(a).detach().clone().to(torch.float64 if not torch.is_tensor(a) else a.dtype)
              .requires_grad_(True) for a in args]
    grads = torch.autograd.grad(fn(*leaves), leaves, allow_unused=True)
    worst = 0.0
    for name, grad in zip(names, grads):
        node = traced.graph.find(name)
        if node is None or grad is None:
            continue
        ours = np.asarray(traced.adjoints[traced.output_names[0]][node.id], dtype=np.float64)
        theirs = grad.double().numpy()
        worst = max(worst, float(np.max(np.abs(ours - theirs) / (np.abs(theirs) + 1e-12), initial=0.0)))
    return CheckResult({"torch.autograd": worst})


def _trace_file(path: str, level: str, train: bool, check: bool, seed: int, dtype: str | None,
                merge_repeats: bool, backward: int) -> Traced:
    from gradviz.sources.script import is_spec_file, trace_script
    from gradviz.sources.spec_run import running_spec

    if not is_spec_file(path):
        with running_spec(path, "the script"):  # bounded in time; exits, forks and streams kept
            return Traced(trace_script(path, backward, merge_repeats), path)
    from gradviz.sources.model import trace_spec

    traced = trace_spec(path, seed=seed, level=level, dtype=dtype, training=train)
    result = None
    if check:
        from gradviz.sources.model.check import check_spec_file

        result = check_spec_file(path, 8, seed, level, dtype, train)
    return Traced(traced, path, result)


def _mode(mode: str) -> str:
    if mode not in MODES:
        raise GradvizError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
    return mode


def _short(value: Any) -> str:
    from gradviz.core.fmt import fmt_value

    return "—" if value is None else fmt_value(value)


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns
