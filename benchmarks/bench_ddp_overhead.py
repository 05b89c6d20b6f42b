"""Throughput of `gradviz train` under DDP (2 gloo ranks on CPU) against a plain DDP loop, same run.

Both train samples/deep_mlp.py on the same global batch (each rank takes its half of every
batch of --batch-size, as `gradviz train` shares a batch out), with Adam and one CPU thread
per rank. The plain loop is DistributedDataParallel's textbook loop: forward, loss,
backward (the all-reduce), step, and `loss.item()` every --log-every steps, as a loop that
prints its loss would. gradviz runs its own Trainer under DDP with everything on (norms,
masks, the rank-mean loss, histograms, the NaN watch, control polls, the heartbeat).
Chunks of --steps steps alternate between the two (which goes first alternates too), in
the same two processes; the figure to read is the median of the pairs' ratios.

    PYTHONPATH=. python benchmarks/bench_ddp_overhead.py [--steps 1000] [--pairs 6]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradviz.rundir.paths import RunPaths  # noqa: E402
from gradviz.sources.spec import load_spec  # noqa: E402
from gradviz.train.config import DEFAULTS, TrainConfig  # noqa: E402
from gradviz.train.worker import DistInfo, run_training  # noqa: E402

SPEC = ROOT / "samples" / "deep_mlp.py"
WORLD = 2


def plain_ddp_loop(rank: int, steps: int, batch_size: int, lr: float, log_every: int) -> tuple[float, float]:
    """(steps per wall second, per CPU second) of the textbook DDP loop on this rank's share of each batch."""
    from torch.nn.parallel import DistributedDataParallel

    spec = load_spec(SPEC)
    x, y = spec.make_data(0)
    # The Trainer's shuffle of the data and initial weights (seed 0): both loops do the same arithmetic.
    shuffle = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[shuffle], y[shuffle]
    torch.manual_seed(0)
    model = DistributedDataParallel(spec.build_model().train())
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    done, epoch = 0, 0
    dist.barrier()
    start, cpu_start = time.perf_counter(), time.process_time()
    while done < steps:
        epoch += 1
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))  # the same on every rank
        for batch in order.split(batch_size)[: len(x) // batch_size + (len(x) % batch_size >= WORLD)]:
            mine = batch.tensor_split(WORLD)[rank]
            loss = spec.loss(model(x[mine]), y[mine])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            if done % log_every == 0:
                loss.item()
            if done == steps:
                break
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu_start)


def gradviz_ddp_loop(rank: int, folder: Path, steps: int, batch_size: int, lr: float,
                     log_every: int) -> tuple[float, float]:
    """(steps per wall second, per CPU second) of gradviz's Trainer on this rank, as `gradviz train` runs it
    under torchrun (set-up, the final flush and checkpoints excluded)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(spec=str(SPEC), run_dir=str(folder), device="cpu", epochs=10_000, max_steps=steps,
                         batch_size=batch_size, lr=lr, optimizer="adam", log_every=log_every, val_fraction=0.0)
    info = DistInfo(rank=rank, world=WORLD, local_rank=rank, backend="gloo")
    dist.barrier()
    result = run_training(config, RunPaths(folder), info)
    return result.steps / result.seconds, result.steps / result.cpu_seconds


def rank_main(rank: int, port: int, folder: str, args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    plain, monitored = [], []
    try:
        warm = min(200, args.steps)
        plain_ddp_loop(rank, warm, args.batch_size, 0.01, args.log_every)
        gradviz_ddp_loop(rank, Path(folder) / "warm", warm, args.batch_size, 0.01, args.log_every)
        for pair in range(args.pairs):
            order = ("plain", "gradviz") if pair % 2 == 0 else ("gradviz", "plain")
            for which in order:
                if which == "plain":
                    plain.append(plain_ddp_loop(rank, args.steps, args.batch_size, 0.01, args.log_every))
                else:
                    monitored.append(gradviz_ddp_loop(rank, Path(folder) / f"run{pair}", args.steps,
                                                      args.batch_size, 0.01, args.log_every))
        if rank == 0:
            report(plain, monitored, args)
    finally:
        dist.destroy_process_group()


def report(plain: list[tuple[float, float]], monitored: list[tuple[float, float]], args: argparse.Namespace) -> None:
    for k, clock in enumerate(("wall", "CPU")):
        p = statistics.median(run[k] for run in plain)
        g = statistics.median(run[k] for run in monitored)
        paired = statistics.median(b[k] / a[k] for a, b in zip(plain, monitored))
        print(f"rank 0, steps per {clock} second, median of {args.pairs}: plain DDP {p:.0f}, gradviz {g:.0f}; "
              f"paired ratio {paired:.3f} (overhead {100 * (1 - paired):+.1f}%)")
        print(f"  runs   plain   {', '.join(f'{run[k]:.0f}' for run in plain)}")
        print(f"  runs   gradviz {', '.join(f'{run[k]:.0f}' for run in monitored)}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps per chunk")
    parser.add_argument("--pairs", type=int, default=6, help="plain/gradviz chunk pairs")
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch (each rank takes half)")
    parser.add_argument("--log-every", type=int, default=DEFAULTS["log_every"], help="as gradviz train's default")
    args = parser.parse_args()
    print(f"deep_mlp, global batch {args.batch_size} over {WORLD} gloo ranks on CPU (1 thread each), adam, "
          f"{args.pairs} pairs of {args.steps}-step chunks, log every {args.log_every}, torch {torch.__version__}")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(rank_main, args=(free_port(), folder, args), nprocs=WORLD, join=True)


if __name__ == "__main__":
    main()
