"""Trace time against a plain forward + backward on the same model and batch, in one run.

For each sample: the plain `loss(model(x), y).backward()`, a capture of values and
adjoints (one forward, one backward), a capture with per-edge contributions too (aliases
for values with several uses), and the latter with every value, adjoint and contribution
then read as a numpy array (the Trace converts tensors when first read). The three are timed in interleaved rounds,
order rotated each round. Each is reported by its fastest round (other processes only
ever add time) and its median: these machines are noisy, and only ratios measured side
by side mean anything. Setup (fx or make_fx tracing, building the
program, and the first capture, which builds the graph) is reported on its own.

    PYTHONPATH=. python benchmarks/bench_model_trace.py [--batch-size N] [--rounds R] [--level aten]

Targets (MLP, transformer block): values + adjoints ≤ 1.3×, with contributions ≤ 2.5×,
setup < 0.5 s. For comparison, torchlens's full capture measured on this machine: 5× on a
24-layer MLP, 3.8× on a transformer stack, 163× on the lecture's tiny network.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from gradviz.sources.model import build_program, pick_batch
from gradviz.sources.model.capture import capture
from gradviz.sources.spec import load_spec
from gradviz.sources.script import is_spec_file

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def interleaved(candidates: dict[str, Callable[[], object]], rounds: int,
                inner: int) -> dict[str, tuple[float, float]]:
    """(fastest, median) seconds per call of each candidate, timed in rotating order."""
    names = list(candidates)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up: allocator, lazy inits, graph caches
        for _ in range(3):
            candidates[name]()
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            for _ in range(inner):
                candidates[name]()
            times[name].append((time.perf_counter() - start) / inner)
    return {name: (min(values), statistics.median(values)) for name, values in times.items()}


def bench_sample(path: Path, batch_size: int | None, level: str, rounds: int) -> dict[str, object]:
    spec = load_spec(path)
    size = batch_size or int(spec.training.get("batch_size", 32))
    x, y = pick_batch(*spec.make_data(0), size, 0)
    torch.manual_seed(0)
    model = spec.build_model().train()
    params = list(model.parameters())

    def plain() -> None:
        for p in params:
            p.grad = None
        spec.loss(model(x), y).backward()

    xr = x.detach().requires_grad_(x.is_floating_point())
    setups = []
    for _ in range(3):  # fastest of three: the first pays for lazy imports inside torch
        start = time.perf_counter()
        program = build_program(model, spec.loss, x, y, level)
        capture(program, xr, y, split_edges=True)  # builds and caches the graph
        setups.append(time.perf_counter() - start)
    inner = max(1, int(0.02 / max(1e-5, _once(plain))))

    def read_all() -> None:
        """A capture whose every value, adjoint and contribution is then read as numpy."""
        trace = capture(program, xr, y, split_edges=True)
        for sequence in (trace.values, trace.adjoints["loss"]):
            for _ in sequence:
                pass
        for _ in trace.contributions["loss"].values():
            pass

    timings = interleaved({
        "plain": plain,
        "values+adjoints": lambda: capture(program, xr, y, split_edges=False),
        "+contributions": lambda: capture(program, xr, y, split_edges=True),
        "+numpy": read_all,
    }, rounds, inner)
    return {"batch": size, "setup": min(setups), **timings}


def _once(fn: Callable[[], object]) -> float:
    fn()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, help="default: each sample's TRAINING batch_size")
    parser.add_argument("--level", choices=("module", "aten"), default="module")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("samples", nargs="*", help="sample names (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.samples or sorted(p.stem for p in SAMPLES.glob("*.py") if is_spec_file(p))
    print(f"level {args.level}, {torch.get_num_threads()} thread(s), {args.rounds} interleaved rounds; "
          "fastest round (median in brackets)")
    print(f"{'sample':18s} {'batch':>5s} {'plain fwd+bwd':>14s} {'values+adjoints':>22s} "
          f"{'+contributions':>22s} {'+all read as numpy':>22s} {'setup':>7s}")
    for name in names:
        r = bench_sample(SAMPLES / f"{name}.py", args.batch_size, args.level, args.rounds)
        (plain, plain_median) = r["plain"]
        cells = []
        for key in ("values+adjoints", "+contributions", "+numpy"):
            best, median = r[key]
            cells.append(f"{best * 1e3:7.3f}ms {best / plain:4.2f}x ({median / plain_median:4.2f}x)")
        print(f"{name:18s} {r['batch']:5d} {plain * 1e3:7.3f}ms      {cells[0]:>22s} {cells[1]:>22s} "
              f"{cells[2]:>22s} {r['setup']:6.3f}s")

if __name__ == "__main__":
    main()
