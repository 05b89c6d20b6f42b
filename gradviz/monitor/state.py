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
from typing import Any, Callable

from gradviz.penalty import penalized_gradient
from gradviz.rundir.files import read_json
from gradviz.rundir.heartbeat import read_heartbeat
from gradviz.rundir.jsonl import JsonlTailer
from gradviz.rundir.paths import RunPaths
from gradviz.rundir.status import ACTIVE_STATES, DONE_STATES, named_process_alive, read_nan
from gradviz.step_stats import STEP_STATS

LIVENESS_SECONDS = 1.0  # how often to ask whether the trainer's process still exists


@dataclass
class Series:
    """Values over logged steps, column by column, for plotting.

    Every statistic of STEP_STATS is kept by its name: `stat[name]` (one column) or
    `layer_stat[name][layer]` (one column per layer)."""

    steps: list[int] = field(default_factory=list)
    stat: dict[str, list[float]] = field(
        default_factory=lambda: {s.name: [] for s in STEP_STATS if not s.per_layer})
    layer_stat: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: {s.name: {} for s in STEP_STATS if s.per_layer})
    total: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)  # gradviz.watch's run.log(name=...) metrics
    lr: list[float] = field(default_factory=list)  # the learning rate at each logged step
    window_steps: list[int | None] = field(default_factory=list)  # steps each logged loss averages (None: unknown)

    @property
    def loss(self) -> list[float]:
        """The data loss at each logged step."""
        return self.stat["loss"]

    @property
    def penalty(self) -> list[float]:
        """The L2 penalty at each logged step."""
        return self.stat["penalty"]

    @property
    def grad_total(self) -> list[float]:
        """The whole gradient's norm at each logged step."""
        return self.stat["grad_norm_total"]

    @property
    def grad(self) -> dict[str, list[float]]:
        """Each layer's gradient norm at each logged step."""
        return self.layer_stat["grad_norm"]


