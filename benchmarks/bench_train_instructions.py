"""Instructions per training step, gradviz's Trainer against a plain PyTorch loop, counted by valgrind.

A wall-clock ratio on a shared machine moves by several percent from run to run; the number of
instructions a step executes does not (the same seeds give the same data, the same kernels and
the same Python). Each loop runs in a fresh process under `valgrind --tool=callgrind` twice,
for --short and --long steps; the difference of the two totals over the difference of the
step counts is the cost of one step, with start-up, imports and set-up cancelled out. The
loops are bench_train_overhead.py's (deep_mlp, batch 64, Adam, one thread; gradviz with
everything on at the defaults: norms, masks, histograms, the NaN watch, the heartbeat).
Instructions are not time (a line of Python between two kernels costs more than its
instructions say), so read this beside bench_train_overhead.py, not instead of it. And
under valgrind a step takes about fifty times as long, so what the Trainer does on a clock
(the control-file poll every 0.2 s, mask samples every 0.25 s, the memory reading every
second) would come about fifty times as often per step as in a normal run. --clock-scale
(default 50, about valgrind's slowdown here) stretches those three intervals by that factor
in the counted processes, so the clock-driven work comes as often per step as it does
without valgrind; --clock-scale 1 counts it at valgrind's pace (an upper bound).

    PYTHONPATH=. python benchmarks/bench_train_instructions.py [--short 200] [--long 700]

Needs valgrind (`apt-get install valgrind`); the four runs take a few minutes each.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(which: str, steps: int, log_every: int, clock_scale: float) -> None:
    """Run one loop for `steps` steps (the process valgrind counts)."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_train_overhead as bench

    from gradviz.train import control, loop, recorder

    # The Trainer's clock-driven work at the pace per step it has without valgrind.
    control.POLL_SECONDS *= clock_scale
    loop.MASK_SECONDS *= clock_scale
    recorder.RSS_SECONDS *= clock_scale

    torch.set_num_threads(1)
    device = torch.device("cpu")
    if which == "plain":
        bench.plain_loop(device, steps, 64, 0.01, log_every)
    else:
        bench.gradviz_loop(device, steps, 64, 0.01, log_every)


def count(which: str, steps: int, log_every: int, clock_scale: float, folder: Path) -> int:
    """Instructions executed by a whole process running `which` for `steps` steps."""
    out = folder / f"{which}-{steps}.out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                           __file__, "--child", which, str(steps), str(log_every), str(clock_scale)],
                          capture_output=True, text=True, env=env, timeout=3600)
    match = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"valgrind run of {which} for {steps} steps failed:\n{done.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=200)
    parser.add_argument("--long", type=int, default=700)
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--clock-scale", type=float, default=50.0,
                        help="stretch the Trainer's poll, mask-sample and memory intervals by this (valgrind's slowdown)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        which, steps, log_every, clock_scale = args.child
        child(which, int(steps), int(log_every), float(clock_scale))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("bench_train_instructions: valgrind is not installed (apt-get install valgrind)")
    runs = [(which, steps) for which in ("plain", "gradviz") for steps in (args.short, args.long)]
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(max_workers=2) as pool:
        totals = dict(zip(runs, pool.map(lambda run: count(*run, args.log_every, args.clock_scale, Path(folder)), runs)))
    span = args.long - args.short
    per_step = {which: (totals[(which, args.long)] - totals[(which, args.short)]) / span for which in ("plain", "gradviz")}
    print(f"deep_mlp, batch 64, adam, one thread, log every {args.log_every}, clock intervals x{args.clock_scale:g}; "
          "instructions per step "
          f"(runs of {args.short} and {args.long} steps, difference over {span}):")
    print(f"  plain loop {per_step['plain']:,.0f}, gradviz {per_step['gradviz']:,.0f}: "
          f"ratio {per_step['gradviz'] / per_step['plain']:.4f} "
          f"(overhead {100 * (per_step['gradviz'] / per_step['plain'] - 1):+.2f}%)")


if __name__ == "__main__":
    main()
