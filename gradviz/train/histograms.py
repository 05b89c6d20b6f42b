"""Per-layer histograms of gradient values, on the device, with fixed log-spaced bins.

Bins are symmetric in sign and log-spaced in magnitude (as TensorBoard's distributions):
edges −10^HI … −10^LO, 10^LO … 10^HI with one bin [−10^LO, 10^LO) around zero; values
beyond ±10^HI are counted in the end bins. All layers are counted in one pass: every
gradient flattened into one vector, each value's bin found by ``torch.bucketize`` and
offset by its layer, one ``torch.bincount``. The counts (layers × bins) are copied to
the host without blocking, like the norms, and written to ``histograms.jsonl``.
Equal to ``torch.histogram`` of the clamped values with the same edges.

Sharded (FSDP2: parameters and gradients are DTensors): every rank counts the values of its
local shards that it alone holds (``shard_cover.counted_part``: a replica is counted by one
rank only) into the same bins, and one ``all_reduce`` of the int64 counts (layers × bins)
gives the histogram of the whole gradients; nothing is gathered in full. Every rank must
take them at the same steps (a skipped collective stalls or aborts the job); rank 0 writes.
"""

from __future__ import annotations

from typing import Any

import torch

LO, HI = -8, 2  # magnitudes from 1e-8 to 1e2
DEFAULT_EVERY = 100  # steps between histograms when --hist-every is not given
PER_DECADE = 2  # bins per decade on each side


def bin_edges(lo: int = LO, hi: int = HI, per_decade: int = PER_DECADE) -> torch.Tensor:
    """The fixed edges (float64, increasing): −10^hi … −10^lo, 10^lo … 10^hi."""
    magnitudes = torch.logspace(lo, hi, (hi - lo) * per_decade + 1, dtype=torch.float64)
    return torch.cat([-magnitudes.flip(0), magnitudes])


class GradHistograms:
    """Counts every layer's gradient values into the fixed bins, on the device."""

    def __init__(self, layer_of: list[int], layers: int, device: torch.device, sharded: bool = False):
        self.layer_of = layer_of
        self.layers = layers
        self.device = device
        self.sharded = sharded  # count local shards, then sum the counts over ranks (a collective)
        self.edges64 = bin_edges()
        self.bins = len(self.edges64) - 1
        self._edges: dict[torch.dtype, torch.Tensor] = {}
        self._offsets: dict[tuple[Any, ...], torch.Tensor] = {}

    def counts(self, params: list[torch.nn.Parameter]) -> torch.Tensor:
        """(layers × bins) int64 counts of the current gradients (device; no sync; sharded: one all-reduce)."""
        present = [(p.grad, layer) for p, layer in zip(params, self.layer_of) if p.grad is not None]
        if not self.sharded:
            return self._count(present)
        import torch.distributed as dist

        from gradviz.train.shard_cover import counted_part

        mine = []  # this rank's own values of each gradient (a replica is counted on one rank only)
        for grad, layer in present:
            part = counted_part(grad)
            if part is not None:
                mine.append((part, layer))
        with torch.no_grad():
            counts = self._count(mine)
            dist.all_reduce(counts)  # SUM: every value of every gradient counted once over the ranks
        return counts

    def _count(self, present: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
        """(layers × bins) int64 counts of the given tensors, each counted in its layer's row."""
        if not present:
            return torch.zeros(self.layers, self.bins, dtype=torch.int64, device=self.device)
        with torch.no_grad():
            flat = torch.cat([g.reshape(-1) for g, _ in present])
            edges = self._edges_for(flat.dtype)
            clamped = flat.clamp(edges[0], edges[-1])
            # bucketize(right=True) - 1 is the bin [e_i, e_{i+1}); the top edge joins the last bin.
            index = (torch.bucketize(clamped, edges, right=True) - 1).clamp_(0, self.bins - 1)
            index += self._offset(present, flat.device)
            # NaN compares false everywhere: bucketize puts it past the top edge; count it there too.
            out = torch.bincount(index, minlength=self.layers * self.bins)
        return out.reshape(self.layers, self.bins)

    def _edges_for(self, dtype: torch.dtype) -> torch.Tensor:
        edges = self._edges.get(dtype)
        if edges is None:
            edges = self.edges64.to(dtype=dtype, device=self.device)
            self._edges[dtype] = edges
        return edges

    def _offset(self, present: list[tuple[torch.Tensor, int]], device: torch.device) -> torch.Tensor:
        """Each value's layer × bins, built once per set of gradient shapes."""
        key = tuple((g.numel(), layer) for g, layer in present)
        offset = self._offsets.get(key)
        if offset is None:
            offset = torch.cat([torch.full((g.numel(),), layer * self.bins, dtype=torch.int64) for g, layer in present])
            offset = offset.to(device)
            self._offsets[key] = offset
        return offset


def histogram_record(step: int, epoch: int, counts: list[list[int]], names: list[str], edges: list[float]) -> dict[str, Any]:
    """One line of histograms.jsonl."""
    return {"step": step, "epoch": epoch, "kind": "grad", "edges": edges,
            "layers": {name: [int(c) for c in row] for name, row in zip(names, counts)}}


class HistogramLog:
    """Takes the histograms on due logged steps, copies them asynchronously, appends them."""

    def __init__(self, path: Any, groups: Any, device: torch.device, every: int | None, sharded: bool = False):
        """path None: count (and, sharded, join the reduction) but write nothing (the other ranks)."""
        from gradviz.rundir.jsonl import JsonlWriter
        from gradviz.train.stats import HostCopier

        # Logged steps that are multiples of N (and step 1); None: DEFAULT_EVERY.
        self.every = DEFAULT_EVERY if every is None else every
        self.hist = GradHistograms(groups.layer_of, len(groups.names), device, sharded)
        self.names = groups.names
        self.edges = self.hist.edges64.tolist()
        self.copier = HostCopier(device)
        self.writer = None if path is None else JsonlWriter(path)

    def due(self, step: int) -> bool:
        """Whether a logged step also takes the histograms."""
        return step == 1 or step % self.every == 0

    def capture(self, params: list[torch.nn.Parameter], step: int, epoch: int) -> None:
        """Count on the device and start the host copy (written once it has landed)."""
        counts = self.hist.counts(params)
        if self.writer is not None:
            self.copier.submit(counts, (step, epoch))

    def regroup(self, groups: Any) -> None:
        """Count by new layer groups from now on (gradviz.watch: a layer was unfrozen)."""
        self.flush(wait=True)
        self.hist = GradHistograms(groups.layer_of, len(groups.names), self.hist.device, self.hist.sharded)
        self.names = groups.names

    def flush(self, wait: bool = False) -> None:
        """Write the histograms whose copies have landed."""
        for counts, (step, epoch) in self.copier.ready(wait=wait):
            self.writer.write(histogram_record(step, epoch, counts, self.names, self.edges))

    def close(self) -> None:
        self.flush(wait=True)
        if self.writer is not None:
            self.writer.close()
