"""`gradviz.watch(model, optimizer, run_dir=...)`: `gradviz train`'s monitoring in any loop.

    run = gradviz.watch(model, optimizer, run_dir="runs/mine")
    for step, (x, y) in enumerate(loader):
        loss = loss_fn(model(x), y); loss.backward()
        optimizer.step(); optimizer.zero_grad()
        run.log(loss=loss, step=step)          # tensors welcome: no .item()
    run.close()

It writes the run directory `gradviz train` writes (config, meta, status, metrics with
per-layer gradient and parameter norms, dropout masks), so `gradviz monitor` follows it
live and replays it. The norms are read by an optimizer step pre-hook: after gradient
accumulation and after DDP's all-reduce, on the gradient that is applied. They come from
the trainer's own fused code (`train.stats`: one `_foreach_norm`, one matrix product),
are copied to the host asynchronously, and written once the copy has landed: no host
synchronisation in the loop. Under torchrun only rank 0 writes; a crash or Ctrl-C leaves
status.json saying how the run ended.
"""

from __future__ import annotations

import atexit
import math
import os
import sys
import time
import traceback
import weakref
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gradviz.errors import UsageError
from gradviz.processes import process_alive
from gradviz.rundir.files import read_json, write_json_atomic
from gradviz.rundir.paths import RunPaths
from gradviz.rundir.status import ACTIVE_STATES
from gradviz.train.control import PAUSE, STOP, Controller
from gradviz.train.dropout_probe import DROPOUT_TYPES, MaskLog, install_probes
from gradviz.train.histograms import HistogramLog
from gradviz.train.recorder import RunRecorder, describe_host, device_name, memory_in_use
from gradviz.train.stats import MASK_SECONDS, HostCopier, StatsCollector, group_parameters

DEFAULT_LOG_EVERY = 25  # as `gradviz train`: a record every 25 optimizer steps, losses averaged between
# …and at most two a second: the dashboard redraws twice a second, and a record costs
# about a millisecond of host time (fused norms, mask sample, one JSON line).
DEFAULT_LOG_SECONDS = 0.5


