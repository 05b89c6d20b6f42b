"""Where each file of a run directory lives, and whether a folder is one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    """Where each file of a run directory lives."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def meta(self) -> Path:
        return self.root / "meta.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def masks(self) -> Path:
        return self.root / "masks.jsonl"

    @property
    def histograms(self) -> Path:
        return self.root / "histograms.jsonl"

    @property
    def control(self) -> Path:
        return self.root / "control.json"

    @property
    def heartbeat(self) -> Path:
        return self.root / "heartbeat"

    @property
    def error(self) -> Path:
        return self.root / "error.txt"

    @property
    def worker_log(self) -> Path:
        return self.root / "worker.log"

    @property
    def final_checkpoint(self) -> Path:
        return self.root / "final.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.root / "best.pt"


def is_run_dir(path: Path) -> bool:
    """Whether a folder looks like a run directory (it has a config or a metrics log)."""
    paths = RunPaths(Path(path))
    return paths.config.exists() or paths.metrics.exists()
