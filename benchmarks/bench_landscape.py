"""The landscape grid vmapped in chunks against one point at a time, in one run.

For each sample (the lecture network, the deep MLP), a 25×25 grid along two
filter-normalised random directions around the spec's freshly built parameters (the
cost does not depend on which parameters), the loss averaged over up to 1024 examples:

- per point: for each grid point copy θ* + α·d1 + β·d2 into the model's parameters, run
  the model on all the data in one forward, read the loss.
- per point, loader: the same, but the data in batches of 128 with the batch losses
  averaged, as the reference implementation (Li et al.'s loss-landscape code, whose
  default batch size is 128) loops over a data loader.
- batched: torch.func.functional_call under torch.vmap over chunks of grid points,
  chunked to the memory budget (gradviz landscape's way).

The two are timed in alternating rounds; each is reported by its fastest round (other
processes only ever add time) and the ratio of the fastest rounds. Both grids are checked
equal first.

    PYTHONPATH=. python benchmarks/bench_landscape.py [--grid 25] [--rounds 3] [--threads N] [--device cpu|cuda]

Target: batched ≥ 10× faster than per point on both samples at 25×25.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from gradviz.landscape.directions import filter_normalised
from gradviz.landscape.grid import batched_grid, chunk_size, pointwise_grid
from gradviz.landscape.load import load_subject

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--memory-mb", type=int, default=256)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"grid {args.grid}×{args.grid}, budget {args.memory_mb} MiB")
    for name in ("two_layer_mlp", "deep_mlp"):
        subject = load_subject(str(SAMPLES / f"{name}.py"), max_points=1024, device=args.device)
        gen = torch.Generator().manual_seed(0)
        d1, d2 = filter_normalised(subject.centre, gen), filter_normalised(subject.centre, gen)
        axis = np.linspace(-1, 1, args.grid)
        budget = args.memory_mb << 20
        a = batched_grid(subject, d1, d2, axis, axis, budget)  # warm-up, and the equality check
        b = pointwise_grid(subject, d1, d2, axis, axis)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        c = pointwise_grid(subject, d1, d2, axis, axis, data_batch=128)
        np.testing.assert_allclose(c, b, rtol=1e-4, atol=1e-6)
        best = {"per point": float("inf"), "per point, loader": float("inf"), "batched": float("inf")}
        for _ in range(args.rounds):
            for label, fn in (("per point", lambda: pointwise_grid(subject, d1, d2, axis, axis)),
                              ("per point, loader", lambda: pointwise_grid(subject, d1, d2, axis, axis, data_batch=128)),
                              ("batched", lambda: batched_grid(subject, d1, d2, axis, axis, budget))):
                sync(args.device)
                start = time.perf_counter()
                fn()
                sync(args.device)
                best[label] = min(best[label], time.perf_counter() - start)
        params = sum(p.numel() for p in subject.centre.values())
        print(f"{name}: {params} parameters, {len(subject.x)} examples, chunk {chunk_size(subject, budget)} points; "
              f"batched {best['batched']:.3f} s; per point {best['per point']:.3f} s "
              f"({best['per point'] / best['batched']:.1f}×), per point with a loader of 128 "
              f"{best['per point, loader']:.3f} s ({best['per point, loader'] / best['batched']:.1f}×)")


if __name__ == "__main__":
    main()
