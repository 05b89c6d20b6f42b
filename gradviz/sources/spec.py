"""The model spec file: a plain Python file naming a model, a loss and its data.

A spec defines ``build_model() -> nn.Module``, ``loss(output, target) -> scalar`` and
``make_data(seed) -> (X, y)``; optionally ``accuracy(output, target) -> float`` and a
``TRAINING`` dict of defaults that command-line flags override. Trace, step, export and
train all read specs through :func:`load_spec`.

torch is imported inside functions only: ``gradviz.sources`` is also imported by the
expression path, which must start without paying for torch.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gradviz.errors import SpecError
from gradviz.sources.spec_output import select_output
from gradviz.sources.spec_run import running_spec

REQUIRED = ("build_model", "loss", "make_data")
OPTIONAL_CALLABLES = ("accuracy",)

# Each load gets its own module name, so two specs called model.py (or one spec loaded
# twice after an edit) never share or overwrite a module in sys.modules.
_load_counter = itertools.count()


@dataclass(frozen=True)
class Spec:
    """A loaded spec: its file, a display name, its callables and training defaults."""

    path: Path
    name: str
    build_model: Callable[[], Any]
    loss: Callable[[Any, Any], Any]
    make_data: Callable[[int], tuple[Any, Any]]
    accuracy: Callable[[Any, Any], float] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    output: int | str | None = None  # OUTPUT: which element of a tuple/dict/dataclass forward result is the output


def load_spec(path: str | Path, check: bool = True) -> Spec:
    """Import a spec file, check its names, its model and its data; SpecError otherwise.

    `check` False leaves building the model and making the data to the caller, who does
    it anyway (a GPT-2-sized model costs seconds and a gigabyte each time it is built)."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"{path}: no such spec file")
    if path.is_dir() or path.suffix != ".py":
        raise SpecError(f"{path}: a spec must be a .py file")
    if not path.is_file():  # a FIFO or a device named .py would block the import
        raise SpecError(f"{path}: a spec must be a regular .py file")
    import torch  # noqa: F401 - imported before the clock starts: its 1-2 s are not the spec's

    module = _import_file(path)
    for name in REQUIRED:
        if not hasattr(module, name):
            raise SpecError(f"{path}: missing required name {name!r} (see the spec format in the README)")
    for name in REQUIRED + OPTIONAL_CALLABLES:
        value = getattr(module, name, None)
        if value is not None and not callable(value):
            raise SpecError(f"{path}: {name!r} must be a function, got {type(value).__name__}")
    training = getattr(module, "TRAINING", {})
    if not isinstance(training, dict):
        raise SpecError(f"{path}: TRAINING must be a dict, got {type(training).__name__}")
    output = getattr(module, "OUTPUT", None)
    if output is not None and (isinstance(output, bool) or not isinstance(output, (int, str))):
        raise SpecError(f"{path}: OUTPUT must be an index (0) or a name ('logits'), got {type(output).__name__}")
    spec = Spec(
        output=output,
        path=path,
        name=path.stem,
        build_model=module.build_model,
        loss=module.loss,
        make_data=module.make_data,
        accuracy=getattr(module, "accuracy", None),
        training=dict(training),
    )
    # Calling both once here means every command fails at load time, in one place,
    # rather than deep inside tracing or training.
    if check:
        build_model(spec)
        make_data(spec, int(spec.training.get("seed", 0)))
    return spec


def build_model(spec: Spec) -> Any:
    """Call the spec's build_model and check it returns an nn.Module."""
    import torch

    model = _call(spec, "build_model")
    if not isinstance(model, torch.nn.Module):
        raise SpecError(f"{spec.path}: build_model() must return a torch.nn.Module, got {type(model).__name__}")
    return select_output(model, spec.path, spec.output)


def make_data(spec: Spec, seed: int) -> tuple[Any, Any]:
    """Call the spec's make_data and check it returns (X, y) tensors of equal length."""
    import torch

    data = _call(spec, "make_data", seed)
    if not (isinstance(data, tuple) and len(data) == 2):
        raise SpecError(f"{spec.path}: make_data(seed) must return a pair (X, y), got {type(data).__name__}")
    x, y = data
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise SpecError(
            f"{spec.path}: make_data(seed) must return two tensors, got ({type(x).__name__}, {type(y).__name__})"
        )
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise SpecError(
            f"{spec.path}: make_data(seed) returned X {tuple(x.shape)} and y {tuple(y.shape)}; "
            "their first dimensions (the number of examples) must be equal"
        )
    if x.shape[0] < 2:
        raise SpecError(f"{spec.path}: make_data(seed) returned {x.shape[0]} example(s); at least 2 are needed")
    return x, y


