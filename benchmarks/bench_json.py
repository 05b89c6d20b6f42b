"""`gradviz trace --json` against `gradviz trace` on the same input, interleaved in one run.

The promise: --json costs at most 1.3× the trace. Inputs: the 2M-element expression of
issue 22 (`sum(a + b)`, a 2000×1, b 1×1000: every node value, tangent, adjoint and edge term
is 2,000,000 numbers; written as lists it took 62× the trace), the same with the tensors
written whole to a side file (--arrays), and a 1,001-node scalar expression (many small
entries), and the same with 10×10 tensors (100 elements, written out whole). Each command is run as a fresh process; medians are compared.

    python benchmarks/bench_json.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIG = ["sum(a + b)", "--shape", "a=2000x1", "--shape", "b=1x1000"]
SCALARS = ["--at", "x1=0.3,x2=0.2"]
SQUARES = ["--shape", "x1=10x10", "--shape", "x2=10x10"]  # 100 elements: each written out whole
CHAIN = "\n".join(f"s{i} = tanh({f's{i - 1}' if i else 'x1'} * x1 + x2)" for i in range(333))


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, cwd=ROOT)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.decode()[-300:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    gradviz = [sys.executable, "-m", "gradviz", "trace"]
    with tempfile.TemporaryDirectory() as tmp:
        chain = Path(tmp) / "chain.expr"
        chain.write_text(CHAIN + "\n")
        cases = {
            "2M elements": {"trace": gradviz + BIG, "--json": gradviz + BIG + ["--json"],
                            "--json --arrays": gradviz + BIG + ["--json", "--arrays", str(Path(tmp) / "a.npz")]},
            "1,001 nodes": {"trace": gradviz + [f"@{chain}"] + SCALARS, "--json": gradviz + [f"@{chain}", "--json"] + SCALARS},
            "1,001 × 10×10": {"trace": gradviz + [f"@{chain}"] + SQUARES,
                              "--json": gradviz + [f"@{chain}", "--json"] + SQUARES},
        }
        print(f"{'input':14} {'command':16} {'median s':>9} {'× trace':>8}")
        for case, commands in cases.items():
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.repeat):
                for name, cmd in commands.items():
                    times[name].append(wall(cmd))
            base = statistics.median(times["trace"])
            for name, samples in times.items():
                median = statistics.median(samples)
                print(f"{case:14} {name:16} {median:9.3f} {median / base:8.2f}")


if __name__ == "__main__":
    main()
