"""What a landscape is taken around: a model, its data and loss, its parameters, its trajectory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from gradviz.errors import GradvizError
from gradviz.files.read import load_tensors


class LandscapeError(GradvizError):
    """A landscape cannot be computed: not a run directory or spec, no checkpoint, bad options."""


@dataclass
class Subject:
    """A model at its parameters θ*, the data and loss the landscape measures, and its trajectory."""

    name: str
    model: nn.Module
    loss: Callable[[Any, Any], Any]
    x: torch.Tensor
    y: torch.Tensor
    centre: dict[str, torch.Tensor]  # θ*: parameter name → tensor
    trajectory: list[tuple[int, dict[str, torch.Tensor]]]  # (step, parameters), in step order; may be empty


def load_subject(source: str, seed: int | None = None, max_points: int = 1024, device: str = "cpu") -> Subject:
    """A run directory (final.pt, snapshots/) or a spec file (its freshly built model)."""
    from gradviz.sources.spec import build_model, load_spec, make_data

    path = Path(source)
    if path.is_dir():
        from gradviz.rundir.paths import RunPaths
        from gradviz.train.config import read_config

        paths = RunPaths(path)
        if not paths.config.is_file():
            raise LandscapeError(f"{path}: not a run directory (no config.json); give a run directory or a spec .py")
        config = read_config(paths.config)
        if not paths.final_checkpoint.is_file():
            raise LandscapeError(f"{path}: the run has no final.pt yet (is it still training?)")
        spec = load_spec(config.spec)
        seed = config.seed if seed is None else seed
        model = build_model(spec)
        state = load_tensors(paths.final_checkpoint, "checkpoint")
        try:
            model.load_state_dict(state["model"])
        except Exception as exc:  # a foreign checkpoint: one line, not a traceback
            raise LandscapeError(f"{paths.final_checkpoint}: its parameters do not fit the model ({_first_line(exc)})") from None
        trajectory = _snapshots(path / "snapshots")
        x, y = make_data(spec, seed or 0)
        val_fraction = config.val_fraction if config.val_fraction is not None else 0.2
        x, y = _training_split(x, y, val_fraction, seed or 0)
    elif path.suffix == ".py":
        spec = load_spec(path)
        seed = int(spec.training.get("seed", 0)) if seed is None else seed
        torch.manual_seed(seed)  # the initial weights `gradviz train` would start from
        model = build_model(spec)
        trajectory = []
        x, y = make_data(spec, seed)
    else:
        raise LandscapeError(f"{source}: give a run directory (gradviz train --run-dir) or a spec .py file")
    model = model.to(device).eval()  # eval: dropout off, so every grid point is deterministic
    centre = {n: p.detach().clone() for n, p in model.named_parameters()}
    if not centre:
        raise LandscapeError(f"{spec.path}: build_model() has no parameters, so there is no parameter space to slice")
    trajectory = [(step, {n: t.to(device) for n, t in params.items()}) for step, params in trajectory]
    for step, params in trajectory:
        if set(params) != set(centre) or any(params[n].shape != centre[n].shape for n in centre):
            raise LandscapeError(f"{source}: snapshot of step {step} does not match the model's parameters")
    subject = Subject(spec.name, model, spec.loss, x[:max_points].to(device), y[:max_points].to(device), centre, trajectory)
    check_loss(subject, spec.path)
    return subject


def check_loss(subject: Subject, path: Path) -> None:
    """The spec's loss at θ*, once, before any grid: it must be one number, as a tensor
    (a grid of vectors or of Python floats cannot be drawn, and vmap cannot batch a float)."""
    from gradviz.sources.spec_run import running_spec

    try:
        with torch.no_grad(), running_spec(path, "loss() at θ*"):
            value = subject.loss(subject.model(subject.x), subject.y)
    except GradvizError:
        raise
    except Exception as exc:
        raise LandscapeError(f"{path}: the model's forward or loss() raised {type(exc).__name__}: {_first_line(exc)}") from None
    if not isinstance(value, torch.Tensor):
        raise LandscapeError(f"{path}: loss() returned a {type(value).__name__}, not a tensor; "
                             "return the loss as a one-element tensor")
    if value.numel() != 1:
        raise LandscapeError(f"{path}: loss() returned a tensor of shape {tuple(value.shape)}, not one number; "
                             "reduce it (e.g. .mean()) for a landscape")


def _snapshots(folder: Path) -> list[tuple[int, dict[str, torch.Tensor]]]:
    out = []
    for file in sorted(folder.glob("step_*.pt")) if folder.is_dir() else []:
        data = load_tensors(file, "snapshot")
        try:
            params = dict(data["params"])
            if not all(isinstance(t, torch.Tensor) for t in params.values()):
                raise TypeError("its parameters are not all tensors")
            out.append((int(data["step"]), params))
        except Exception as exc:
            raise LandscapeError(f"{file}: not a snapshot gradviz train wrote ({_first_line(exc)})") from None
    return sorted(out, key=lambda item: item[0])


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


def _training_split(x: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's own training examples (the same split `gradviz train` made)."""
    from gradviz.train.data import split_data

    split = split_data(x, y, val_fraction, seed, torch.device("cpu"))
    return split.x_train, split.y_train