def check_spec(spec: Spec, seed: int = 0, model: Any = None, data: tuple[Any, Any] | None = None) -> None:
    """Run the model (built here unless given) on two rows of the data (made here unless
    given) and the loss; SpecError if they do not fit. A given model is left as it was:
    its training flag, and torch's random state, are restored."""
    import torch

    model = build_model(spec) if model is None else model
    x, y = make_data(spec, seed) if data is None else data
    xb, yb = x[:2], y[:2]
    was_training = model.training
    rng = torch.random.get_rng_state()
    model.eval()  # a check must not depend on dropout draws
    try:
        _check_forward(spec, model, xb, yb)
    finally:
        model.train(was_training)
        torch.random.set_rng_state(rng)


def _check_forward(spec: Spec, model: Any, xb: Any, yb: Any) -> None:
    import torch

    with torch.no_grad(), running_spec(spec.path, "the model's forward"):
        try:
            output = model(xb)
        except SpecError:
            raise
        except Exception as exc:  # any failure here is the spec's, reported in its terms
            expected = _expected_input(model)
            wants = f"; the model's first layer expects {expected}" if expected else ""
            raise SpecError(
                f"{spec.path}: the model does not accept the data: X[:2] has shape {tuple(xb.shape)}"
                f"{wants} ({type(exc).__name__}: {_first_line(exc)})"
            ) from None
        try:
            value = spec.loss(output, yb)
        except Exception as exc:
            raise SpecError(
                f"{spec.path}: loss(output, target) failed on output {tuple(output.shape)} and target "
                f"{tuple(yb.shape)} ({type(exc).__name__}: {_first_line(exc)})"
            ) from None
    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise SpecError(f"{spec.path}: loss(output, target) must return a scalar tensor (a mean), got {got}")


def _import_file(path: Path) -> Any:
    """Import a file under a fresh module name, turning any failure into a SpecError."""
    module_name = f"gradviz_spec_{path.stem}_{next(_load_counter)}"
    importspec = importlib.util.spec_from_file_location(module_name, path)
    if importspec is None or importspec.loader is None:
        raise SpecError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(importspec)
    # Registered before executing so dataclasses, pickling and torch.fx inside the spec
    # can find their own module; removed again if the import fails.
    sys.modules[module_name] = module
    imported = False
    try:
        with running_spec(path, "import"):
            importspec.loader.exec_module(module)
        imported = True
    except SyntaxError as exc:
        raise SpecError(f"{path}: line {exc.lineno}: SyntaxError: {exc.msg}") from None
    except SpecError:
        raise
    except Exception as exc:
        raise SpecError(f"{path}:{_spec_line(exc, path)} {type(exc).__name__}: {_first_line(exc)}") from None
    finally:
        if not imported:
            sys.modules.pop(module_name, None)
    return module


def _call(spec: Spec, name: str, *args: Any) -> Any:
    """Call one of the spec's functions, naming the function and the line when it raises."""
    try:
        with running_spec(spec.path, f"{name}()"):
            return getattr(spec, name)(*args)
    except SpecError:
        raise
    except Exception as exc:
        where = _spec_line(exc, spec.path)
        raise SpecError(f"{spec.path}:{where} {name}() raised {type(exc).__name__}: {_first_line(exc)}") from None


def _spec_line(exc: BaseException, path: Path) -> str:
    """' line N:' for the deepest traceback frame inside the spec file, or '' if none."""
    target = str(path.resolve())
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and str(Path(frame.filename).resolve()) == target:
            line = frame.lineno
    return f" line {line}:" if line is not None else ""


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (torch messages run to many lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _expected_input(model: Any) -> str | None:
    """Describe the input the model's first layer wants, when that layer says so."""
    for module in model.modules():
        if hasattr(module, "in_features"):
            return f"(batch, {module.in_features}) [{type(module).__name__}]"
        if hasattr(module, "in_channels"):
            return f"(batch, {module.in_channels}, ...) [{type(module).__name__}]"
        if hasattr(module, "num_embeddings"):
            return f"integer indices below {module.num_embeddings} [{type(module).__name__}]"
    return None