class Run:
    """One watched training run; create it with :func:`watch`. Also a context manager."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, run_dir: str | Path | None = None,
                 log_every: int = DEFAULT_LOG_EVERY, name: str | None = None,
                 log_seconds: float = DEFAULT_LOG_SECONDS, hist_every: int | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"gradviz.watch: model must be a torch.nn.Module, got {type(model).__name__}")
        if log_every < 1:
            raise ValueError(f"gradviz.watch: log_every must be at least 1, got {log_every}")
        if hist_every is not None and hist_every < 0:
            raise ValueError(f"gradviz.watch: hist_every must be 0 (no histograms) or more, got {hist_every}")
        self.model = getattr(model, "module", model) if type(model).__name__ in _WRAPPERS else model
        self.optimizer = optimizer
        self.log_every = log_every
        self.log_seconds = log_seconds
        self.hist_every = hist_every
        self.histograms: HistogramLog | None = None  # set by _attach() on the ranks that count them
        self._next_due = True  # the first step is always recorded
        self._last_record = -math.inf  # perf_counter time of the last record
        self.name = name or _script_name()
        self.rank = _rank()
        self.world = _world()
        self.enabled = self.rank == 0  # only rank 0 writes the run directory
        # Under torchrun every rank takes part in the records' collectives (the loss's mean over
        # ranks, sharded norms), so records come at the same steps on every rank: by count, with
        # log_seconds turned into a number of steps the ranks agree on at each record.
        self.distributed = self.world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()
        self._agreed_every = log_every  # under torchrun: steps between records, agreed by all ranks
        self._record_step = 0  # the optimizer step of the last record
        self.paths = RunPaths(Path(run_dir) if run_dir else _fresh_dir(self.name))
        self.closed = False
        self.stop_requested = False  # the monitor's stop key (s): a loop may check it and break
        self.steps = 0  # optimizer steps seen
        self.samples = 0  # examples seen by this rank's training forwards
        self._epoch: Any = 0
        self._losses: list[Any] = []
        self._extra: dict[str, list[Any]] = {}
        self._pending: tuple[torch.Tensor, Any] | None = None
        self._measuring = False  # begun before an optimizer step, finished after it
        self._hooks: list[Any] = []
        self._restore: dict[str, nn.Module] = {}
        self._start = time.perf_counter()
        self._last_masks = -MASK_SECONDS
        self._last_samples = (self._start, 0)  # (time, samples) at the last record
        self._last_step: int | None = None  # the step of the last record (steps must grow)
        self._records = 0  # records made
        self._logged_loss = False  # whether run.log(loss=...) was ever called
        self.probed: list[Any] = []
        self.mask_log = MaskLog()
        if self.enabled:
            self._open()
        elif self.distributed:
            self._attach()

    # -- set-up --------------------------------------------------------------------------------
    def _attach(self) -> None:
        """What every rank needs: the parameters, the statistics and the optimizer hooks."""
        self._trainable = self._requires_grad()
        self.groups = group_parameters(self.model)
        if not self.groups.params:
            raise UsageError("gradviz.watch: the model has no parameters that require grad")
        self.device = self.groups.params[0].device
        self.stats = StatsCollector(self.groups, self.probed, self.mask_log, self.device)
        self.copier = HostCopier(self.device)
        self.histograms = self._histogram_log()
        self._zero = torch.zeros((), device=self.device)
        self._hooks = [self.model.register_forward_pre_hook(self._count_batch, with_kwargs=True)]
        if self.optimizer is not None:
            self._hooks += [self.optimizer.register_step_pre_hook(lambda *_: self._before_step()),
                            self.optimizer.register_step_post_hook(lambda *_: self._after_step())]

    def _histogram_log(self) -> HistogramLog | None:
        """Gradient-value histograms as `gradviz train` takes them (at recorded steps 1, 100, 200…).

        Rank 0 counts whole gradients and writes. Sharded (FSDP2), every rank counts its own shards
        and joins one all-reduce of the counts at the same recorded steps (the records' steps are
        agreed by all ranks); the other ranks write nothing. Under DDP the other ranks take none."""
        if self.hist_every == 0:
            return None
        path = self.paths.histograms if self.enabled else None
        if self.stats.sharded:
            return HistogramLog(path, self.groups, self.device, self.hist_every, sharded=True)
        return HistogramLog(path, self.groups, self.device, self.hist_every) if self.enabled else None

    def _open(self) -> None:
        self.paths.root.mkdir(parents=True, exist_ok=True)
        _clear_previous_run(self.paths)
        self._restore = {n: m for n, m in self.model.named_modules() if type(m) is nn.Dropout}
        self.probed = install_probes(self.model, self.mask_log)
        self.mask_log.switch(True)  # the first step is recorded
        self._attach()
        self.recorder = RunRecorder(self.paths, self.groups.names, {p.name: p.module.p for p in self.probed}, True)
        world = self.world
        write_json_atomic(self.paths.config, {"source": "watch", "spec": self.name, "script": sys.argv[0] if sys.argv else "",
                                              "run_dir": str(self.paths.root), "log_every": self.log_every,
                                              "optimizer": type(self.optimizer).__name__ if self.optimizer else None})
        self.recorder.meta({
            "spec": self.name,
            "source": "watch",
            "layers": [{"name": name, "parameters": sum(p.numel() for p, i in zip(self.groups.params, self.groups.layer_of)
                                                        if i == k)} for k, name in enumerate(self.groups.names)],
            "dropout": [{"name": p.name, "p": p.module.p} for p in self.probed],
            "dropout_unrecorded": [n for n, m in self.model.named_modules()
                                   if isinstance(m, DROPOUT_TYPES) and not isinstance(m, nn.Dropout)],
            "parameters": sum(p.numel() for p in self.groups.params),
            "optimizer": type(self.optimizer).__name__ if self.optimizer else None,
            "lr": _lr(self.optimizer),
            "device": str(self.device),
            "device_name": device_name(self.device),
            "world_size": world,
            "loss_over": f"the mean over {world} ranks (one all-reduce per record)" if self.distributed else None,
            "sharded": self.stats.sharded,
            "torch": torch.__version__,
            **describe_host(),
        })
        self.recorder.status("running", pid=os.getpid(), device=str(self.device), world_size=world)
        # The monitor's keys: pause blocks in log() until resume; stop sets stop_requested.
        # No signal handlers: Ctrl-C stays the user's.
        self.controller = Controller(self.paths, is_main=True)
        _OPEN_RUNS.add(self)
        _install_exit_handlers()

    # -- the hooks -------------------------------------------------------------------------------
    def _count_batch(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Forward pre-hook: count the examples of each training forward (samples/s)."""
        if module.training and torch.is_grad_enabled():
            first = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
            if first is not None and first.dim() > 0:
                self.samples += first.shape[0]

    def _requires_grad(self) -> tuple[bool, ...]:
        return tuple(p.requires_grad for p in self.model.parameters())

    def _regroup_if_changed(self) -> None:
        """Parameters are found at every record: a layer unfrozen later is monitored from then on."""
        trainable = self._requires_grad()
        if trainable == self._trainable:
            return
        self._trainable = trainable
        groups = group_parameters(self.model)
        if not groups.params:
            return
        self.groups = groups
        self.stats = StatsCollector(groups, self.probed, self.mask_log, self.device)
        if self.histograms is not None:  # every rank that counts (sharded: all), so the counts' shapes match
            self.histograms.regroup(groups)
        if not self.enabled:
            return
        self.recorder.layer_names = groups.names
        meta = read_json(self.paths.meta) or {}
        known = {layer["name"]: layer for layer in meta.get("layers", []) if isinstance(layer, dict)}
        for k, name in enumerate(groups.names):  # layers once frozen keep their place in the list
            known[name] = {"name": name, "parameters": sum(p.numel() for p, i in zip(groups.params, groups.layer_of)
                                                           if i == k)}
        self.recorder.meta({**meta, "layers": list(known.values())})

    def _before_step(self) -> None:
        """Optimizer pre-step: the gradients about to be applied. On due steps, capture on the device."""
        self.steps += 1
        if not self._next_due:
            return
        self._regroup_if_changed()
        now = time.perf_counter()
        self._seconds_per_step = (now - self._last_record) / max(1, self.steps - self._record_step)
        self._last_record = now
        self._record_step = self.steps
        with_masks = now - self._last_masks >= MASK_SECONDS or self.steps == 1
        if with_masks:
            self._last_masks = now
        # loss and penalty are filled in by the next log(); norms and masks are read now.
        layout = self.stats.begin(self._zero, self._zero, with_masks)
        then, samples_then = self._last_samples
        samples = self.samples * self.world  # every rank sees a batch of the same size
        layout.info = {"step": self.steps, "epoch": self._epoch, "time": round(now - self._start, 4),
                       "lr": _lr(self.optimizer), "samples": samples,
                       "samples_per_s": (samples - samples_then) / max(now - then, 1e-9) if self._records else None,
                       "mem": memory_in_use(self.device)}
        self._last_samples = (now, samples)
        self._records += 1
        if self.histograms is not None and self.histograms.due(self.steps):
            self.histograms.capture(self.groups.params, self.steps, self._epoch)
        self._measuring = True

    def _after_step(self) -> None:
        """Optimizer post-step: finish a recorded step's statistics; decide whether the next step is
        recorded (its forward then keeps masks)."""
        if self._measuring:
            self._measuring = False
            self.stats.after_step()
            self._pending = self.stats.finish()
        following = self.steps + 1
        if self.distributed:  # the same decision on every rank: step counts only
            self._next_due = following % self.log_every == 0 and following - self._record_step >= self._agreed_every
        else:
            self._next_due = following % self.log_every == 0 and \
                (self.log_seconds <= 0 or time.perf_counter() - self._last_record >= self.log_seconds)
        if self.enabled:
            self.mask_log.switch(self._next_due)

    # -- the public side -----------------------------------------------------------------------
    def log(self, loss: Any = None, step: int | None = None, epoch: Any = None, **extra: Any) -> None:
        """Log the loss (a tensor or a number; never read back to the host here) and any extra metrics.

        Values logged between two records are averaged into the next record, which is made
        at the first log() after a recorded optimizer step (see :func:`watch`). `step` (default: the
        optimizer steps so far) and `epoch` label that record; extra metrics (acc=…, lr=…)
        become curves of their own.
        """
        if self.closed or not (self.enabled or self.distributed):
            return
        if loss is not None:
            self._logged_loss = True
            self._losses.append(loss.detach() if isinstance(loss, torch.Tensor) else float(loss))
        for key, value in extra.items():
            self._extra.setdefault(key, []).append(value.detach() if isinstance(value, torch.Tensor) else float(value))
        if epoch is not None:
            self._epoch = epoch
        if self.optimizer is None:  # no optimizer to hook: each log() is a step, its gradients read now
            self._before_step()
            self._after_step()
        if self._pending is not None:
            self._submit(step)
        if not self.enabled:
            return
        if self.copier.pending:
            self._write(wait=False)
        if self.controller.due(False):  # a clock check; a stat of control.json every 0.2 s
            self._obey(self.controller.poll())

    def _obey(self, code: int) -> None:
        if code == PAUSE:
            self._write(wait=True)
            self.recorder.status("paused", step=self.steps)
            code = self.controller.wait_while_paused()
            self.recorder.status("running", step=self.steps)
        if code == STOP and not self.stop_requested:
            self.stop_requested = True
            self.recorder.status("running", step=self.steps, message="stop requested from the monitor")

    def close(self, state: str = "finished", message: str | None = None) -> None:
        """Write what is pending, restore the model's dropout layers, remove the hooks, set the status."""
        if self.closed:
            return
        self.closed = True
        for hook in self._hooks:
            hook.remove()
        if not self.enabled:
            return
        _OPEN_RUNS.discard(self)
        for path, module in self._restore.items():
            parent, _, child = path.rpartition(".")
            setattr(self.model.get_submodule(parent) if parent else self.model, child, module)
        try:
            if self._pending is not None:  # a recorded step that no log() followed: its norms still count
                self._submit(None)
            self._write(wait=True)
        finally:
            if self.histograms is not None:
                self.histograms.close()
            self.recorder.close()
            fields: dict[str, Any] = {"step": self.steps, "seconds": round(time.perf_counter() - self._start, 3)}
            unlogged = self._nothing_logged()
            if unlogged:
                print(f"gradviz.watch: {unlogged}", file=sys.stderr)
                fields["warning"] = unlogged
            if message:
                fields["message"] = message
            self.recorder.status(state, **fields)

    def _nothing_logged(self) -> str | None:
        """What to warn about at close: a watched run whose records hold no loss, or no record at all."""
        if self._records == 0:
            return (f"{self.paths.root}: nothing was recorded: no optimizer step ran while watched"
                    if self.optimizer is not None else f"{self.paths.root}: nothing was recorded: run.log() was never called")
        if not self._logged_loss:
            return (f"{self.paths.root}: no loss was logged ({self.steps} optimizer steps): "
                    f"call run.log(loss=loss) after each step to see it")
        return None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.close()
        else:
            self.fail(exc, tb)

    def fail(self, exc: BaseException, tb: Any = None) -> None:
        """Close after an exception: 'stopped' for Ctrl-C, else 'failed' with error.txt."""
        if isinstance(exc, KeyboardInterrupt):
            self.close("stopped", "interrupted (Ctrl-C)")
            return
        first = (str(exc).strip().splitlines() or [""])[0]
        message = f"the training loop raised {type(exc).__name__}: {first}"
        if self.enabled and not self.closed:
            try:
                text = "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))
                self.paths.error.write_text(f"{message}\n\n{text}")
            except OSError:
                pass
        self.close("failed", message)

    # -- records ---------------------------------------------------------------------------------
    def _submit(self, step: int | None) -> None:
        """Fill in the averaged loss and extras, and start the host copy (no sync)."""
        vector, layout = self._pending
        self._pending = None
        if step is not None:
            layout.info["step"] = self._growing(int(step))
        layout.info["epoch"] = self._epoch
        self._last_step = layout.info["step"]
        host: dict[str, float] = {}
        with torch.no_grad():
            if self.distributed:  # every rank: the logged loss is the mean over ranks
                vector[0:1].copy_(self._mean_over_ranks(self._losses).reshape(1))
                if not self.enabled:
                    self._losses, self._extra = [], {}
                    return
            elif any(isinstance(v, torch.Tensor) for v in self._losses):
                vector[0:1].copy_(_mean_on(self._losses, self.device).reshape(1))
            else:  # numbers (or nothing) logged: averaged here, put in place once on the host
                host["loss"] = _host_mean(self._losses)
            names = [k for k, v in self._extra.items() if any(isinstance(x, torch.Tensor) for x in v)]
            host.update({k: _host_mean(v) for k, v in self._extra.items() if k not in names})
            offset = vector.numel()
            if names:
                vector = torch.cat([vector] + [_mean_on(self._extra[k], self.device).reshape(1) for k in names])
        order = list(self._extra)
        self._losses, self._extra = [], {}
        self.copier.submit(vector, (layout, offset, names, host, order))

    def _growing(self, step: int) -> int:
        """The user's step, unless it does not grow (run.log(step=batch_idx) restarting each epoch):
        then the steps go on from the last record, and status.json says so once."""
        last = self._last_step
        if last is None or step > last:
            return step
        if self.enabled and not getattr(self, "_warned_order", False):
            self._warned_order = True
            note = (f"run.log(step={step}) after step {last}: steps must grow, so records are numbered "
                    f"on from {last + 1} (pass a step that counts across epochs)")
            self.recorder.status("running", note=note)
            print(f"gradviz.watch: {note}", file=sys.stderr)
        return max(last + 1, self.steps)

    def _mean_over_ranks(self, values: list[Any]) -> torch.Tensor:
        """The mean of every rank's logged losses: one all-reduce of (sum, count) on every rank.

        The same all-reduce carries each rank's seconds per step, so that every rank turns
        log_seconds into the same number of steps until the next record (no host sync here:
        the value is read on the host only when the record is written)."""
        pace = torch.full((), getattr(self, "_seconds_per_step", math.inf) if math.isfinite(
            getattr(self, "_seconds_per_step", math.inf)) else 0.0, device=self.device)
        if values:
            local = torch.stack([_mean_on(values, self.device).reshape(()).float(), torch.ones((), device=self.device),
                                 pace.float()])
        else:  # nothing logged here: this rank still joins the collective
            local = torch.stack([torch.zeros((), device=self.device), torch.zeros((), device=self.device), pace.float()])
        torch.distributed.all_reduce(local)
        if self.device.type == "cpu" and self.log_seconds > 0:
            # Every rank reads the same sum, so every rank agrees on the steps to the next record.
            # (On CUDA reading it would sync the host: there records come every log_every steps.)
            seconds_per_step = float(local[2]) / self.world
            if seconds_per_step > 0:
                windows = math.ceil(self.log_seconds / (seconds_per_step * self.log_every))
                self._agreed_every = self.log_every * max(1, windows)
        return local[0] / local[1]  # NaN when no rank logged a loss

    def _write(self, wait: bool) -> None:
        if self.histograms is not None:
            self.histograms.flush(wait=wait)
        for values, (layout, offset, names, host, order) in self.copier.ready(wait=wait):
            if "loss" in host:
                values[0] = host["loss"]
            found = {**host, **dict(zip(names, values[offset:]))}
            extra = {name: found[name] for name in order}  # in the order run.log() was given them
            self.recorder.record(values[:offset], layout, {"extra": extra} if extra else None)


