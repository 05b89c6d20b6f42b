"""Model specs → Trace: the model traced into gradviz's graph, filled from one real
forward and backward run on one batch.

Levels: 'module' (torch.fx, one node per module call or tensor function), 'aten'
(make_fx, one node per aten op). A model fx cannot trace (data-dependent control flow)
falls back to recording the ops as they run ('autograd' level), and says why.

Forward-mode tangents are not computed for models: the full Jacobian would take one
forward-mode pass per input element (thousands), where reverse mode takes one pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from gradviz.core.trace import Trace
from gradviz.errors import GradvizError, SpecError

LEVELS = ("module", "aten")
KEEPS = ("full", "summaries")  # --keep: every tensor, or each tensor's statistics only
DTYPES = ("float32", "float64")


def trace_spec(path: str | Path, batch_size: int = 8, seed: int = 0, level: str = "module",
               dtype: str | None = None, training: bool = True, keep: str = "full") -> Trace:
    """Load a spec file and trace its model on one seeded batch of `batch_size` rows.

    `dtype` None keeps the model's own dtype; 'float32'/'float64' converts model and data.
    `training` False traces in evaluation mode (dropout off). `keep` 'summaries' keeps
    each value's, adjoint's and edge term's statistics instead of the tensor (summaries.py).
    """
    from gradviz.sources.spec_output import output_note

    spec, model, x, y, info = prepare_spec(path, batch_size, seed, dtype, training)
    try:
        trace = trace_model(model, spec.loss, x, y, level=level, seed=seed, info=info, keep=keep)
    except ModelRunError as exc:
        raise SpecError(f"{path}: {exc}") from None
    if output_note(model):  # a tuple/dict/dataclass forward result: say which element was taken
        trace.info.setdefault("notes", []).append(output_note(model))
    return trace


def prepare_spec(path: str | Path, batch_size: int, seed: int, dtype: str | None, training: bool):
    """(spec, model, x, y, info): the spec loaded and checked, its model built with torch
    seeded by `seed` (as `gradviz train --seed` does), and one seeded batch."""
    from gradviz.sources.spec import build_model, check_spec, load_spec, make_data

    spec = load_spec(path, check=False)  # built and checked once, below
    import torch

    x_all, y_all = make_data(spec, seed)
    x, y = pick_batch(x_all, y_all, batch_size, seed)
    torch.manual_seed(seed)
    model = build_model(spec)
    check_spec(spec, seed, model, (x_all, y_all))
    model, x, y = to_dtype(model, x, y, dtype)
    model.train(training)
    info = {"spec": str(path), "name": spec.name, "batch_size": x.shape[0], "seed": seed,
            "training": training, "examples": x_all.shape[0]}
    return spec, model, x, y, info


def pick_batch(x: Any, y: Any, batch_size: int, seed: int) -> tuple[Any, Any]:
    """`batch_size` rows drawn without replacement by a generator seeded with `seed`."""
    import torch

    n = x.shape[0]
    if batch_size < 1:
        raise GradvizError(f"--batch-size {batch_size}: must be at least 1")
    if batch_size > n:
        raise GradvizError(f"--batch-size {batch_size} is larger than the data ({n} examples)")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:batch_size]
    return x[order], y[order]


def to_dtype(model: Any, x: Any, y: Any, dtype: str | None) -> tuple[Any, Any, Any]:
    """Model and floating-point data converted to `dtype` (None: unchanged)."""
    if dtype is None:
        return model, x, y
    import torch

    if dtype not in DTYPES:
        raise GradvizError(f"--dtype {dtype}: models run in {' or '.join(DTYPES)}")
    target = getattr(torch, dtype)
    convert = (lambda t: t.to(target) if t.is_floating_point() else t)  # noqa: E731 - tiny and local
    return model.to(target), convert(x), convert(y)


class ModelRunError(Exception):
    """Running the traced model failed at a node (a problem in the spec, not in gradviz)."""


def trace_model(model: Any, loss: Callable[[Any, Any], Any], x: Any, y: Any, level: str = "module",
                seed: int = 0, split_edges: bool = True, info: dict[str, Any] | None = None,
                keep: str = "full") -> Trace:
    """Trace `loss(model(x), y)` at `level` and capture one forward and backward run.

    torch's RNG is seeded with `seed` just before the forward, so dropout draws the
    masks a plain `torch.manual_seed(seed); loss(model(x), y).backward()` would.
    """
    if level not in LEVELS:
        raise GradvizError(f"--level {level}: choose one of {', '.join(LEVELS)}")
    if keep not in KEEPS:
        raise GradvizError(f"--keep {keep}: choose one of {', '.join(KEEPS)}")
    program = build_program(model, loss, x, y, level)
    return run_program(program, model, loss, x, y, seed, split_edges, info or {}, keep)


def build_program(model: Any, loss: Callable[[Any, Any], Any], x: Any, y: Any, level: str):
    """The Program for `level`, or the fallback recorder's marker when fx refuses the model."""
    if level == "aten":
        from gradviz.sources.model.aten import aten_program

        try:
            return aten_program(model, loss, x, y)
        except Exception as exc:  # noqa: BLE001 - make_fx and functionalize raise many types
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ModelRunError(f"make_fx cannot trace the model at aten level ({type(exc).__name__}: {first}); "
                                "try --level module") from None
    from gradviz.sources.model.fx import FxRefused, module_program, prepare_model, trace_module_level

    prepare_model(model)
    try:
        gm, notes = trace_module_level(model, loss)
        return module_program(gm, model, notes)
    except FxRefused as refused:
        return refused


