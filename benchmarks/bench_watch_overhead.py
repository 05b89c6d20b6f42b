"""Throughput of a plain loop, the same loop with gradviz.watch, and with TensorBoard logging.

One process, one model (samples/deep_mlp.py: 2→64→64→64→2, ReLU, dropout; batch 64,
Adam), the same data. Variants, each run for --steps optimizer steps per round:

- plain: forward, loss, backward, step, zero_grad;
- watch: plus `run.log(loss=loss)` each step with `gradviz.watch(model, optimizer)`
  at its defaults (a record every 25th step at most twice a second: fused norms,
  masks, metrics line; the losses in between averaged into it);
- watch-every: the same with log_every=1, log_seconds=0 (a record every step);
- tensorboard: plus what a SummaryWriter user writes each step: add_scalar of
  loss.item() and of every layer's gradient norm (.item() each).

All four loops live in one process and run interleaved, --chunk steps each in a rotating
order, so load from other processes on a shared machine falls on all of them alike.
Reported per variant: throughput relative to the plain loop over the whole run (wall
time, and CPU time of this process with all its threads, TensorBoard's writer thread
included), and the median of the per-round ratios.

    PYTHONPATH=. python benchmarks/bench_watch_overhead.py [--chunk 25] [--rounds 80] [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gradviz  # noqa: E402
from gradviz.sources.spec import load_spec  # noqa: E402

SPEC = ROOT / "samples" / "deep_mlp.py"


class Variant:
    """One loop's state (model, optimizer, data, logger), run a chunk of steps at a time."""

    def __init__(self, name: str, device: torch.device, folder: Path):
        spec = load_spec(SPEC)
        torch.manual_seed(0)
        x, y = spec.make_data(0)
        self.name, self.spec, self.device = name, spec, device
        self.x, self.y = x.to(device), y.to(device)
        self.model = spec.build_model().to(device).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.01)
        self.run = self.writer = None
        self.batches: list[torch.Tensor] = []
        self.done = 0
        self.wall = self.cpu = 0.0
        if name.startswith("watch"):
            every = name == "watch-every"  # a record every step, like the TensorBoard variant
            self.run = gradviz.watch(self.model, self.optimizer, run_dir=folder / name,
                                     log_every=1 if every else 25, log_seconds=0 if every else 0.5)
        elif name == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(folder / name))
            self.layers: dict[str, list[torch.Tensor]] = {}
            for pname, param in self.model.named_parameters():
                self.layers.setdefault(pname.rpartition(".")[0], []).append(param)

    def chunk(self, steps: int) -> None:
        """Run `steps` optimizer steps, adding their wall and CPU time to the totals."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            if not self.batches:
                self.batches = list(torch.randperm(len(self.x), device=self.device).split(64))
            batch = self.batches.pop()
            loss = self.spec.loss(self.model(self.x[batch]), self.y[batch])
            loss.backward()
            if self.writer is not None:  # what a SummaryWriter user writes: loss and per-layer norms
                self.writer.add_scalar("loss", loss.item(), self.done)
                for layer, params in self.layers.items():
                    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
                    self.writer.add_scalar(f"grad_norm/{layer}", norm.item(), self.done)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if self.run is not None:
                self.run.log(loss=loss, step=self.done)
            self.done += 1
        if self.writer is not None:
            # TensorBoard writes from a thread: flushing inside the chunk charges its own
            # I/O to it, not to whichever loop runs next.
            self.writer.flush()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu

    def close(self) -> None:
        if self.run is not None:
            self.run.close()
        if self.writer is not None:
            self.writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk", type=int, default=25, help="steps each variant runs before the next takes over")
    parser.add_argument("--rounds", type=int, default=80, help="chunks per variant")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = ["plain", "watch", "watch-every", "tensorboard"]
    with tempfile.TemporaryDirectory() as tmp:
        variants = [Variant(name, device, Path(tmp)) for name in names]
        for v in variants:
            v.chunk(args.chunk)  # warm-up: first records, allocator, TensorBoard's thread
            v.wall = v.cpu = 0.0
        ratios: dict[str, list[float]] = {name: [] for name in names[1:]}
        for r in range(args.rounds):
            # Interleaved chunks a fraction of a second apart: load from other processes
            # hits every variant alike; the order rotates so none always runs first.
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            before = {v.name: v.wall for v in variants}
            for v in order:
                v.chunk(args.chunk)
            plain = variants[0].wall - before["plain"]
            for v in variants[1:]:
                ratios[v.name].append(plain / (v.wall - before[v.name]))
        for v in variants:
            v.close()
    plain = variants[0]
    steps = args.chunk * args.rounds
    print(f"{args.device}, deep_mlp batch 64, Adam, torch threads {args.threads}: {args.rounds} interleaved chunks "
          f"of {args.chunk} steps per variant; plain loop {steps / plain.wall:.0f} steps/s")
    for v in variants[1:]:
        print(f"{v.name:12s} throughput vs plain: {plain.wall / v.wall:.3f}× wall (total), "
              f"{plain.cpu / v.cpu:.3f}× CPU (total), median of chunk ratios {statistics.median(ratios[v.name]):.3f}×")


if __name__ == "__main__":
    main()
