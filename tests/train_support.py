"""Helpers shared by the training tests: run the trainer in-process, write tiny specs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from gradviz.train.config import TrainConfig
from gradviz.rundir.files import read_json
from gradviz.rundir.jsonl import read_jsonl
from gradviz.rundir.paths import RunPaths
from gradviz.train.worker import DistInfo, main, run_training

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def sample(name: str) -> str:
    """Path of a sample spec."""
    return str(SAMPLES / f"{name}.py")


def train_here(run_dir: Path, spec: str, **settings: Any) -> Any:
    """Train in this process (no subprocess) and return the TrainResult."""
    settings.setdefault("device", "cpu")
    config = TrainConfig(spec=spec, run_dir=str(run_dir), **settings)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return run_training(config, RunPaths(Path(run_dir)), DistInfo())


def run_worker(run_dir: Path, spec: str, **settings: Any) -> int:
    """Run the worker's main() in this process, as the subprocess would; its exit code."""
    config = TrainConfig(spec=spec, run_dir=str(run_dir), device=settings.pop("device", "cpu"), **settings)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / "config.json").write_text(config.to_json())
    return main(["--config", str(Path(run_dir) / "config.json")])


def records(run_dir: Path) -> list[dict[str, Any]]:
    """The metrics records of a run."""
    return read_jsonl(RunPaths(Path(run_dir)).metrics)


def status(run_dir: Path) -> dict[str, Any]:
    """The status.json of a run."""
    return read_json(RunPaths(Path(run_dir)).status) or {}


def write_spec(folder: Path, body: str, name: str = "spec.py") -> str:
    """Write a small spec file and return its path."""
    path = Path(folder) / name
    path.write_text(textwrap.dedent(body))
    return str(path)


LINEAR_SPEC = """
import torch
from torch import nn

TRAINING = {"lr": 0.1, "epochs": 2, "batch_size": 8, "optimizer": "sgd"}

def build_model():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))

def loss(output, target):
    return ((output - target) ** 2).mean()

def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=g)
    return x, x.sum(dim=1, keepdim=True)
"""


def dump(obj: Any) -> str:
    """Compact JSON for assertion messages."""
    return json.dumps(obj)[:500]
