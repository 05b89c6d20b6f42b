"""The training loop: mini-batches, gradient accumulation, the L2 term, logging, stopping.

One update of batch size B split into k micro-batches of sizes b_i weights each
micro-batch's mean loss by b_i / B before backward, so the summed gradient is exactly
the gradient of the mean over the whole batch: the lecture's θ ← θ − η/k Σ ∇L_{B_P}
when the micro-batches are equal, and still exact when the last one is short.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Iterable

import torch
from torch import nn

from gradviz.errors import NonFiniteError, TrainingError
from gradviz.rundir.files import read_json
from gradviz.rundir.heartbeat import Heartbeat
from gradviz.sources.spec import Spec
from gradviz.train.checkpoint import LAST_FINITE, BestKeeper, save_checkpoint, save_snapshot, save_weights
from gradviz.train.config import TrainConfig
from gradviz.train.control import PAUSE, STOP, Controller
from gradviz.train.data import DataSplit, epoch_batches
from gradviz.train.ddp_loss import RankLossShare, global_batch_size
from gradviz.train.dropout_probe import MaskLog, ProbedLayer
from gradviz.train.histograms import HistogramLog
from gradviz.train.nan_origin import NAN_TRACE, NanWatch, agree, record_origin
from gradviz.train.recorder import RunRecorder, memory_in_use
from gradviz.train.shard_cover import shards_cover
from gradviz.train.sharding import BEST_SHARDED, FINAL_SHARDED, ShardedBest, full_cpu_state, save_sharded
from gradviz.train.stats import MASK_SECONDS, HostCopier, LayerGroups, StatsCollector


_NO_CONTEXT = nullcontext()  # reusable: one fewer object per micro-batch


@dataclass(frozen=True)
class TrainResult:
    """How a run ended: state 'finished' or 'stopped', and how far it got."""

    state: str
    steps: int
    epoch: int
    samples: int
    seconds: float  # wall time of the loop itself, set-up excluded
    cpu_seconds: float  # this process's CPU time over the same span (steadier on a shared machine)
    best_loss: float | None


def l2_penalty(params: Iterable[torch.Tensor], lam: float, form: str = "squared") -> torch.Tensor:
    """λ·Σ‖θ‖² (gradient 2λθ), or with form 'norm' the slide's λ·Σ‖θ‖₂ (gradient λθ/‖θ‖).

    One differentiable fused norm either way; a tensor whose norm is 0 gets gradient 0
    from the norm form (torch's subgradient there), as an all-zero bias starts.
    """
    norms = torch._foreach_norm(list(params))
    # FSDP2: each norm is a DTensor of the shards' partial norms; whole scalars before any sum.
    norms = torch.stack([n.full_tensor() if hasattr(n, "full_tensor") else n for n in norms])
    if form == "norm":
        return lam * norms.sum()
    return lam * (norms * norms).sum()


def _finite_rows(t: torch.Tensor) -> torch.Tensor:
    """Per example (first dimension): whether every value of it is finite."""
    if not t.is_floating_point():
        return torch.ones(t.shape[0], dtype=torch.bool, device=t.device)
    return torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1)


def make_optimizer(name: str, params: Iterable[nn.Parameter], lr: float, momentum: float) -> torch.optim.Optimizer:
    """The optimizer registry's entry `name` as torch.optim builds it; L2 is never hidden in weight_decay."""
    from gradviz.optimizers import torch_optimizer

    return torch_optimizer(name, params, lr, momentum)


class Trainer:
    """Runs the epochs of one (possibly distributed) training run and records them."""

    def __init__(self, config: TrainConfig, spec: Spec, model: nn.Module, net: nn.Module, data: DataSplit,
                 groups: LayerGroups, probed: list[ProbedLayer], mask_log: MaskLog, recorder: RunRecorder,
                 controller: Controller,
                 device: torch.device, rank: int = 0, world: int = 1, total_steps: int = 0):
        self.config, self.spec, self.model, self.net, self.data = config, spec, model, net, data
        self.groups, self.probed, self.mask_log = groups, probed, mask_log
        self.recorder, self.controller = recorder, controller
        self.device, self.rank, self.world, self.total_steps = device, rank, world, total_steps
        self.optimizer = make_optimizer(config.optimizer, groups.params, config.lr, config.momentum)
        self.stats = StatsCollector(groups, probed, mask_log, device)
        # FSDP2: every rank holds a shard, so norms, validation and checkpoints need every rank.
        self.sharded = config.fsdp
        self.validates = rank == 0 or self.sharded  # a sharded model's forward all-gathers: every rank runs it
        self.best = (ShardedBest(recorder.paths.root / BEST_SHARDED) if self.sharded
                     else BestKeeper(recorder.paths.best_checkpoint, config))
        self.copier = HostCopier(device)
        self.step = 0
        self.epoch = 0
        self.samples = 0
        self._zero = torch.zeros((), device=device)
        self._losses: list[torch.Tensor] = []  # each step's data loss since the last log (device)
        self._penalties: list[torch.Tensor] = []
        self._window_sizes: list[int] = []  # examples in each (global) batch since the last log
        self._last_log = (0.0, 0)  # (time, samples) at the last logged step
        self._last_masks = -MASK_SECONDS  # time of the last dropout-mask sample
        self.nan_watch = NanWatch(self)  # finds the first non-finite step (every rank: its own batches)
        self._replay_upto = 0  # under DDP: the logged step rank 0 saw go non-finite, not yet replayed
        self.nan: dict[str, Any] | None = None  # where it was born, once found
        self.checkpoint_step: int | None = None  # the step final.pt holds
        self.heartbeat: Heartbeat | None = None  # the step reached, for status and monitors (set by the worker)
        self.val_nonfinite: dict[str, Any] | None = None  # the first epoch whose validation loss was not finite
        self.rank_loss = RankLossShare() if world > 1 else None  # the logged loss: mean over ranks
        self._global_size = 0  # examples in the current global batch
        self._last_graph: torch.Tensor | None = None  # the last plain step's loss, graph and all (see _plain_steps)
        hist_every = getattr(config, "hist_every", None)
        # Sharded: every rank counts its shards and joins the counts' all-reduce; rank 0 writes.
        self.histograms = (HistogramLog(recorder.paths.root / "histograms.jsonl" if recorder.enabled else None,
                                        groups, device, hist_every, sharded=self.sharded)
                           if ((rank == 0 and recorder.enabled) or self.sharded) and hist_every != 0 else None)

    def run(self) -> TrainResult:
        """Train until the epochs or --max-steps run out, or a stop arrives."""
        try:
            return self._run()
        except Exception:
            # The step the failure happened at (the worker adds the message and 'failed').
            self.recorder.status("running", step=self.step, epoch=self.epoch, failed_at_step=self.step,
                                 **self._checkpoint_field())
            raise

    def _checkpoint_field(self) -> dict[str, int]:
        return {"checkpoint_step": self.checkpoint_step} if self.checkpoint_step is not None else {}

    def _run(self) -> TrainResult:
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()
        self._last_log = (self.start, 0)
        self._snapshot()  # the initial parameters: where the trajectory starts
        state = "finished"
        validating = len(self.data.x_val) > 0
        if self.nan_watch is not None:
            self.nan_watch.begin_window(1)
        n_train, batch_size, log_every = len(self.data.x_train), self.config.batch_size, self.config.log_every
        # The common step (no accumulation, no L2, no per-step checks) when it is not logged: nothing but
        # what a plain loop does and the counters.
        plain = self.config.accum == 1 and self.config.l2 == 0 and not self.config.stop_on_nan and not self.config.snapshots
        for self.epoch in range(1, self.config.epochs + 1):
            batches = epoch_batches(n_train, batch_size, self.epoch, self.config.seed,
                                    self.rank, self.world, self.config.accum, self.device)
            last_index = len(batches) - 1
            index = 0
            while index <= last_index:
                if plain:
                    stop = self._next_logged(index, last_index, validating)
                    if index < stop:
                        index = self._plain_steps(batches, index, stop)
                        if self.controller.due(False) and self._obey(self._poll()) == STOP:
                            return self._finish("stopped")
                        continue
                self.step += 1
                epoch_end = index == last_index
                last = self.step == self.total_steps
                # Epoch ends are logged when they carry a validation result.
                logged = self.step % log_every == 0 or self.step == 1 or last or (epoch_end and validating)
                self._global_size = global_batch_size(n_train, batch_size, index)
                # An epoch's last record, and the run's, waits for validation to go onto it.
                self._update(batches[index], logged, write=logged and not ((epoch_end or last) and validating))
                if epoch_end and validating:
                    self._end_epoch()
                if self.controller.due(logged) and self._obey(self._poll()) == STOP:
                    state = "stopped"
                if last or state == "stopped":
                    return self._finish(state, validate=last and validating and not epoch_end)
                index += 1
        return self._finish(state)

    def _next_logged(self, index: int, last_index: int, validating: bool) -> int:
        """The index, from `index` on, of this epoch's next logged step (last_index + 1 if none is)."""
        first = self.step + 1  # the step batches[index] makes
        if first == 1:
            return index
        log_every = self.config.log_every
        stop = index + (-first) % log_every  # the next multiple of log_every
        if self.total_steps:
            stop = min(stop, index + self.total_steps - first)  # the run's last step
        return min(stop, last_index if validating else last_index + 1)  # an epoch end that validates

    def _plain_steps(self, batches: list[list[torch.Tensor]], index: int, stop: int) -> int:
        """The unlogged updates batches[index:stop], without accumulation, L2 or per-step checks: the plain
        loop's forward, backward and step, and the counters. Returns where it stopped: at `stop`, or sooner
        when the controller's poll falls due.

        Every line here runs on every step, between the model's kernels with the caches cold, where a
        Python call costs microseconds: so none but the model's, the loss's and the optimizer's, and the
        heartbeat is one store."""
        net, loss_of, optimizer, controller = self.net, self.spec.loss, self.optimizer, self.controller
        x, y, n_train, batch_size = self.data.x_train, self.data.y_train, len(self.data.x_train), self.config.batch_size
        world, epoch, losses, window_sizes, rank_loss = self.world, self.epoch, self._losses, self._window_sizes, self.rank_loss
        notes = None if self.nan_watch.done else self.nan_watch.batches  # the NaN replay's batches, by step
        beat = self.heartbeat.slots if self.heartbeat is not None else [0, 0]
        beat[1] = epoch
        clock = time.monotonic
        graph = None
        while index < stop:
            micro = batches[index]
            indices = micro[0]
            size = indices.shape[0]
            global_size = min(batch_size, n_train - index * batch_size)
            index += 1
            self.step = step = self.step + 1
            if notes is not None:
                notes[step] = (epoch, micro, global_size)
            try:
                loss = loss_of(net(x[indices]), y[indices])
                if world > 1 and size * world != global_size:
                    # This rank's share of a short batch (17/16): weighed world·n_rank/N in _backward's own
                    # arithmetic, so a NaN replay through _backward takes the same step bit for bit.
                    loss = loss * (size / (global_size / world))
                loss.backward()
            except RuntimeError as exc:
                raise self._oom_or(exc, micro) from None
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            self.samples += size * world
            # Kept until the next step's forward, as a plain loop's `loss` variable is: its graph holds the
            # parameters' gradient accumulators, which autograd then reuses instead of building anew each step.
            graph = loss
            loss = loss.detach()
            losses.append(loss)
            window_sizes.append(global_size if world > 1 else size)
            if rank_loss is not None:
                rank_loss.add(loss, world, global_size)
            beat[0] = step
            if clock() >= controller.next_poll:
                break
        if world == 1:  # (DDP's and FSDP's hooks hold the accumulators themselves)
            self._last_graph = graph
        return index

    def _update(self, micro: list[torch.Tensor], logged: bool, write: bool) -> None:
        """One parameter update: forward and backward over the micro-batches, then step."""
        self.mask_log.switch(logged)
        sizes = [m.shape[0] for m in micro]
        if self.nan_watch is not None:
            self.nan_watch.note(self.step, self.epoch, micro, self._global_size)
        try:
            loss, penalty = self._backward(micro, sizes)
        except RuntimeError as exc:
            raise self._oom_or(exc, micro) from None
        self.samples += sum(sizes) * self.world
        # The logged loss is the mean since the last log; keeping the (device) scalars and
        # averaging them then costs nothing on the steps in between.
        self._losses.append(loss)
        self._window_sizes.append(self._global_size if self.world > 1 else sum(sizes))
        if self.rank_loss is not None:
            # loss is already weighted by world·n_rank/N; the window weighs steps by their batch sizes
            self.rank_loss.add(loss, self.world, self._window_sizes[-1])
            if logged:  # every rank joins the reduction; rank 0 logs the global mean
                self._losses = [self.rank_loss.reduce()]
        if penalty is not None:
            self._penalties.append(penalty)
        if self.config.stop_on_nan:
            self._stop_if_nonfinite(loss, micro)
        capturing = logged and (self.rank == 0 or self.sharded)  # only rank 0 writes; sharded norms need every rank
        if capturing:
            self._capture()
        elif logged:
            self._losses, self._penalties, self._window_sizes = [], [], []
        self.optimizer.step()
        if capturing:
            self._finish_capture()
        if logged:
            self.mask_log.switch(False)  # the masks are read: the steps in between draw them as F.dropout does
        self.optimizer.zero_grad(set_to_none=True)
        if self.heartbeat is not None:
            self.heartbeat.beat(self.step, self.epoch)
        if self.config.snapshots and self.step % self.config.snapshots == 0:
            self._snapshot()
        if logged and self.nan_watch is not None:
            self.nan_watch.begin_window(self.step + 1)  # device copies every few logging windows
        if write:
            self._write_ready(wait=False)

    def _backward(self, micro: list[torch.Tensor], sizes: list[int],
                  net: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Accumulate gradients over micro-batches; returns (data loss, penalty) of the step."""
        net = self.net if net is None else net  # the NaN replay runs the raw model alone
        total = sum(sizes)
        if self.world > 1 and (net is not self.model or self.sharded):
            # DDP (and FSDP's reduce-scatter) averages the ranks' gradients; weighting by world·n_rank/N makes that
            # average the global batch's gradient even when the ranks' shares differ (17/16).
            total = self._global_size / self.world
        accumulating = len(micro) > 1 or total != sum(sizes)
        step_loss = penalty = None
        for i, indices in enumerate(micro):
            last = i == len(micro) - 1
            # Under DDP, all-reduce only on the last micro-batch: once per update.
            with net.no_sync() if net is not self.model and not last else _NO_CONTEXT:
                output = net(self.data.x_train[indices])
                loss = self.spec.loss(output, self.data.y_train[indices])
                # Weight b_i / B: the summed gradients are those of the whole batch's mean.
                weighted = loss * (sizes[i] / total) if accumulating else loss
                objective = weighted
                if last and self.config.l2 > 0:
                    penalty = l2_penalty(self.groups.params, self.config.l2, self.config.l2_form)
                    objective = weighted + penalty
                objective.backward()
            part = weighted.detach()
            step_loss = part if step_loss is None else step_loss + part
        return step_loss, None if penalty is None else penalty.detach()

    def _capture(self) -> None:
        """Begin this step's statistics before the optimizer step (finished and copied after it)."""
        loss = self._window_loss()
        penalty = torch.stack(self._penalties).mean() if self._penalties else self._zero
        now = time.perf_counter()
        with_masks = now - self._last_masks >= MASK_SECONDS or self.step == 1
        if with_masks:
            self._last_masks = now
        layout = self.stats.begin(loss, penalty, with_masks)
        if self.histograms is not None and self.histograms.due(self.step):
            self.histograms.capture(self.groups.params, self.step, self.epoch)
        then, samples_then = self._last_log
        layout.info = {
            "step": self.step,
            "epoch": self.epoch,
            "time": round(now - self.start, 4),
            "lr": self.optimizer.param_groups[0]["lr"],
            "samples": self.samples,
            "samples_per_s": (self.samples - samples_then) / max(now - then, 1e-9),
            "mem": memory_in_use(self.device),
        }
        layout.info["window_steps"] = len(self._window_sizes)  # a short one ends an epoch: the monitor marks it
        self._last_log = (now, self.samples)
        self._losses, self._penalties, self._window_sizes = [], [], []

    def _finish_capture(self) -> None:
        """After the optimizer step: finish the statistics begun before it and start their host copy."""
        self.stats.after_step()
        self.copier.submit(*self.stats.finish())

    def _window_loss(self) -> torch.Tensor:
        """The logged loss: the mean over the window's examples (a short last batch weighs less)."""
        if len(self._losses) == 1:  # one step, or DDP's reduced window (already weighted)
            return self._losses[0]
        if min(self._window_sizes) == max(self._window_sizes):  # equal batches: the plain mean
            return torch.stack(self._losses).mean()
        total = sum(self._window_sizes)
        # Python-number weights: no host-to-device copy, no sync on CUDA.
        return torch.stack([loss * (n / total) for loss, n in zip(self._losses, self._window_sizes)]).sum()

    def _write_ready(self, wait: bool, extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Write the records whose host copies have landed; extra goes onto the newest."""
        ready = self.copier.ready(wait=wait)
        if self.histograms is not None:
            self.histograms.flush(wait=wait)
        record = None
        for n, (values, layout) in enumerate(ready):
            record = self.recorder.record(values, layout, extra if n == len(ready) - 1 else None)
            if "nonfinite" in record and self.nan is None:
                if self.world > 1:  # every rank replays together, at the next agreed point
                    self._replay_upto = self._replay_upto or record["step"]
                else:
                    self._find_nan(record["step"])
        return record

    def _end_epoch(self) -> None:
        """Validate (on rank 0, or every rank of a sharded model), write the epoch's last record with it,
        keep the best model."""
        extra = {"epoch_end": True, **(self._validate() if self.validates else {})}
        record = self._write_ready(wait=True, extra=extra)
        if self.sharded and "val_loss" in extra:  # every rank keeps its own shards of the best model
            self.best.offer(self.model, extra["val_loss"], self.step, self.epoch)
        if self.rank == 0 and record is not None:
            if not self.sharded:
                self.best.offer(self.model, record["val_loss"], self.step, self.epoch)
            self._note_bad_validation(record["val_loss"])

    def _note_bad_validation(self, val_loss: float) -> None:
        """A non-finite validation loss is a finding (exit 1): the first one goes into status.json."""
        if math.isfinite(val_loss) or self.val_nonfinite is not None:
            return
        kind = "Inf" if math.isinf(val_loss) else "NaN"
        self.val_nonfinite = {"epoch": self.epoch, "step": self.step,
                              "message": f"validation loss {kind} at epoch {self.epoch} (step {self.step})"}
        self.recorder.status("running", step=self.step, epoch=self.epoch, val_nonfinite=self.val_nonfinite)

    @torch.no_grad()
    def _validate(self) -> dict[str, Any]:
        """Validation loss and accuracy over the held-out set (a host sync, once an epoch)."""
        n = len(self.data.x_val)
        if n == 0:
            return {}
        self.model.eval()  # dropout off; the raw module, so DDP adds no collectives (FSDP's all-gathers: every rank)
        loss_sum, acc_sum = 0.0, 0.0
        chunk = -(-self.config.batch_size // self.config.accum)  # a micro-batch is known to fit in memory
        for start in range(0, n, chunk):
            x, y = self.data.x_val[start:start + chunk], self.data.y_val[start:start + chunk]
            output = self.model(x)
            loss_sum += float(self.spec.loss(output, y)) * len(x)
            if self.spec.accuracy is not None:
                acc_sum += float(self.spec.accuracy(output, y)) * len(x)
        self.model.train()
        result: dict[str, Any] = {"val_loss": loss_sum / n}
        if self.spec.accuracy is not None:
            result["val_acc"] = acc_sum / n
        return result

    def _obey(self, code: int) -> int:
        """Act on a control command; a pause blocks here until resume or stop."""
        if code == PAUSE:
            self._write_ready(wait=True)
            self.recorder.status("paused", step=self.step)
            paused = time.perf_counter()
            code = self.controller.wait_while_paused()
            # Paused time counts in neither the logged time nor the throughput.
            self.start += time.perf_counter() - paused
            self._last_log = (self._last_log[0] + time.perf_counter() - paused, self._last_log[1])
            if code != STOP:
                self.recorder.status("running", step=self.step)
        return code

    def _poll(self) -> int:
        """The controller's agreed command; under DDP the same all-reduce tells every rank that
        rank 0 saw a window go non-finite, and they replay it together."""
        code = self.controller.poll(self._replay_upto)
        if self.world > 1 and self.controller.news and self.nan is None and not self.nan_watch.done:
            self._find_nan(self.controller.news)
        return code

    def _stop_if_nonfinite(self, loss: torch.Tensor, micro: list[torch.Tensor]) -> None:
        """--stop-on-nan: check every step (one host sync each), trace the step, stop."""
        loss_bad = not bool(torch.isfinite(loss))
        bad = loss_bad or bool(self.stats.any_nonfinite_grad())
        if self.world > 1:  # every rank stops at the same step; the rank whose own loss went bad traces it
            bad = bool(agree(int(bad), "max", self.controller.group))
            if not bad:
                return
            choice = agree(self.rank if loss_bad else self.world + self.rank, "min", self.controller.group)
            chosen = choice if choice < self.world else 0
            state = self._whole_state()  # sharded: every rank joins the gathers
            if self.rank == chosen and self.nan is None:
                self._record_nan(self.step, self.epoch, state, micro, rank=chosen)
            self._hear_nan(self.step, chosen)
        elif not bad:
            return
        elif self.nan is None:  # this step is the bad one: its parameters are not updated yet
            self._record_nan(self.step, self.epoch, self._whole_state(), micro)
        self._capture()
        self._finish_capture()  # no step is taken: the parameters stay the last finite ones
        self._write_ready(wait=True)
        self.optimizer.zero_grad(set_to_none=True)  # keep the last finite parameters
        self._save_final()
        text = (self.nan or {}).get("message") or f"NaN at step {self.step}"
        raise NonFiniteError(f"{text}; training stopped (--stop-on-nan), see {self.recorder.paths.root}/nan_trace.json")

    def _whole_state(self) -> dict[str, torch.Tensor]:
        """The model state with whole tensors: gathered from the shards under FSDP (a collective)."""
        return full_cpu_state(self.model) if self.sharded else self.model.state_dict()

    def _find_nan(self, logged_step: int) -> None:
        """A logged window went non-finite: replay it to the first bad step and trace that step."""
        if self.nan_watch is None:
            return
        found = self.nan_watch.replay(logged_step)
        self.nan_watch.done = True  # one origin per run: later NaNs are its consequences
        if found is None:
            self.nan = {"step": logged_step, "message": f"NaN logged at step {logged_step} (window not replayable)"}
            return
        step, epoch, state, micro, rank = found
        if self.world == 1:
            self._record_nan(step, epoch, state, micro)
            return
        if self.rank == rank:
            self._record_nan(step, epoch, state, micro, rank=rank)
        self._hear_nan(step, rank)

    def _hear_nan(self, step: int, rank: int) -> None:
        """Under DDP, after the rank that saw the bad step traced it: every rank waits for it, and
        rank 0 takes its word from nan_trace.json (on another node: says where the trace is)."""
        import torch.distributed as dist

        dist.barrier(group=self.controller.group)  # rank 0 writes status.json only after that rank has
        if self.rank != 0 or rank == 0:
            return
        traced = read_json(self.recorder.paths.root / NAN_TRACE)
        if traced and traced.get("step") == step:
            self.nan = traced
        else:
            self.nan = {"step": step, "message": f"NaN at step {step} on rank {rank} (traced in that node's run directory)"}
        self.recorder.first_nonfinite = {"step": step, "layer": self.nan.get("layer")}

    def _record_nan(self, step: int, epoch: int, state: dict[str, torch.Tensor], micro: list[torch.Tensor],
                    rank: int | None = None) -> None:
        """Save the bad step's batch and pre-update parameters and trace them to the origin."""
        index = torch.cat(list(micro))
        weights = {k: v.detach().cpu() for k, v in state.items()}
        x, y = self.data.x_train[index], self.data.y_train[index]
        # The last finite parameters: final.pt of a run that went on holds only NaN ones.
        save_weights(self.recorder.paths.root / LAST_FINITE, weights, self.config, step=step - 1, epoch=epoch,
                     note=f"the parameters after step {step - 1}, before the first non-finite step {step}")
        self.nan = record_origin(self.recorder.paths.root, step, epoch, self.config.seed, str(self.spec.path),
                                 self.config.dropout, weights, x, y, self._bad_examples(index, x, y), rank)
        # The recorder notes the first non-finite record itself; this origin is the better word.
        self.recorder.first_nonfinite = {"step": step, "layer": self.nan.get("layer")}

    def _bad_examples(self, index: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> list[int]:
        """Dataset indices of the batch's examples whose inputs or targets are not finite."""
        bad = ~_finite_rows(x) | ~_finite_rows(y)
        if not bool(bad.any()) or self.data.train_index is None:
            return []
        return self.data.train_index[index[bad].cpu()].tolist()

    def _finish(self, state: str, validate: bool = False) -> TrainResult:
        """Write what is pending (validated, when --max-steps ended mid-epoch), checkpoints, status."""
        seconds = time.perf_counter() - self.start
        cpu_seconds = time.process_time() - self.cpu_start
        self._write_ready(wait=True, extra=self._validate() if validate and self.validates else None)
        if self.world > 1:  # a last window that went non-finite is replayed before the run ends
            upto = agree(self._replay_upto, "max", self.controller.group)
            if upto and self.nan is None and not self.nan_watch.done:
                self._find_nan(upto)
        self._save_final()
        if self.histograms is not None:
            self.histograms.close()
        ranks = {}
        if self.world > 1:  # sharded: no replicas to compare, but the shards must cover every parameter once
            ranks = ({"shards_cover": shards_cover(self.groups.params, self.step, self.device)} if self.sharded
                     else {"ranks_agree": self._ranks_agree()})
        self.recorder.status(state, step=self.step, epoch=self.epoch, seconds=seconds, **ranks,
                             **self._checkpoint_field())
        best = self.best.best_loss if self.best.best_loss != float("inf") else None
        return TrainResult(state, self.step, self.epoch, self.samples, seconds, cpu_seconds, best)

    def _snapshot(self) -> None:
        """--snapshots N: keep this step's parameters (rank 0; every rank has the same)."""
        if self.config.snapshots and self.rank == 0:
            save_snapshot(self.recorder.paths.root, self.model, self.step)

    def _save_final(self) -> None:
        self.checkpoint_step = self.step
        if self.sharded:  # every rank writes its own shards
            save_sharded(self.recorder.paths.root / FINAL_SHARDED, self.model, self.optimizer,
                         step=self.step, epoch=self.epoch)
            self.best.flush()
            return
        if self.rank == 0 and self.config.snapshots and self.step % self.config.snapshots != 0:
            self._snapshot()  # the trajectory ends at the final parameters
        if self.rank == 0:
            save_checkpoint(self.recorder.paths.final_checkpoint, self.model, self.optimizer, self.config,
                            step=self.step, epoch=self.epoch)
            self.best.flush()

    @torch.no_grad()
    def _ranks_agree(self) -> bool:
        """Whether every rank ends with the same parameters (three float64 fingerprints each)."""
        import torch.distributed as dist

        flat = torch.cat([p.detach().reshape(-1).double() for p in self.groups.params])
        ramp = torch.arange(1, flat.numel() + 1, device=flat.device, dtype=torch.float64)
        mine = torch.stack([flat.sum(), (flat * flat).sum(), (flat * ramp).sum()])
        everyone = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(everyone, mine)
        # equal_nan: replicas that went NaN together (a run that went non-finite) still agree
        return all(torch.allclose(everyone[0], other, rtol=0, atol=0, equal_nan=True) for other in everyone[1:])

    def _oom_or(self, exc: RuntimeError, micro: list[torch.Tensor]) -> Exception:
        """What to raise for an error in forward or backward: out of memory (CUDA's, or the CPU
        allocator's) as a TrainingError with advice, anything else as it was."""
        if isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in str(exc):
            return self._oom(micro)
        return exc

    def _oom(self, micro: list[torch.Tensor]) -> TrainingError:
        sizes = sorted({int(m.shape[0]) for m in micro})
        return TrainingError(
            f"out of memory on {self.device} at --batch-size {self.config.batch_size} "
            f"(micro-batches of {'/'.join(map(str, sizes))} examples per process); "
            f"try a smaller --batch-size or --accum {2 * self.config.accum}"
        )
