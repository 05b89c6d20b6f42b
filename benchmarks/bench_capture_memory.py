"""Capture memory against a plain forward+backward: how much a model trace holds above the
model itself, at module and aten level, full and summaries-only.

Each measurement runs in its own fresh process. The spec is loaded, its model built and
its batch drawn first; then the process's peak resident memory (ru_maxrss) grows by what
the measured step allocates at its worst moment:

- plain: `torch.manual_seed(seed); loss(model(x), y).backward()` (saved activations,
  the backward's transients and the parameters' .grad);
- capture: `trace_model(...)` at the level (values, adjoints, edge terms, and the
  autograd graph while the backward runs), with `--keep` full or summaries.

By default each child first runs its step once on one row of the batch, so the imports,
kernels' code pages and caches the first run loads (about 40 MB at module level and 100 MB
at aten level, the same for any model size) are not counted; `--cold` counts them.

To make resident memory follow what is allocated, children run with glibc's
MALLOC_MMAP_THRESHOLD_ at 64 KiB (every tensor bigger than that is its own mapping,
handed back when freed) and call malloc_trim(0) before the measured step; the step's
peak is ru_maxrss after it less the resident size before it. A capture row also lists
what the finished trace holds, by category, counted exactly as the bytes of distinct
tensor storages (shared storage counted once, under the first category that holds it).

    python benchmarks/bench_capture_memory.py [--spec samples/big/gpt2_shaped.py]
        [--gpt2 6,256,4,128] [--batch-size 8] [--levels module,aten] [--keep full,summaries]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 2**20


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: the figures are rougher
        pass


def held_by_category(trace) -> dict[str, float]:
    """MB of distinct storages the trace holds, per category (first category wins a shared one)."""
    import numpy as np
    import torch

    seen: set[int] = set()

    def size(obj) -> int:
        if obj is None:
            return 0
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            key, n = storage.data_ptr(), storage.nbytes()
        elif isinstance(obj, np.ndarray):
            base = obj
            while isinstance(base.base, np.ndarray):
                base = base.base
            key, n = base.__array_interface__["data"][0], base.nbytes
        else:
            return 0
        if key in seen or n == 0:
            return 0
        seen.add(key)
        return n

    out: dict[str, float] = {}
    kinds = [n.kind for n in trace.graph.nodes]

    def raw(seq, i):
        items = getattr(seq, "_items", None)
        return items[i] if items is not None else seq[i]

    values = trace.values
    out["params+inputs"] = sum(size(raw(values, i)) for i, k in enumerate(kinds) if k != "op") / MB
    out["values"] = sum(size(raw(values, i)) for i, k in enumerate(kinds) if k == "op") / MB
    adjoints = trace.adjoints.get("loss")
    if adjoints is not None and not hasattr(adjoints, "summaries_only"):
        out["adjoints"] = sum(size(raw(adjoints, i)) for i in range(len(adjoints))) / MB
        terms = trace.contributions["loss"]
        raw_terms = getattr(terms, "_terms", None) or {}
        out["edge terms"] = sum(size(t) for t in raw_terms.values() if not isinstance(t, int)) / MB
    out["aux"] = sum(size(d.get("mask")) for d in trace.aux.values()) / MB
    return out


def child(args: argparse.Namespace) -> dict:
    if args.gpt2:
        os.environ["GRADVIZ_GPT2"] = args.gpt2
    import torch

    from gradviz.sources.model import prepare_spec, trace_model

    spec, model, x, y, info = prepare_spec(args.spec, args.batch_size, 0, None, True)
    params_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / MB
    row: dict = {"params_mb": params_mb}
    kwargs = {"keep": args.keep} if args.keep != "full" else {}
    if args.warm:  # the same step on one row first: imports, kernels' code pages, caches
        import gc

        if args.child == "plain":
            spec.loss(model(x[:1]), y[:1]).backward()
            model.zero_grad(set_to_none=True)
        else:
            trace_model(model, spec.loss, x[:1], y[:1], level=args.level, seed=0, info=dict(info), **kwargs)
        gc.collect()
    trim()
    before = rss_mb()
    row["peak_before_mb"] = peak_mb() - before  # how far an earlier peak sits above now (it hides growth below it)
    if args.child == "plain":
        torch.manual_seed(0)
        spec.loss(model(x), y).backward()
        row["peak_mb"] = peak_mb() - before
        return row
    trace = trace_model(model, spec.loss, x, y, level=args.level, seed=0, info=info, **kwargs)
    row["peak_mb"] = peak_mb() - before
    trim()
    row["held_rss_mb"] = rss_mb() - before
    row["held"] = held_by_category(trace)
    row["nodes"] = len(trace.graph.nodes)
    return row


def run_child(args: argparse.Namespace, kind: str, level: str = "", keep: str = "full") -> dict:
    command = [sys.executable, __file__, "--child", kind, "--spec", args.spec, "--batch-size", str(args.batch_size),
               "--level", level or "module", "--keep", keep, "--gpt2", args.gpt2] + ([] if args.warm else ["--cold"])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()
        raise SystemExit(f"{kind} {level} {keep} failed: {tail[-1] if tail else '?'}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--spec", default="samples/big/gpt2_shaped.py")
    parser.add_argument("--gpt2", default="6,256,4,128", help="GRADVIZ_GPT2 for the GPT-2-shaped spec ('' = its default)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--levels", default="module,aten")
    parser.add_argument("--keep", default="full,summaries", help="comma-separated: full, summaries")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--level", default="module", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    parser.add_argument("--cold", dest="warm", action="store_false",
                        help="no warm-up step on one row first (then imports and code pages count too)")
    args = parser.parse_args()
    if args.child:
        if args.child == "capture" and "," in args.keep:
            args.keep = args.keep.split(",")[0]
        print(json.dumps(child(args)))
        return
    plain = run_child(args, "plain")
    print(f"{args.spec} GRADVIZ_GPT2={args.gpt2 or '(default)'} batch {args.batch_size}: parameters "
          f"{plain['params_mb']:.0f} MB; plain forward+backward peak {plain['peak_mb']:.0f} MB "
          f"(ru_maxrss in a fresh process, 64 KiB mmap threshold, {'after a warm-up on one row' if args.warm else 'cold'})")
    print(f"{'level':<8}{'keep':<11}{'nodes':>6}{'peak MB':>9}{'× plain':>9}{'held MB':>9}  held by category (MB)")
    rows = []
    for level in args.levels.split(","):
        for keep in args.keep.split(","):
            r = run_child(args, "capture", level, keep)
            r.update(level=level, keep=keep, plain_mb=plain["peak_mb"])
            rows.append(r)
            held = ", ".join(f"{k} {v:.0f}" for k, v in r["held"].items())
            print(f"{level:<8}{keep:<11}{r['nodes']:>6}{r['peak_mb']:>9.0f}{r['peak_mb'] / plain['peak_mb']:>9.2f}"
                  f"{r['held_rss_mb']:>9.0f}  {held}")
    if args.json:
        print(json.dumps({"plain": plain, "rows": rows}))


if __name__ == "__main__":
    main()
