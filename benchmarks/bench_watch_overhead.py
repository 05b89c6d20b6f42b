"""Throughput of a plain loop, the same loop with gradviz.watch, and with TensorBoard logging.

One process, one model (samples/deep_mlp.py: 2→64→64→64→2, ReLU, dropout; batch 64,
Adam), the same data. Variants, each run for --steps optimizer steps per round:

- plain: forward, loss, backward, step, zero_grad;
- watch: plus `run.log(loss=loss)` each step with `gradviz.watch(model, optimizer)`
  at its default (a record every 25 steps: fused norms, masks, metrics line);
- watch-every: the same with log_every=1 (a record every step);
- tensorboard: plus what a SummaryWriter user writes each step: add_scalar of
  loss.item() and of every layer's gradient norm (.item() each).

Rounds run the variants back to back in a rotating order; the figure to read is the
median over rounds of each variant's steps/s divided by the plain loop's in the same
round (steadier on a shared machine than a ratio of medians). CPU seconds (this
process, all threads) are reported beside wall time.

    PYTHONPATH=. python benchmarks/bench_watch_overhead.py [--steps 300] [--rounds 7] [--device cuda]
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


def setup(device: torch.device):
    spec = load_spec(SPEC)
    torch.manual_seed(0)
    x, y = spec.make_data(0)
    model = spec.build_model().to(device).train()
    return spec, x.to(device), y.to(device), model, torch.optim.Adam(model.parameters(), lr=0.01)


def run_variant(name: str, steps: int, device: torch.device, folder: Path) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second) of one variant."""
    spec, x, y, model, optimizer = setup(device)
    run = writer = None
    if name.startswith("watch"):
        run = gradviz.watch(model, optimizer, run_dir=folder / f"{name}-{time.time_ns()}",
                            log_every=1 if name == "watch-every" else 25)
    elif name == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(folder / f"tb-{time.time_ns()}"))
        layers = {}
        for pname, param in model.named_parameters():
            layers.setdefault(pname.rpartition(".")[0], []).append(param)
    n, done = len(x), 0
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    while done < steps:
        for batch in torch.randperm(n, device=device).split(64):
            loss = spec.loss(model(x[batch]), y[batch])
            loss.backward()
            if writer is not None:
                writer.add_scalar("loss", loss.item(), done)
                for layer, params in layers.items():
                    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
                    writer.add_scalar(f"grad_norm/{layer}", norm.item(), done)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if run is not None:
                run.log(loss=loss, step=done)
            done += 1
            if done == steps:
                break
    if run is not None:
        run.close()
    if writer is not None:
        writer.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    variants = ["plain", "watch", "watch-every", "tensorboard"]
    ratios: dict[str, list[float]] = {v: [] for v in variants[1:]}
    cpu_ratios: dict[str, list[float]] = {v: [] for v in variants[1:]}
    with tempfile.TemporaryDirectory() as tmp:
        run_variant("plain", 50, device, Path(tmp))  # warm-up
        for r in range(args.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            rates = {v: run_variant(v, args.steps, device, Path(tmp)) for v in order}
            for v in variants[1:]:
                ratios[v].append(rates[v][0] / rates["plain"][0])
                cpu_ratios[v].append(rates[v][1] / rates["plain"][1])
            print(f"round {r + 1}: plain {rates['plain'][0]:.0f} steps/s; "
                  + ", ".join(f"{v} {rates[v][0] / rates['plain'][0]:.3f}×" for v in variants[1:]), flush=True)
    print(f"\n{args.device}, {args.steps} steps × {args.rounds} rounds, deep_mlp batch 64, torch threads {args.threads}")
    for v in variants[1:]:
        print(f"{v:12s} throughput vs plain: median {statistics.median(ratios[v]):.3f}× wall, "
              f"{statistics.median(cpu_ratios[v]):.3f}× CPU (rounds: {', '.join(f'{x:.3f}' for x in ratios[v])})")


if __name__ == "__main__":
    main()