def run_program(program: Any, model: Any, loss: Callable[[Any, Any], Any], x: Any, y: Any, seed: int,
                split_edges: bool, info: dict[str, Any], keep: str = "full") -> Trace:
    """Capture the program, or record the run directly where fx refused the model."""
    import torch

    from gradviz.sources.model.capture import NodeFailed, capture
    from gradviz.sources.model.summaries import capture_summaries
    from gradviz.sources.model.fx import FxRefused

    x = x.detach().requires_grad_(x.is_floating_point())
    info = {"source": "model", "dtype": str(next(iter(model.parameters()), x).dtype).removeprefix("torch."),
            **info, "split_edges": split_edges}
    if isinstance(program, FxRefused):
        trace = record_instead(program, model, loss, x, y, seed, split_edges, info)
        if keep == "summaries":  # the recorder holds the run as it goes: summarised after
            from gradviz.sources.model.summaries import summarise_trace

            trace = summarise_trace(trace, "recorded as it ran, so the run was held in full and summarised "
                                           "after (memory not reduced)")
        return trace
    info.update(level=program.level, notes=list(program.notes))
    torch.manual_seed(seed)
    try:
        if keep == "summaries":
            return capture_summaries(program, x, y, split_edges, info)
        return capture(program, x, y, split_edges, info)
    except NodeFailed as failed:
        raise ModelRunError(str(failed)) from None


def record_instead(refused: Any, model: Any, loss: Callable[[Any, Any], Any], x: Any, y: Any, seed: int,
                   split_edges: bool, info: dict[str, Any]) -> Trace:
    """The fallback: record the ops as they run; if that fails too, name the line fx refused."""
    import torch

    from gradviz.sources.model.fallback import FallbackFailed, record_model

    note = f"fx could not trace the model ({refused}); the ops were recorded as they ran instead"
    info.update(level="autograd", notes=[note], fx_refused=str(refused))
    torch.manual_seed(seed)
    try:
        return record_model(model, loss, x, y, split_edges, info)
    except FallbackFailed as failed:
        raise ModelRunError(f"fx cannot trace the model: {refused}; recording the run failed too: {failed}") from None
