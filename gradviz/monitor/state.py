"""RunView: what the monitor knows about a run, read incrementally from its directory.

Shared by the dashboard and the plain printer. Imports only the run-directory format
(``gradviz.rundir``): neither torch nor textual.
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradviz.rundir import (ACTIVE_STATES, DONE_STATES, JsonlTailer, RunPaths, process_alive, read_json)

LIVENESS_SECONDS = 1.0  # how often to ask whether the trainer's process still exists


@dataclass
class Series:
    """Values over logged steps, column by column, for plotting."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    penalty: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    grad_total: list[float] = field(default_factory=list)
    grad: dict[str, list[float]] = field(default_factory=dict)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)  # gradviz.watch's run.log(name=...) metrics


class RunView:
    """The records, masks, meta and status of one run directory, kept up to date by poll()."""

    def __init__(self, root: Path | str):
        self.paths = RunPaths(Path(root))
        self.records: list[dict[str, Any]] = []
        self.masks: list[dict[str, Any]] = []
        self.series = Series()
        self.config: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.status: dict[str, Any] = {}
        self._metrics = JsonlTailer(self.paths.metrics)
        self._mask_log = JsonlTailer(self.paths.masks)
        self._alive = True
        self._checked_alive = 0.0

    def poll(self) -> bool:
        """Read what is new (a bounded amount); returns whether anything changed."""
        changed = False
        for name in ("config", "meta", "status"):
            data = read_json(getattr(self.paths, name))
            if data is not None and data != getattr(self, name):
                setattr(self, name, data)
                changed = True
        new = self._metrics.read_new()
        for record in new:
            self._add(record)
        masks = self._mask_log.read_new()
        self.masks.extend(masks)
        return changed or bool(new) or bool(masks)

    @property
    def layers(self) -> list[str]:
        """Layer names in model order (from meta, else from the first record)."""
        if self.meta.get("layers"):
            return [layer["name"] for layer in self.meta["layers"]]
        return list(self.records[0]["grad_norm"]) if self.records else []

    @property
    def state(self) -> str:
        """The trainer's state; 'lost' when it claims to run but its process is gone."""
        state = self.status.get("state", "starting" if not self.records else "running")
        if state in ACTIVE_STATES and not self._process_alive():
            return "lost"
        return state

    @property
    def done(self) -> bool:
        """Whether no more records will come and every record has been read."""
        return self.state in (*DONE_STATES, "lost") and self._metrics.at_end() and self._mask_log.at_end()

    @property
    def total_steps(self) -> int | None:
        """Planned number of updates, when the trainer has said."""
        return self.meta.get("total_steps")

    def index_at(self, step: int) -> int:
        """Index of the last record at or before a step (0 when before the first)."""
        return max(0, bisect.bisect_right(self.series.steps, step) - 1)

    def masks_at(self, step: int) -> dict[str, Any] | None:
        """The latest dropout-mask sample at or before a step."""
        if not self.masks:
            return None
        steps = [m["step"] for m in self.masks]  # small: one entry per logged step
        at = bisect.bisect_right(steps, step) - 1
        return self.masks[max(0, at)]

    def throughput(self, index: int, window: int = 20) -> tuple[float | None, float | None]:
        """(steps/s, samples/s) over the last few records up to index (paused time excluded)."""
        if not 0 <= index < len(self.records):
            return None, None
        first = max(0, index - window)
        a, b = self.records[first], self.records[index]
        if b["time"] <= a["time"]:
            return None, b.get("samples_per_s")
        seconds = b["time"] - a["time"]
        return (b["step"] - a["step"]) / seconds, (b.get("samples", 0) - a.get("samples", 0)) / seconds or None

    def eta_seconds(self, index: int) -> float | None:
        """Seconds left at the recent rate, when the plan and a rate are known."""
        total = self.total_steps
        rate, _ = self.throughput(index)
        if total is None or not rate or not self.records:
            return None
        return max(0.0, (total - self.records[index]["step"]) / rate)

    def first_nonfinite(self) -> dict[str, Any] | None:
        """The first logged step whose loss or gradient was non-finite, and its layer."""
        nan = self.status.get("nan")
        if nan:
            return nan
        for record in self.records:
            if "nonfinite" in record:
                return {"step": record["step"], "layer": record["nonfinite"].get("layer")}
        return None

    def _add(self, record: dict[str, Any]) -> None:
        if "step" not in record or "grad_norm" not in record:
            return  # not a metrics record this version understands
        self.records.append(record)
        s = self.series
        s.steps.append(record["step"])
        s.loss.append(_num(record.get("loss")))
        s.penalty.append(_num(record.get("penalty")))
        s.total.append(_num(record.get("total")))
        s.grad_total.append(_num(record.get("grad_norm_total")))
        for name, value in record["grad_norm"].items():
            column = s.grad.setdefault(name, [math.nan] * (len(s.steps) - 1))
            column.append(_num(value))
        for name, value in (record.get("extra") or {}).items():
            s.extra.setdefault(name, [math.nan] * (len(s.steps) - 1)).append(_num(value))
        for column in s.extra.values():  # a metric not logged this time: a gap in its curve
            if len(column) < len(s.steps):
                column.append(math.nan)
        if "val_loss" in record:
            s.val_steps.append(record["step"])
            s.val_loss.append(_num(record["val_loss"]))
            s.val_acc.append(_num(record.get("val_acc")))

    def _process_alive(self) -> bool:
        now = time.monotonic()
        if now - self._checked_alive > LIVENESS_SECONDS:
            self._checked_alive = now
            pids = [self.status.get(k) for k in ("pid", "launcher_pid")]
            self._alive = any(process_alive(p) for p in pids) if any(pids) else True
        return self._alive


def _num(value: Any) -> float:
    """A float from a record field (None and strings become NaN)."""
    return float(value) if isinstance(value, (int, float)) else math.nan