class RunView:
    """The records, masks, meta and status of one run directory, kept up to date by poll()."""

    def __init__(self, root: Path | str, handle: Any = None):
        self.paths = RunPaths(Path(root))
        # The TrainingHandle when this process started the trainer: polling it reaps the
        # process and records a death by signal in status.json, within a poll.
        self.handle = handle
        self.records: list[dict[str, Any]] = []
        self.masks: list[dict[str, Any]] = []
        self.series = Series()
        self.config: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.status: dict[str, Any] = {}
        self._metrics = JsonlTailer(self.paths.metrics)
        self._mask_log = JsonlTailer(self.paths.masks)
        self._hist_log = JsonlTailer(self.paths.histograms)
        self.hist_steps: list[int] = []  # logged steps that carry gradient histograms
        self.hists: dict[str, list[list[int]]] = {}  # layer -> one count vector per histogram step
        self.hist_edges: list[float] = []
        self._alive = True
        self._checked_alive = 0.0
        self._launcher_exited = False

    def poll(self) -> bool:
        """Read what is new (a bounded amount); returns whether anything changed."""
        changed = False
        if self.handle is not None and self.handle.check_exit() is not None:
            self._launcher_exited = True
        for name in ("config", "meta", "status"):
            data = read_json(getattr(self.paths, name))
            data = _clean_meta(data) if name == "meta" and data is not None else data
            if name == "status" and data is not None and not isinstance(data.get("nan", {}), dict):
                data = {k: v for k, v in data.items() if k != "nan"}
            if data is not None and data != getattr(self, name):
                setattr(self, name, data)
                changed = True
        new = self._metrics.read_new()
        for record, line in zip(new, self._metrics.record_lines):
            if not self._add(record):
                self._metrics.skip(line)
        masks = self._typed(self._mask_log, lambda m: _is_int(m.get("step")))
        self.masks.extend(masks)
        hists = self._typed(self._hist_log, lambda h: isinstance(h.get("layers"), dict) and _is_int(h.get("step")))
        for record in hists:
            self.hist_steps.append(record["step"])
            self.hist_edges = record.get("edges") or self.hist_edges
            for name, counts in record["layers"].items():
                self.hists.setdefault(name, []).append(counts)
        return changed or bool(new) or bool(masks) or bool(hists)

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
        return (self.state in (*DONE_STATES, "lost") and self._metrics.at_end() and self._mask_log.at_end()
                and self._hist_log.at_end())

    @property
    def total_steps(self) -> int | None:
        """Planned number of updates, when the trainer has said."""
        return self.meta.get("total_steps")

    @property
    def total_epochs(self) -> int | None:
        """Epochs the run will reach: the planned epochs, fewer when --max-steps ends it first."""
        epochs, total, per_epoch = (self.meta.get(k) for k in ("epochs", "total_steps", "steps_per_epoch"))
        if not isinstance(epochs, int):
            return None
        if isinstance(total, int) and isinstance(per_epoch, int) and per_epoch > 0:
            return min(epochs, -(-total // per_epoch))
        return epochs

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

    def step_reached(self) -> int | None:
        """The last step the trainer took: the most of status.json's, the heartbeat's and the last logged one."""
        logged = self.records[-1]["step"] if self.records else None
        beat = read_heartbeat(self.paths)
        known = [s for s in (logged, self.status.get("step"), beat and beat["step"] or None)
                 if isinstance(s, int) and not isinstance(s, bool)]
        return max(known) if known else None

    def ending(self) -> str:
        """'finished at step 343 (last logged 325); checkpoint at step 343', exact steps from status.json."""
        state = self.state
        reached = self.step_reached()
        failed = self.status.get("failed_at_step")
        step = failed if state == "failed" and failed is not None else reached
        text = f"{state} at step {step}" if step is not None else f"{state} before its first step"
        logged = self.records[-1]["step"] if self.records else None
        if logged is not None and logged != step:
            text += f" (last logged step {logged})"
        if self.status.get("checkpoint_step") is not None:
            where = "final/ (sharded)" if self.meta.get("sharded") else "final.pt"
            text += f"; checkpoint {where} at step {self.status['checkpoint_step']}"
        return text

    def accumulation(self) -> str | None:
        """The update as the lecture writes it, with this run's B, B_P, K and η."""
        c = self.config
        batch, k, lr = c.get("batch_size"), c.get("accum"), c.get("lr")
        if not isinstance(batch, int) or not isinstance(k, int) or not isinstance(lr, (int, float)):
            return None
        world = int(self.meta.get("world_size") or 1)
        parts = k * world  # micro-batches whose gradients make one update
        micro = batch / parts
        b_p = f"{micro:g}" if micro == int(micro) else f"≈{micro:.3g}"
        where = f" over {world} processes" if world > 1 else ""
        where += " (FSDP)" if self.meta.get("sharded") else ""
        head = f"B = {batch}{where}, K = {k}, B_P = {b_p}"
        lam, form = self.meta.get("l2", c.get("l2")), self.meta.get("l2_form", c.get("l2_form"))
        with_lam = f", λ = {lam:g}" if lam else ""
        if parts == 1:
            grad = penalized_gradient("∇L_B", lam, form)
            rule = f"θ ← θ − η·{grad}, η = {lr:g}{with_lam}" if c.get("optimizer") == "sgd" else f"one gradient {grad} per update{with_lam}"
            return f"{head} (no accumulation): {rule}"
        if lam:  # the penalty joins once per update, not once per micro-batch
            grad = penalized_gradient(f"1/{parts}·Σ∇L_B_P", lam, form)
            if c.get("optimizer") == "sgd":
                return f"{head}: θ ← θ − η·{grad}, η = {lr:g}{with_lam}"
            return f"{head}: {c.get('optimizer')} steps on {grad} (η = {lr:g}{with_lam})"
        grad = f"∇L_B = 1/{parts}·Σ∇L_B_P"
        if c.get("optimizer") == "sgd":
            return f"{head}: θ ← θ − η/{parts}·Σ∇L_B_P = θ − {lr:g}/{parts}·Σ∇L_B_P"
        return f"{head}: {c.get('optimizer')} steps on {grad} (η = {lr:g})"

    @property
    def log_every(self) -> int | None:
        """The logging window: each logged loss is the mean over this many steps (None where it
        varies: gradviz.watch also waits for log_seconds, so its windows are not a fixed length)."""
        if self.config.get("source") == "watch":
            return None
        value = self.config.get("log_every")
        return value if isinstance(value, int) else None

    def short_windows(self) -> list[int]:
        """Indices of records whose loss averages fewer steps than --log-every: an epoch's last,
        partial window (or a run's), drawn as marked points of their own, never in the line of
        full-window means."""
        every = self.log_every
        if not every or every <= 1:
            return []
        return [i for i, k in enumerate(self.series.window_steps) if k is not None and k < every]

    def first_nonfinite(self) -> dict[str, Any] | None:
        """The first logged step whose loss or gradient was non-finite, and its layer."""
        nan = read_nan(self.status)
        if nan:
            return nan
        for record in self.records:
            if "nonfinite" in record:
                return {"step": record["step"], "layer": record["nonfinite"].get("layer")}
        return None

    @property
    def caught_up(self) -> bool:
        """Whether everything written so far has been read (else poll again at once)."""
        return self._metrics.at_end() and self._mask_log.at_end() and self._hist_log.at_end()

    @staticmethod
    def _typed(log: JsonlTailer, ok: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The log's new records that pass ok; the others are counted as skipped, by line."""
        kept = []
        for record, line in zip(log.read_new(), log.record_lines):
            if ok(record):
                kept.append(record)
            else:
                log.skip(line)
        return kept

    def skipped_notes(self) -> list[str]:
        """One line per log with lines that could not be read, naming the lines."""
        logs = (self._metrics, self._mask_log, self._hist_log)
        return [note for note in (log.skipped_note() for log in logs) if note]

    def _add(self, record: dict[str, Any]) -> bool:
        record = clean_record(record)
        if record is None:
            return False  # not a metrics record this version understands
        self.records.append(record)
        s = self.series
        s.steps.append(record["step"])
        s.window_steps.append(record["window_steps"] if _is_int(record.get("window_steps")) else None)
        s.lr.append(_num(record.get("lr")))
        s.total.append(_num(record.get("total")))
        for name, column in s.stat.items():
            column.append(_num(record.get(name)))
        for name, layers in s.layer_stat.items():
            values = record.get(name) or {}
            for layer, value in values.items():
                layers.setdefault(layer, [math.nan] * (len(s.steps) - 1)).append(_num(value))
            for layer, column in layers.items():  # a layer missing from this record: a gap
                if layer not in values:
                    column.append(math.nan)
        for name, value in (record.get("extra") or {}).items():
            s.extra.setdefault(name, [math.nan] * (len(s.steps) - 1)).append(_num(value))
        for column in s.extra.values():  # a metric not logged this time: a gap in its curve
            if len(column) < len(s.steps):
                column.append(math.nan)
        if "val_loss" in record:
            s.val_steps.append(record["step"])
            s.val_loss.append(_num(record["val_loss"]))
            s.val_acc.append(_num(record.get("val_acc")))
        return True

    def _process_alive(self) -> bool:
        if self._launcher_exited:
            return False  # the launcher this process started has exited (and is reaped)
        now = time.monotonic()
        if now - self._checked_alive > LIVENESS_SECONDS:
            self._checked_alive = now
            # No pid at all: no trainer was ever started for this folder, so none will write.
            self._alive = bool(named_process_alive(self.status))
        return self._alive


# A record's fields by type: the step statistics as STEP_STATS declares them (one number, or a
# table by layer), then the trainer's own.
NUMBER_FIELDS = tuple(stat.name for stat in STEP_STATS if not stat.per_layer) + (
    "total", "val_loss", "val_acc", "samples_per_s", "samples", "lr", "mem")
TABLE_FIELDS = tuple(stat.name for stat in STEP_STATS if stat.per_layer) + ("keep_rate",)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def clean_record(record: dict[str, Any]) -> dict[str, Any] | None:
    """A metrics record with every field the views read of the type they expect: numbers
    that are not numbers dropped, tables that are not tables dropped; None without an
    integer step and a gradient-norm table (not a record this version understands)."""
    if not _is_int(record.get("step")) or not isinstance(record.get("grad_norm"), dict):
        return None
    clean = dict(record)
    for key in NUMBER_FIELDS:
        if key in clean and not _is_number(clean[key]):
            del clean[key]
    for key in TABLE_FIELDS:
        if key in clean:
            table = clean[key]
            if isinstance(table, dict):
                clean[key] = {str(k): (v if _is_number(v) else None) for k, v in table.items()}
            else:
                del clean[key]
    clean["grad_norm"] = {k: (math.nan if v is None else v) for k, v in clean["grad_norm"].items()}
    clean["time"] = clean["time"] if _is_number(clean.get("time")) else 0.0
    clean["epoch"] = clean["epoch"] if _is_int(clean.get("epoch")) else None
    if not isinstance(clean.get("nonfinite", {}), dict):
        del clean["nonfinite"]
    return clean


def _clean_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """meta.json with its layer and dropout lists dropped when they are not lists of named entries."""
    clean = dict(meta)
    for key in ("layers", "dropout"):
        entries = clean.get(key)
        if entries is not None and not (isinstance(entries, list)
                                        and all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries)):
            del clean[key]
    if "total_steps" in clean and not _is_int(clean["total_steps"]):
        del clean["total_steps"]
    return clean


def _num(value: Any) -> float:
    """A float from a record field (None and strings become NaN)."""
    return float(value) if isinstance(value, (int, float)) else math.nan
