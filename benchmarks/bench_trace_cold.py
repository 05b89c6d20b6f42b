"""Cold `gradviz trace` on the lecture's example against `python -c pass`, in one run.

The machines are noisy, so both are run interleaved and the medians compared.
Target: the whole command under 0.5 s (torch's import alone takes over 1.3 s, which is
why the expression path must not import it).

    python benchmarks/bench_trace_cold.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "gradviz trace lecture": [sys.executable, "-m", "gradviz", "trace", f"@{ROOT / 'samples/lecture.expr'}"],
    "gradviz trace --json": [sys.executable, "-m", "gradviz", "trace", f"@{ROOT / 'samples/lecture.expr'}", "--json"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
}


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):
        for name, cmd in COMMANDS.items():
            times[name].append(wall(cmd))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':28} {'median s':>9} {'× python -c pass':>17}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:28} {median:9.3f} {median / base:17.1f}")
    trace = statistics.median(times["gradviz trace lecture"])
    print(f"\ngradviz trace: {trace:.3f} s ({'under' if trace < 0.5 else 'OVER'} the 0.5 s target)")


if __name__ == "__main__":
    main()
