"""TrainConfig: every setting of a training run, its defaults and its validation.

A config is resolved in two places: the command line gives what the user typed (the
rest None), and the worker, which has the spec loaded, fills the gaps from the spec's
``TRAINING`` dict and then from DEFAULTS. Resolution is idempotent, so every rank of a
distributed run may resolve the same file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from gradviz.errors import SpecError, TrainingError
from gradviz.optimizers import find_optimizer, unknown_optimizer_message
from gradviz.penalty import L2_FORMS

# Used where neither the command line nor the spec's TRAINING gives a value.
DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 32,
    "accum": 1,
    "lr": 0.01,
    "optimizer": "sgd",
    "momentum": 0.9,
    "l2": 0.0,
    "l2_form": "squared",  # or "norm": the lecture's λ·Σ‖θ‖₂ instead of weight decay's λ·Σ‖θ‖²
    "dropout": None,  # None keeps each dropout layer's own p
    "seed": 0,
    "val_fraction": 0.2,
    "max_steps": None,
    "log_every": 25,
}

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class TrainConfig:
    """One training run's settings, as written to run_dir/config.json."""

    spec: str
    run_dir: str
    device: str = "auto"
    # None means "not given": the spec's TRAINING, then DEFAULTS, decide.
    epochs: int | None = None
    batch_size: int | None = None
    accum: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    momentum: float | None = None
    l2: float | None = None
    l2_form: str | None = None
    dropout: float | None = None
    seed: int | None = None
    val_fraction: float | None = None
    max_steps: int | None = None
    log_every: int | None = None
    stop_on_nan: bool = False
    hist_every: int | None = None  # gradient histograms every N steps (None: 100), 0 off
    snapshots: int | None = None  # keep the parameters every N steps (for `gradviz landscape`)
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500
    fsdp: bool = False  # shard the model with FSDP2's fully_shard (always under torchrun)

    @property
    def distributed(self) -> bool:
        """Whether this run goes through torchrun (more than one process, or sharded)."""
        return self.nproc_per_node > 1 or self.nnodes > 1 or self.fsdp

    def to_json(self) -> str:
        """The config as indented JSON."""
        return json.dumps(asdict(self), indent=2)


# Settings a spec's TRAINING dict may give (the rest are about this run, not the model).
SPEC_SETTABLE = tuple(DEFAULTS)


def resolve(config: TrainConfig, training: dict[str, Any]) -> TrainConfig:
    """Fill unset (None) fields from the spec's TRAINING, then DEFAULTS; validate the result."""
    unknown = sorted(set(training) - set(SPEC_SETTABLE))
    if unknown:
        raise SpecError(f"TRAINING has unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(SPEC_SETTABLE)}")
    updates = {
        name: training.get(name, DEFAULTS[name]) for name in SPEC_SETTABLE if getattr(config, name) is None
    }
    resolved = replace(config, **updates)
    validate(resolved)
    # the optimizer by its registry name, whichever name was given (gd is sgd), so a run's
    # config.json and the monitor reading it know one name per optimizer
    return replace(resolved, optimizer=find_optimizer(resolved.optimizer).name)


def validate(config: TrainConfig) -> None:
    """Raise TrainingError naming the first setting that cannot work."""
    if not _DEVICE.match(config.device):
        raise TrainingError(f"unknown device {config.device!r}; use auto, cpu, cuda or cuda:N")
    _positive_int(config.epochs, "--epochs")
    _positive_int(config.batch_size, "--batch-size")
    _positive_int(config.accum, "--accum")
    _positive_int(config.max_steps, "--max-steps")
    _positive_int(config.log_every, "--log-every")
    _positive_int(config.snapshots, "--snapshots")
    _positive_int(config.nproc_per_node, "--nproc-per-node")
    _positive_int(config.nnodes, "--nnodes")
    if config.lr is not None and not (_is_number(config.lr) and math.isfinite(config.lr) and config.lr > 0):
        raise TrainingError(f"--lr must be a positive number, got {config.lr}")
    if config.optimizer is not None and find_optimizer(config.optimizer) is None:
        raise TrainingError(unknown_optimizer_message(config.optimizer))
    if config.l2 is not None and not (_is_number(config.l2) and math.isfinite(config.l2) and config.l2 >= 0):
        raise TrainingError(f"--l2 must be zero or positive, got {config.l2}")
    if config.l2_form is not None and config.l2_form not in L2_FORMS:
        raise TrainingError(f"unknown --l2-form {config.l2_form!r}; use {' or '.join(L2_FORMS)}")
    if config.momentum is not None and not (_is_number(config.momentum) and 0 <= config.momentum < 1):
        raise TrainingError(f"momentum must lie in [0, 1), got {config.momentum}")
    if config.dropout is not None and not (_is_number(config.dropout) and 0 <= config.dropout < 1):
        raise TrainingError(f"--dropout must lie in [0, 1), got {config.dropout}")
    if config.val_fraction is not None and not (_is_number(config.val_fraction) and 0 <= config.val_fraction < 1):
        raise TrainingError(f"--val-fraction must lie in [0, 1), got {config.val_fraction}")
    if config.seed is not None and (isinstance(config.seed, bool) or not isinstance(config.seed, int)):
        raise TrainingError(f"--seed must be an integer, got {config.seed}")
    if config.batch_size is not None and config.accum is not None and config.accum > config.batch_size:
        raise TrainingError(
            f"--accum {config.accum} splits a batch of {config.batch_size} into more micro-batches than it has examples"
        )
    if config.hist_every is not None and (isinstance(config.hist_every, bool) or not isinstance(config.hist_every, int)
                                          or config.hist_every < 0):
        raise TrainingError(f"--hist-every must be 0 (off) or a positive integer, got {config.hist_every}")
    if config.fsdp and config.snapshots:
        raise TrainingError("--snapshots keeps whole parameters on one rank; it cannot be used with --fsdp")
    if not 0 <= config.node_rank < config.nnodes:
        raise TrainingError(f"--node-rank must lie in [0, {config.nnodes}), got {config.node_rank}")


def write_config(config: TrainConfig, path: Path) -> None:
    """Write the config as JSON, atomically (readers see the old or the new file)."""
    from gradviz.rundir.files import write_json_atomic

    write_json_atomic(path, asdict(config))


def read_config(path: Path) -> TrainConfig:
    """Read a config.json back; TrainingError if it is missing or malformed."""
    from gradviz.files.read import FileLoadError, read_json_object

    try:
        data = read_json_object(path, "run config")
    except FileLoadError as exc:
        raise TrainingError(exc.message) from None
    known = {f.name for f in fields(TrainConfig)}
    try:
        return TrainConfig(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise TrainingError(f"{path}: malformed run config ({exc})") from None


def _positive_int(value: Any, flag: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TrainingError(f"{flag} must be a positive integer, got {value}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