_WRAPPERS = ("DistributedDataParallel", "DataParallel")
_OPEN_RUNS: weakref.WeakSet[Run] = weakref.WeakSet()
_unhandled: list[BaseException] = []
_handlers_installed = False


def watch(model: nn.Module, optimizer: torch.optim.Optimizer | None = None, run_dir: str | Path | None = None,
          *, log_every: int = DEFAULT_LOG_EVERY, log_seconds: float = DEFAULT_LOG_SECONDS,
          name: str | None = None, hist_every: int | None = None) -> Run:
    """Monitor a training loop: returns a :class:`Run`; call ``run.log(loss=...)`` each step.

    ``run_dir`` defaults to ``runs/<script>-<date-time>``. The first optimizer step is
    recorded, then every ``log_every``-th (default 25, as ``gradviz train``) that comes at
    least ``log_seconds`` (default 0.5; 0: no limit) after the previous record. Without an optimizer, each
    ``log()`` counts as a step and reads the gradients then (call it before zero_grad).
    Plain ``nn.Dropout`` layers are swapped for recording ones until ``close()``. Gradient
    histograms are taken at recorded steps that are 1 or multiples of ``hist_every`` (default
    100, as ``gradviz train --hist-every``; 0: none).
    """
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise UsageError(f"gradviz.watch: optimizer must be a torch.optim.Optimizer, not {type(optimizer).__name__} "
                         f"{optimizer!r}; create it first, e.g. torch.optim.Adam(model.parameters())")
    return Run(model, optimizer, run_dir, log_every, name, log_seconds, hist_every)


