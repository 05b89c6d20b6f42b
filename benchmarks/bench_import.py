"""`import gradviz` against a bare interpreter, in the same run: the cost the API adds at start-up.

Runs `python -c pass` and `python -c "import gradviz"` alternately, many times, and
prints the median of each and of their paired differences. The API is lazy (PEP 562):
torch, textual, graphviz, rich and numpy load only when gradviz.trace/watch are used.

    python benchmarks/bench_import.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    bare, api, diffs = [], [], []
    for _ in range(args.runs):
        b, a = timed("pass"), timed("import gradviz")
        bare.append(b)
        api.append(a)
        diffs.append(a - b)
    print(f"python -c pass: median {statistics.median(bare) * 1000:.1f} ms; import gradviz: median "
          f"{statistics.median(api) * 1000:.1f} ms; paired difference median {statistics.median(diffs) * 1000:.1f} ms "
          f"({args.runs} runs each)")


if __name__ == "__main__":
    main()
