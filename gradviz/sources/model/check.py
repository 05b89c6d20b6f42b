"""`gradviz trace SPEC.py --check`: a model trace against independent oracles.

1. Every parameter's captured adjoint against `param.grad` of a plain
   `loss(model(x), y).backward()` on the same batch and seed (bit for bit on CPU).
2. Every edge contribution against the node's own vjp computed on its own: the node's
   function re-run on detached copies of its inputs (dropout with the mask it drew),
   then torch.autograd.grad with the node's adjoint as grad_outputs.
3. Each node's contributions summed against its adjoint (rtol 1e-5).

The capture keeps the RNG state before each node, and each recomputation starts from
it: dropout anywhere (F.dropout, nn.Dropout, inside nn.MultiheadAttention, an LSTM or
SDPA's dropout_p) draws the mask the traced step drew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from rich.text import Text

from gradviz.core.findings import sum_mismatches
from gradviz.core.trace import Trace
from gradviz.sources.model import build_program, prepare_spec, record_instead
from gradviz.sources.model.capture import Run, execute, is_container, rng_state, set_rng_state, to_trace
from gradviz.sources.model.describe import function_name
from gradviz.sources.model.program import Program, materialize

EDGE_RTOL = 1e-5


@dataclass(frozen=True)
class ModelCheck:
    """What the oracles found: the largest errors and where."""

    parameters: int
    parameter_error: float
    edges: int
    edge_error: float
    worst_edge: str
    sum_errors: tuple[str, ...]
    values: int = 0
    value_error: float = 0.0
    worst_value: str = ""
    trace: Trace | None = field(default=None, repr=False, compare=False)  # the trace that was checked

    @property
    def ok(self) -> bool:
        """Parameters exact, contributions within rtol 1e-5 of their vjps, sums consistent."""
        return self.parameter_error == 0 and self.edge_error <= EDGE_RTOL and not self.sum_errors \
            and self.value_error <= EDGE_RTOL

    def to_json(self) -> dict:
        """The check as `--check --json` prints it under "check"."""
        return {"ok": self.ok, "parameters": self.parameters, "parameter_error": self.parameter_error,
                "edges": self.edges, "edge_error": self.edge_error, "worst_edge": self.worst_edge or None,
                "sum_errors": list(self.sum_errors), "values": self.values, "value_error": self.value_error,
                "worst_value": self.worst_value or None}

    def summary(self) -> Text:
        """One line per oracle, green when it agrees."""
        text = Text()
        style = "green" if self.parameter_error == 0 else "bold red"
        text.append(f"check: {self.parameters} parameter gradients vs a plain loss.backward(): "
                    f"max |difference| {self.parameter_error:.3g}\n", style=style)
        if self.edges:
            style = "green" if self.edge_error <= EDGE_RTOL else "bold red"
            text.append(f"check: {self.edges} edge contributions vs each node's own vjp: max relative error "
                        f"{self.edge_error:.3g}" + (f" at {self.worst_edge}" if self.worst_edge else "") + "\n",
                        style=style)
            style = "green" if self.value_error <= EDGE_RTOL else "bold red"
            text.append(f"check: {self.values} node values vs each node re-run on its inputs: max relative error "
                        f"{self.value_error:.3g}" + (f" at {self.worst_value}" if self.worst_value else "") + "\n",
                        style=style)
        else:
            text.append("check: edge contributions not recomputed (the model was recorded, not traced)\n", style="dim")
        if self.sum_errors:
            text.append(f"check: contributions do not sum to the adjoint at {', '.join(self.sum_errors)}", style="bold red")
        else:
            text.append("check: every node's contributions sum to its adjoint", style="green")
        return text


def check_spec_file(path: str | Path, batch_size: int = 8, seed: int = 0, level: str = "module",
                    dtype: str | None = None, training: bool = True) -> ModelCheck:
    """Load a spec as `trace_spec` does and check its trace."""
    spec, model, x, y, _ = prepare_spec(path, batch_size, seed, dtype, training)
    return check_model(model, spec.loss, x, y, level, seed)


def check_model(model: Any, loss: Callable[[Any, Any], Any], x: Any, y: Any, level: str = "module",
                seed: int = 0) -> ModelCheck:
    """Trace `loss(model(x), y)` and compare it with the three oracles."""
    program = build_program(model, loss, x, y, level)
    xr = x.detach().requires_grad_(x.is_floating_point())
    run = None
    if isinstance(program, Program):
        torch.manual_seed(seed)
        run = execute(program, xr, y, record_rng=True)
        trace = to_trace(program, run, {"source": "model", "level": program.level, "notes": list(program.notes)})
    else:
        trace = record_instead(program, model, loss, xr, y, seed, True, {})
    parameters, parameter_error = _parameter_error(trace, model, loss, x, y, seed)
    edges, edge_error, worst, values = _edge_error(trace, program, run) if run is not None else (0, 0.0, "", None)
    sums = tuple(trace.graph.nodes[f.node].label for f in sum_mismatches(trace))
    return ModelCheck(parameters, parameter_error, edges, edge_error, worst, sums, *(values or (0, 0.0, "")),
                      trace=trace)


def _parameter_error(trace: Trace, model: Any, loss: Callable[[Any, Any], Any], x: Any, y: Any,
                     seed: int) -> tuple[int, float]:
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    torch.manual_seed(seed)
    grads = torch.autograd.grad(loss(model(x), y), [p for _, p in named], allow_unused=True)
    worst = 0.0
    by_name = {name: node for node in trace.graph.nodes if node.kind == "parameter"
               for name in node.meta.get("names", (node.label,))}
    for (name, param), grad in zip(named, grads):
        node = by_name.get(name)  # named_parameters() gives each tensor once, under torch's name
        expected = np.zeros(tuple(param.shape)) if grad is None else grad.detach().cpu().numpy()
        captured = None if node is None else trace.adjoints["loss"][node.id]
        if captured is None:
            worst = max(worst, float(np.max(np.abs(expected), initial=0.0)))
            continue
        worst = max(worst, float(np.max(np.abs(captured.astype(np.float64) - expected), initial=0.0)))
    return len(named), worst


def _edge_error(trace: Trace, program: Program, run: Run) -> tuple[int, float, str, tuple[int, float, str]]:
    """Each op node re-run on detached copies of its captured inputs: its value against the
    captured value, its vjp against the captured contributions."""
    saved = rng_state()  # the recomputation replays each node's draws; the caller's stream is left as it was
    try:
        return _edge_error_replayed(trace, program, run)
    finally:
        set_rng_state(saved)


def _edge_error_replayed(trace: Trace, program: Program, run: Run) -> tuple[int, float, str, tuple[int, float, str]]:
    gid_of = {step: gid for gid, step in enumerate(_ids(program, run))}
    adjoints = trace.adjoints["loss"]
    count, worst, where = 0, 0.0, ""
    values, value_worst, value_where = 0, 0.0, ""
    for step in run.nodes:
        child = gid_of[step]
        adjoint = adjoints[child]
        substitutes = [_substitute(run.tensors[source]) for source, _, _ in run.edges[step]]
        by_source = {(source, via): sub for (source, _, via), sub in zip(run.edges[step], substitutes)}
        out = _recompute(program, run, step, by_source, None)
        if isinstance(out, tuple):  # native_dropout → (output, mask)
            out = out[0]
        # empty/empty_like hold whatever memory held (a bernoulli_ writes into them): no value to check.
        undefined = function_name(program.steps[step].fn).startswith(("empty", "new_empty"))
        values += not undefined
        error = 0.0 if undefined else _value_error(out, run.tensors[step])
        if error > value_worst:
            value_worst, value_where = error, trace.graph.nodes[child].label
        if adjoint is None:
            continue
        wanted = [(p, s) for p, s in enumerate(substitutes) if s.requires_grad]
        if not wanted or not out.requires_grad:
            continue
        seed = torch.as_tensor(np.array(adjoint)).to(out.dtype).reshape(out.shape)
        grads = torch.autograd.grad(out, [s for _, s in wanted], grad_outputs=seed, allow_unused=True)
        for (position, sub), grad in zip(wanted, grads):
            expected = np.zeros(tuple(sub.shape)) if grad is None else grad.numpy().astype(np.float64)
            captured = trace.contributions["loss"].get((child, position))
            if captured is None:
                continue
            count += 1
            scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-30)
            error = float(np.max(np.abs(captured.astype(np.float64) - expected), initial=0.0)) / scale
            if error > worst:
                source = trace.graph.nodes[trace.graph.nodes[child].inputs[position]].label
                worst, where = error, f"{source} → {trace.graph.nodes[child].label}"
    return count, worst, where, (values, value_worst, value_where)


def _value_error(recomputed: torch.Tensor, captured: torch.Tensor) -> float:
    """Largest |recomputed − captured| relative to the largest finite |value|; equal infinities agree."""
    a = recomputed.detach().to(torch.float64)
    b = captured.detach().to(torch.float64)
    if a.shape != b.shape:
        return float("inf")
    same = (a == b) | (torch.isnan(a) & torch.isnan(b))
    if bool(same.all()):
        return 0.0
    finite = torch.isfinite(a) & torch.isfinite(b)
    if bool((~same & ~finite).any()):
        return float("inf")
    scale = max(float(b[finite].abs().max()) if bool(finite.any()) else 0.0, 1e-30)
    return float((a - b)[finite].abs().max()) / scale

def _ids(program: Program, run: Run) -> list[int]:
    from gradviz.sources.model.capture import build_graph

    return build_graph(program, run)[1]


def _substitute(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.requires_grad:
        return tensor.detach().clone().requires_grad_(True)
    return tensor


def _recompute(program: Program, run: Run, index: int, substitutes: dict[tuple[int, Any], torch.Tensor],
               via: int | None) -> Any:
    """Step `index` again, each tensor input replaced by its substitute.

    Substitutes are keyed (source step, container it came through), as the edges are; a
    container is re-run on its own substitutes, keyed by the consumer's container root.
    """
    step = program.steps[index]

    def load(i: int) -> Any:
        value = run.env[i]
        if isinstance(value, torch.Tensor):
            return substitutes[(i, via)]
        if is_container(value) and program.steps[i].kind == "call" and _has_edges(program, i):
            return _recompute(program, run, i, substitutes, _root(run, i, via))
        return value

    if step.nested:
        args, kwargs = materialize(step.args, load), materialize(step.kwargs, load)
    else:
        args = list(step.args)
        for position, i in step.slots:
            args[position] = load(i)
        kwargs = step.kwargs
    if index in run.rng:  # dropout inside a module or SDPA draws the mask it drew in the capture
        set_rng_state(run.rng[index])
    if step.dropout is not None:
        data = run.aux[index]
        return args[0] if data["mask"] is None else args[0] * data["mask"] * (1 / (1 - data["p"]))
    if step.fn is torch.ops.aten.native_dropout.default:
        _, mask = run.env[index]
        return args[0] * mask * (1 / (1 - args[1])), mask
    if step.params:
        override = {name: substitutes[(i, via)] for name, i in step.params}
        return torch.func.functional_call(step.leaf, override, tuple(args), kwargs)
    return step.fn(*args, **kwargs)


def _root(run: Run, container: int, via: int | None) -> int:
    """The root a consumer's edges name for a container: the outermost tuple it came from."""
    return via if via is not None else run.roots[container]


def _has_edges(program: Program, index: int) -> bool:
    from gradviz.sources.model.program import refs_in

    step = program.steps[index]
    return bool(refs_in((step.args, step.kwargs))) or bool(step.params)