def _mean_on(values: list[Any], device: torch.device) -> torch.Tensor:
    """The mean of logged tensors (numbers among them joined on the device) as a device scalar."""
    try:  # the usual case, scalar losses on one device: one stack, one mean
        return torch.stack(values).float().mean()
    except (TypeError, RuntimeError):
        return torch.stack([v.reshape(()).to(device=device, dtype=torch.float32) if isinstance(v, torch.Tensor)
                            else torch.tensor(float(v), device=device) for v in values]).mean()


def _host_mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _lr(optimizer: Any) -> float | None:
    try:
        value = optimizer.param_groups[0]["lr"]
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _rank() -> int:
    if "torch.distributed" in sys.modules and torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", "0"))


def _world() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def _fresh_dir(name: str) -> Path:
    """runs/<name>-<date-time>, with a suffix when taken (as `gradviz train` names its runs)."""
    base = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _clear_previous_run(paths: RunPaths) -> None:
    """A run_dir reused by a rerun of the same script starts afresh; a live run's is refused."""
    status = read_json(paths.status) or {}
    if status.get("state") in ACTIVE_STATES and status.get("pid") != os.getpid() and process_alive(status.get("pid")):
        raise UsageError(f"gradviz.watch: {paths.root} belongs to a run that is still going (pid {status['pid']})")
    root = paths.root.resolve()
    if any(not run.closed and run.paths.root.resolve() == root for run in list(_OPEN_RUNS)):
        raise UsageError(f"gradviz.watch: {paths.root} belongs to a run that is still going in this process; "
                         "close() it first or give another run_dir")
    for path in (paths.metrics, paths.masks, paths.histograms, paths.status, paths.error, paths.meta, paths.control):
        path.unlink(missing_ok=True)


def _script_name() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return Path(path).stem if path else "notebook"


def _install_exit_handlers() -> None:
    """Once per process: runs still open at exit are closed, saying whether the script crashed."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):  # an uncaught exception (Ctrl-C too) ends the script
        _unhandled.append(exc)
        for run in list(_OPEN_RUNS):
            run.fail(exc, tb)
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_close_at_exit)


def _close_at_exit() -> None:
    for run in list(_OPEN_RUNS):
        run.close("finished", "the script ended without run.close()")
