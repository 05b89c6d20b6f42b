"""Throughput of `gradviz train` (monitoring on) against a plain PyTorch loop, same run.

Both train samples/deep_mlp.py with the same batch size, optimizer and device: the plain
loop does forward, loss, backward, step, and reads its loss every --log-every steps (as a
loop that prints it would); gradviz does the same through
its Trainer with everything on (fused gradient norms, dropout masks, gradient histograms
and the NaN watch's snapshot every --log-every steps, the metrics log, epoch-end
validation, control polling). It also prints what the histograms and the snapshot alone
add per logged step, as a share of a step's CPU time. Runs are
run back to back in pairs, many times; the figure to read is the median of the pairs'
ratios (steadier on a busy machine than a ratio of medians), not the absolute numbers.

    PYTHONPATH=. python benchmarks/bench_train_overhead.py [--device cuda] [--steps 3000]
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

from gradviz.sources.spec import load_spec  # noqa: E402
from gradviz.train.config import DEFAULTS, TrainConfig  # noqa: E402
from gradviz.train.data import pick_device  # noqa: E402
from gradviz.rundir.paths import RunPaths  # noqa: E402
from gradviz.train.worker import DistInfo, run_training  # noqa: E402

SPEC = ROOT / "samples" / "deep_mlp.py"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(device: torch.device, steps: int, batch_size: int, lr: float,
               log_every: int = DEFAULTS["log_every"]) -> tuple[float, float]:
    """(steps per wall second, per CPU second) of the textbook loop: same model, data, optimizer,
    reading its loss (`loss.item()`, a host sync on a GPU) every log_every steps, as a loop that prints it.

    It draws the batches the Trainer draws (seed 0: the same shuffle of the data, the same permutation
    each epoch) and the same initial weights, so both loops do the same arithmetic on the same numbers:
    kernels whose cost depends on the values (dead units, denormals in Adam's state) cost the same."""
    spec = load_spec(SPEC)
    x, y = spec.make_data(0)
    shuffle = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))  # split_data, nothing held out
    x, y = x[shuffle].to(device), y[shuffle].to(device)
    torch.manual_seed(0)
    model = spec.build_model().to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(x)
    done, epoch = 0, 0
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    while done < steps:
        epoch += 1
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).to(device)  # the Trainer's epochs
        for batch in order.split(batch_size)[: n // batch_size + (n % batch_size > 0)]:
            loss = spec.loss(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            if done % log_every == 0:
                loss.item()
            if done == steps:
                break
    synchronize(device)
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu_start)


def gradviz_loop(device: torch.device, steps: int, batch_size: int, lr: float, log_every: int) -> tuple[float, float]:
    """(steps per wall second, per CPU second) of gradviz's Trainer, as `gradviz train` runs it."""
    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(spec=str(SPEC), run_dir=folder, device=str(device), epochs=10_000, max_steps=steps,
                             batch_size=batch_size, lr=lr, optimizer="adam", log_every=log_every, val_fraction=0.0)
        result = run_training(config, RunPaths(Path(folder)), DistInfo())
    # The loop's own time: set-up and the final flush and checkpoint are excluded.
    return result.steps / result.seconds, result.steps / result.cpu_seconds


def added_per_logged_step(device: torch.device, batch_size: int, log_every: int, repeats: int = 200) -> None:
    """What the NaN watch's snapshot and the gradient histograms add per logged step, as a share
    of a plain step's time (CPU seconds, medians of interleaved samples: steady on a busy machine)."""
    from types import SimpleNamespace

    from gradviz.train.histograms import DEFAULT_EVERY, GradHistograms
    from gradviz.train.nan_origin import SNAPSHOT_EVERY, NanWatch
    from gradviz.train.stats import group_parameters

    spec = load_spec(SPEC)
    torch.manual_seed(0)
    x, y = spec.make_data(0)
    x, y = x[:batch_size].to(device), y[:batch_size].to(device)
    model = spec.build_model().to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    groups = group_parameters(model)
    hist = GradHistograms(groups.layer_of, len(groups.names), device)
    watch = NanWatch(SimpleNamespace(groups=groups, optimizer=optimizer, device=device))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        spec.loss(model(x), y).backward()
        optimizer.step()

    def timed(fn) -> float:
        start = time.process_time()
        fn()
        synchronize(device)
        return time.process_time() - start

    def snapshot(next_step: int) -> None:
        watch.windows = 0  # a window that takes its snapshot (one in SNAPSHOT_EVERY does)
        watch.begin_window(next_step)

    for _ in range(20):
        step()
    steps, hists, snaps = [], [], []
    for k in range(repeats):  # interleaved, ten steps per sample: the process clock ticks coarsely
        steps.append(timed(lambda: [step() for _ in range(10)]) / 10)
        hists.append(timed(lambda: [hist.counts(groups.params) for _ in range(10)]) / 10)
        snaps.append(timed(lambda: [snapshot(k + 2) for _ in range(10)]) / 10)
    s, h, n = (statistics.median(v) for v in (steps, hists, snaps))
    every = max(log_every, DEFAULT_EVERY)  # histograms on logged steps that are multiples of 100
    windows = SNAPSHOT_EVERY * log_every
    print(f"gradient histograms {h * 1e3:.3f} ms every {every} steps, NaN-watch snapshot {n * 1e3:.3f} ms every "
          f"{windows}, against a step of {s * 1e3:.3f} ms: {100 * h / (s * every):.2f}% + "
          f"{100 * n / (s * windows):.2f}% of training time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--log-every", type=int, default=DEFAULTS["log_every"], help="as gradviz train's default")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (1: steadier on a small shared machine; 0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"deep_mlp, batch {args.batch_size}, adam, {args.steps} steps x {args.repeats}, "
          f"log every {args.log_every}, on {device} ({name}), {torch.get_num_threads()} CPU thread(s), "
          f"torch {torch.__version__}")
    plain_loop(device, min(300, args.steps), args.batch_size, 0.01)  # warm-up: allocator, kernels, imports
    gradviz_loop(device, min(300, args.steps), args.batch_size, 0.01, args.log_every)
    added_per_logged_step(device, args.batch_size, args.log_every)
    plain, monitored = [], []
    for repeat in range(args.repeats):
        # Back to back, alternating which goes first, so drifts in machine load hit both alike.
        order = ("plain", "gradviz") if repeat % 2 == 0 else ("gradviz", "plain")
        for which in order:
            if which == "plain":
                plain.append(plain_loop(device, args.steps, args.batch_size, 0.01, args.log_every))
            else:
                monitored.append(gradviz_loop(device, args.steps, args.batch_size, 0.01, args.log_every))
    for k, clock in enumerate(("wall", "CPU")):
        p = statistics.median(run[k] for run in plain)
        g = statistics.median(run[k] for run in monitored)
        # The median of each back-to-back pair's ratio: the steadiest figure on a busy machine.
        paired = statistics.median(b[k] / a[k] for a, b in zip(plain, monitored))
        print(f"steps per {clock} second, median of {args.repeats}: plain {p:.0f}, gradviz {g:.0f}; "
              f"paired ratio {paired:.3f} (overhead {100 * (1 - paired):+.1f}%)")
        print(f"  runs   plain   {', '.join(f'{run[k]:.0f}' for run in plain)}")
        print(f"  runs   gradviz {', '.join(f'{run[k]:.0f}' for run in monitored)}")

if __name__ == "__main__":
    main()
