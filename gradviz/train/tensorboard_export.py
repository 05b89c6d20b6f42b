"""`gradviz export RUN_DIR --tensorboard DIR`: a run's scalars, histograms and text as
TensorBoard event files, so a team opens a gradviz run in the tool it already has.

Needs the optional ``tensorboard`` package (``pip install gradviz[tensorboard]``; the
README's set-up installs it). Histograms keep gradviz's fixed log-spaced bins: each
bucket's limit is its right edge; min, max, sum and sum of squares are estimated from
the bin centres (the counts are exact).
"""

from __future__ import annotations

import json
from pathlib import Path

from gradviz.errors import ExportError
from gradviz.rundir import RunPaths, read_json, read_jsonl


def export_tensorboard(run_dir: Path, out_dir: Path) -> int:
    """Write the run's events into out_dir; the number of logged steps written."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ExportError("--tensorboard needs the tensorboard package: pip install 'tensorboard==2.21.0'") from None
    paths = RunPaths(Path(run_dir))
    records = read_jsonl(paths.metrics)
    if not records:
        raise ExportError(f"{run_dir}: the run has no logged steps to export")
    meta = read_json(paths.meta) or {}
    start = float(meta.get("started") or 0.0)
    writer = SummaryWriter(log_dir=str(out_dir))
    try:
        for r in records:
            step, wall = int(r["step"]), start + float(r.get("time", 0.0))
            for key in ("loss", "penalty", "total", "val_loss", "val_acc", "grad_norm_total", "lr"):
                if isinstance(r.get(key), (int, float)):
                    writer.add_scalar(f"train/{key}", r[key], step, walltime=wall)
            for layer, value in (r.get("grad_norm") or {}).items():
                writer.add_scalar(f"grad_norm/{layer}", value, step, walltime=wall)
            # dropout keep rates per layer, and gradviz.watch's own metrics (run.log(acc=...))
            for group in ("keep_rate", "extra"):
                for name, value in (r.get(group) or {}).items():
                    if isinstance(value, (int, float)):
                        writer.add_scalar(f"{group}/{name}", value, step, walltime=wall)
        for h in read_jsonl(paths.histograms):
            edges = h["edges"]
            centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
            for layer, counts in h["layers"].items():
                n = sum(counts)
                if n == 0:
                    continue
                used = [c for c, k in zip(centres, counts) if k]
                writer.add_histogram_raw(
                    f"grad_values/{layer}", min=min(used), max=max(used), num=n,
                    sum=sum(c * k for c, k in zip(centres, counts)),
                    sum_squares=sum(c * c * k for c, k in zip(centres, counts)),
                    bucket_limits=edges[1:], bucket_counts=counts, global_step=int(h["step"]))
        config = read_json(paths.config) or {}
        writer.add_text("gradviz/config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)
        status = read_json(paths.status) or {}
        nan = status.get("nan") or {}
        if nan.get("message"):
            writer.add_text("gradviz/nan", nan["message"], int(nan.get("step", 0)))
    finally:
        writer.close()
    return len(records)

