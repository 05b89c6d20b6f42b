"""Per-layer statistics of a training step, computed on the device and copied lazily.

On logged steps only, after the last micro-batch (and after DDP's all-reduce), one
``torch._foreach_norm`` call gives the norm of every gradient and parameter; one
matrix-vector product sums their squares per layer. The statistics named by
``gradviz.step_stats.STEP_STATS`` (losses, norms), then dropout keep rates and mask samples,
go into one vector that is copied to pinned host memory without blocking; the
record is written once a CUDA event says the copy has landed. No ``.item()``, no host
synchronisation in the step.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn

import gradviz.step_stats as step_stats
from gradviz.step_stats import AFTER_STEP, BEFORE_STEP, Stat, StatsLayout, stats_measured
from gradviz.train.data import to_device
from gradviz.train.dropout_probe import MaskLog, ProbedLayer

MASK_SAMPLE = 256  # units of one example's mask kept per dropout layer per sample
MASK_SECONDS = 0.25  # mask samples at most this often: the monitor redraws twice a second


@dataclass(frozen=True)
class LayerGroups:
    """Trainable parameters grouped by the module that owns them, in registration order."""

    names: list[str]
    params: list[nn.Parameter]
    layer_of: list[int]  # layer index of each parameter


def group_parameters(model: nn.Module) -> LayerGroups:
    """Group trainable parameters by owning module ('fc1' holds fc1.weight and fc1.bias)."""
    names: list[str] = []
    params: list[nn.Parameter] = []
    layer_of: list[int] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer = name.rpartition(".")[0] or name  # a parameter set on the model itself is its own layer
        if layer not in names:
            names.append(layer)
        params.append(param)
        layer_of.append(names.index(layer))
    return LayerGroups(names, params, layer_of)


@dataclass
class Layout:
    """Where each quantity sits in a captured vector, plus host-side facts of the step."""

    stats: StatsLayout  # the named statistics first
    # (dropout layer, mask shape per example, sample length, mask size); size 0: layer did
    # not run, sample length 0: no sample taken this time.
    masks: list[tuple[str, list[int], int, int]]
    info: dict[str, Any] = field(default_factory=dict)


class LayerNorms(NamedTuple):
    """Norms of one phase, from one fused call: ‖∇θ‖ and ‖θ‖ per layer, ‖∇θ‖ over all (device)."""

    grad: torch.Tensor
    param: torch.Tensor
    total: torch.Tensor


class StepMeasures:
    """What a STEP_STATS entry's `measure` reads in one phase of a logged step, on the device.

    Anything costly is computed once a phase, on first use, whichever entries ask for it."""

    def __init__(self, collector: StatsCollector, loss: torch.Tensor, penalty: torch.Tensor,
                 keep_params: bool = False):
        self.collector = collector
        self.loss = loss
        self.penalty = penalty
        self._norms: LayerNorms | None = None
        # θ before the step, copied only when a statistic is measured after it (for the update Δθ).
        self._before = [p.detach().clone() for p in collector.groups.params] if keep_params else None

    @property
    def params(self) -> list[torch.Tensor]:
        """The trainable parameters, in LayerGroups order."""
        return list(self.collector.groups.params)

    def norms(self) -> LayerNorms:
        """‖∇θ‖ and ‖θ‖ per layer and ‖∇θ‖ over every parameter: one fused call per phase."""
        if self._norms is None:
            n = len(self.collector.groups.names)
            self._norms = LayerNorms(*self.collector.norms().split_with_sizes([n, n, 1]))
        return self._norms

    def layer_norms(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """The norm per layer of tensors given one per parameter (in `params` order)."""
        return self.collector.layer_norms(tensors)

    def update(self) -> list[torch.Tensor]:
        """Δθ = θ after the step − θ before it, per parameter (after the step only)."""
        if self._before is None:
            raise RuntimeError("the update Δθ is measured after the optimizer step (declare when=AFTER_STEP)")
        return [p.detach() - before for p, before in zip(self.collector.groups.params, self._before)]

    def after_step(self) -> StepMeasures:
        """The measures of the same step once the optimizer has updated θ (norms measured afresh)."""
        after = StepMeasures(self.collector, self.loss, self.penalty)
        after._before = self._before
        return after


class StatsCollector:
    """Builds the statistics vector of a logged step, entirely on the device."""

    def __init__(self, groups: LayerGroups, probed: list[ProbedLayer], mask_log: MaskLog, device: torch.device):
        self.groups = groups
        self.probed = probed
        self.mask_log = mask_log
        self.device = device
        self._sum_cache: dict[tuple[Any, ...], torch.Tensor] = {}
        self._planned: tuple[Any, StatsLayout, tuple[Stat, ...], tuple[Stat, ...]] | None = None
        self._begun: tuple[dict[str, torch.Tensor], list[torch.Tensor], Layout, StepMeasures] | None = None

    def norms(self) -> torch.Tensor:
        """[gradient norm per layer, parameter norm per layer, total gradient norm] (device)."""
        params = self.groups.params
        present = tuple(p.grad is not None for p in params)
        grads = [p.grad for p in params if p.grad is not None]
        with torch.no_grad():
            if self.sharded:
                return self._sharded_norms(present, grads)
            # One fused call for every gradient and every parameter, then one matrix-vector
            # product sums the squares per layer: a handful of kernels, whatever the model.
            norms = torch.stack(torch._foreach_norm(grads + list(params)))
            return (self._summer(present, norms.dtype) @ norms.square()).sqrt()

    def layer_norms(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """The norm per layer of tensors given one per parameter (LayerGroups order): one fused call
        (under FSDP2 each rank's local shards, summed over ranks by one all-reduce)."""
        with torch.no_grad():
            local = [local_part(t) for t in tensors]
            squares = torch.stack(torch._foreach_norm(local)).square()
            key = ("layers", squares.dtype)
            matrix = self._sum_cache.get(key)
            if matrix is None:
                matrix = torch.zeros(len(self.groups.names), len(tensors), dtype=squares.dtype)
                for column, layer in enumerate(self.groups.layer_of):
                    matrix[layer, column] = 1.0
                matrix = self._sum_cache[key] = to_device(matrix, self.device)
            if self.sharded:
                import torch.distributed as dist

                sums = matrix @ (squares * self._shares(tensors, ("layer shares", squares.dtype), squares.dtype))
                dist.all_reduce(sums)
                return sums.sqrt()
            return (matrix @ squares).sqrt()

    def _shares(self, tensors: list[torch.Tensor], key: tuple[Any, ...], dtype: torch.dtype) -> torch.Tensor:
        """Each tensor's share of its squared norm in a sum over ranks (a replicated tensor is on
        every rank: 1/replicas), on the device, kept under `key`."""
        shares = self._sum_cache.get(key)
        if shares is None:
            shares = self._sum_cache[key] = to_device(torch.tensor([_share(t) for t in tensors], dtype=dtype),
                                                      self.device)
        return shares

    @property
    def sharded(self) -> bool:
        """Whether the parameters are DTensors (FSDP2's fully_shard): norms need every rank."""
        cached = self.__dict__.get("_sharded")
        if cached is None:
            cached = self.__dict__["_sharded"] = any(_is_dtensor(p) for p in self.groups.params)
        return cached

    def _sharded_norms(self, present: tuple[bool, ...], grads: list[torch.Tensor]) -> torch.Tensor:
        """Norms of sharded parameters: each rank's local shards' squares, summed over ranks by one
        all-reduce. Every rank must call this at the same steps (a skipped collective aborts the job);
        nothing is gathered in full."""
        import torch.distributed as dist

        tensors = grads + list(self.groups.params)
        local = [local_part(t) for t in tensors]
        squares = torch.stack(torch._foreach_norm(local)).square()
        shares = self._shares(tensors, ("shares", present, squares.dtype), squares.dtype)
        sums = self._summer(present, squares.dtype) @ (squares * shares)
        dist.all_reduce(sums)
        return sums.sqrt()

    def _plan(self) -> tuple[StatsLayout, tuple[Stat, ...], tuple[Stat, ...]]:
        """The layout and the statistics of each phase (before, after the step) for STEP_STATS as it
        is now: made once and kept while STEP_STATS stays the same object (a logged step's Python
        runs between the model's kernels, with the caches cold: every line costs)."""
        current = step_stats.STEP_STATS
        if self._planned is None or self._planned[0] is not current:
            self._planned = (current, StatsLayout(len(self.groups.names)), stats_measured(BEFORE_STEP),
                             stats_measured(AFTER_STEP))
        return self._planned[1:]

    def step_stats(self, loss: torch.Tensor, penalty: torch.Tensor) -> dict[str, torch.Tensor]:
        """The statistics STEP_STATS measures before the optimizer step, by name, on the device."""
        return self._measure(self._plan()[1], StepMeasures(self, loss, penalty))

    def after_step_stats(self) -> dict[str, torch.Tensor]:
        """The statistics STEP_STATS measures after the optimizer step, by name, on the device."""
        if self._begun is None:
            raise RuntimeError("StatsCollector.after_step_stats without begin")
        after = self._plan()[2]
        return self._measure(after, self._begun[3].after_step()) if after else {}

    @staticmethod
    def _measure(stats: tuple[Stat, ...], measures: StepMeasures) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {stat.name: stat.measure(measures) for stat in stats if stat.measure is not None}

    # The lifecycle of a logged step's statistics, the same for the trainer and `watch`:
    # begin() before the optimizer step, after_step() once it has run, then finish() gives the
    # vector to copy. Each STEP_STATS entry says which phase measures it. Every rank that takes
    # part calls all three at the same steps (FSDP2's norms are collectives).
    def begin(self, loss: torch.Tensor, penalty: torch.Tensor, with_masks: bool) -> Layout:
        """Before the optimizer step: measure what is measured then, and the dropout masks.
        Returns the step's layout (the caller fills in its host-side info)."""
        stats, before, after = self._plan()
        measures = StepMeasures(self, loss, penalty, keep_params=bool(after))
        computed = self._measure(before, measures)
        mask_parts, masks = self._mask_parts(with_masks)
        layout = Layout(stats, masks)
        self._begun = (computed, mask_parts, layout, measures)
        return layout

    def after_step(self) -> None:
        """After the optimizer step: measure what is measured then."""
        if self._begun is None:
            raise RuntimeError("StatsCollector.after_step without begin")
        measured = self.after_step_stats()
        missing = [stat for stat in self._plan()[2] if stat.name not in measured]
        if missing:  # a subclass's after_step_stats that leaves declared statistics out
            after = self._begun[3].after_step()
            with torch.no_grad():
                measured.update({stat.name: stat.measure(after) for stat in missing if stat.measure is not None})
        self._begun[0].update(measured)

    def finish(self) -> tuple[torch.Tensor, Layout]:
        """The vector [STEP_STATS in their layout, keep rates (and mask samples when asked)]."""
        if self._begun is None:
            raise RuntimeError("StatsCollector.finish without begin")
        computed, mask_parts, layout, _ = self._begun
        self._begun = None
        parts = []
        for stat in layout.stats.stats:
            part = computed.get(stat.name)
            if part is None:
                raise ValueError(f"statistic {stat.name}: declared in STEP_STATS but never measured")
            if part.numel() != layout.stats.size(stat.name):  # shapes are known without a device sync
                raise ValueError(f"statistic {stat.name}: {part.numel()} values, {layout.stats.size(stat.name)} declared")
            parts.append(part if part.dim() < 2 else part.reshape(-1))  # hstack joins 2-D tensors column-wise
        with torch.no_grad():
            # One call flattens, promotes and joins them all (scalars, per-layer vectors, mask counts and
            # samples): each tensor operation costs microseconds on a logged step, with the caches cold.
            vector = torch.hstack(parts + mask_parts)
            return (vector if vector.dtype == torch.float32 else vector.float()), layout

    def capture(self, loss: torch.Tensor, penalty: torch.Tensor, with_masks: bool) -> tuple[torch.Tensor, Layout]:
        """The whole lifecycle at once, where no optimizer step follows (the parameters stay as they are)."""
        self.begin(loss, penalty, with_masks)
        self.after_step()
        return self.finish()

    def _mask_parts(self, with_masks: bool) -> tuple[list[torch.Tensor], list[tuple[str, list[int], int, int]]]:
        """Per dropout layer: its kept-unit count (and a mask sample when asked), and where each sits."""
        ran = []
        masks = []
        for layer in self.probed:
            # The raw mask: boolean (CUDA) or the scaled Bernoulli noise (CPU); both are
            # non-zero exactly where units were kept, so no conversion is needed here.
            mask = self.mask_log.masks.get(layer.name)
            if mask is None:  # the layer did not run in training mode this step
                masks.append((layer.name, [], 0, 0))
                continue
            ran.append(mask)
            length = min(MASK_SAMPLE, math.prod(mask.shape[1:])) if with_masks else 0  # one example's units
            masks.append((layer.name, list(mask.shape[1:]), length, mask.numel()))
        if not ran:
            return [], masks
        with torch.no_grad():
            if all(m.is_floating_point() for m in ran):  # CPU's noise: every layer's count in one fused call
                counts = list(torch._foreach_norm(ran, 0, dtype=torch.float32))  # the 0-norm counts non-zeros
            else:  # CUDA's boolean masks
                counts = [torch.count_nonzero(m) for m in ran]
            if not with_masks:
                return counts, masks
            parts: list[torch.Tensor] = []
            for count, mask in zip(counts, ran):  # each layer's count, then its sample (one example's units)
                parts += (count, mask[0].reshape(-1)[:MASK_SAMPLE])
            return parts, masks

    def any_nonfinite_grad(self) -> torch.Tensor:
        """A device flag: is any gradient non-finite? (Read on the host only under --stop-on-nan.)

        Under FSDP2 it reads this rank's shards only (no collective: the ranks agree on the flag
        afterwards, and a rank whose loss already went bad skips this call)."""
        grads = [local_part(p.grad) for p in self.groups.params if p.grad is not None]
        with torch.no_grad():
            return ~torch.isfinite(torch.stack(torch._foreach_norm(grads)).sum())

    def _summer(self, present: tuple[bool, ...], dtype: torch.dtype) -> torch.Tensor:
        """0/1 matrix summing squared norms (gradients first, then parameters) per output row."""
        key = (present, dtype)
        matrix = self._sum_cache.get(key)
        if matrix is None:
            n = len(self.groups.names)
            grad_layers = [layer for layer, has in zip(self.groups.layer_of, present) if has]
            columns = grad_layers + [n + layer for layer in self.groups.layer_of]
            matrix = torch.zeros(2 * n + 1, len(columns), dtype=dtype)
            for column, row in enumerate(columns):
                matrix[row, column] = 1.0
            matrix[2 * n, : len(grad_layers)] = 1.0  # the total gradient norm
            matrix = to_device(matrix, self.device)
            self._sum_cache[key] = matrix
        return matrix


def local_part(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor (FSDP2's parameters and gradients); a plain tensor itself."""
    return tensor.to_local() if _is_dtensor(tensor) else tensor


def _is_dtensor(tensor: Any) -> bool:
    return type(tensor).__name__ == "DTensor" or type(getattr(tensor, "data", None)).__name__ == "DTensor"


def _share(tensor: Any) -> float:
    """The fraction of a tensor's squared norm this rank's local part stands for in a sum over ranks."""
    import torch.distributed as dist

    if not _is_dtensor(tensor):
        return 1.0 / dist.get_world_size()
    share = 1.0
    for dim, placement in enumerate(tensor.placements):
        if not placement.is_shard():  # replicated (or partial) along this mesh dimension
            share /= tensor.device_mesh.size(dim)
    return share


def unpack(values: list[float], layout: Layout, layer_names: list[str]) -> dict[str, Any]:
    """Turn a host copy of a captured vector back into named values."""
    out = layout.stats.unpack(values, layer_names)
    at = layout.stats.width
    keep: dict[str, float] = {}
    samples: dict[str, dict[str, Any]] = {}
    for name, shape, length, size in layout.masks:
        if size == 0:
            keep[name] = math.nan
            continue
        keep[name] = values[at] / size
        if length:
            bits = values[at + 1:at + 1 + length]
            # '1' where the unit was kept (its mask value is non-zero): map over C functions, no Python per unit.
            samples[name] = {"shape": shape, "kept": "".join(map("01".__getitem__, map(bool, bits)))}
        at += 1 + length
    out["keep_rate"] = keep
    out["mask_samples"] = samples
    return out


class HostCopier:
    """Copies captured vectors to host memory without blocking the device queue."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.pending: deque[tuple[torch.Tensor, Any, Any]] = deque()

    def submit(self, vector: torch.Tensor, payload: Any) -> None:
        """Start copying; the payload comes back with the values once they are on the host."""
        if self.cuda:
            host = torch.empty(vector.shape, dtype=vector.dtype, pin_memory=True)
            host.copy_(vector, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:
            host, event = vector, None
        self.pending.append((host, event, payload))

    def ready(self, wait: bool = False) -> list[tuple[list[float], Any]]:
        """The copies that have landed, oldest first; with wait, all of them."""
        done = []
        while self.pending:
            host, event, payload = self.pending[0]
            if event is not None:
                if wait:
                    event.synchronize()
                elif not event.query():
                    break
            self.pending.popleft()
            done.append((host.tolist(), payload))
        return done
