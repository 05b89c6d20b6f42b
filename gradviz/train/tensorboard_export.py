"""`gradviz export RUN_DIR --tensorboard DIR`: a run's scalars, histograms and text as
TensorBoard event files, so a team opens a gradviz run in the tool it already has.

Needs the optional ``tensorboard`` package (``pip install gradviz[tensorboard]``; the
README's set-up installs it). Histograms keep gradviz's fixed log-spaced bins: each
bucket's limit is its right edge; min, max, sum and sum of squares are estimated from
the bin centres (the counts are exact).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from gradviz.errors import ExportError
from gradviz.rundir.files import read_json
from gradviz.rundir.jsonl import JsonlTailer
from gradviz.rundir.paths import RunPaths


def export_tensorboard(run_dir: Path, out_dir: Path) -> int:
    """Write the run's events into out_dir; the number of logged steps written."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ExportError("--tensorboard needs the tensorboard package: pip install 'tensorboard==2.21.0'") from None
    paths = RunPaths(Path(run_dir))
    records, bad = _typed(paths.metrics, _metrics_ok)
    histograms, bad_histograms = _typed(paths.histograms, _histogram_ok)
    _say_skipped(paths.metrics.name, bad)
    _say_skipped(paths.histograms.name, bad_histograms)
    if not records:
        raise ExportError(f"{run_dir}: the run has no logged steps to export")
    meta = read_json(paths.meta) or {}
    start = float(meta.get("started") or 0.0)
    writer = SummaryWriter(log_dir=str(_event_folder(out_dir)))
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
        for h in histograms:
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



def _event_folder(out_dir: Path) -> Path:
    """--tensorboard DIR as a folder that exists and can be written (made here if missing)."""
    from gradviz.files.write import output_path

    folder = output_path(out_dir, "--tensorboard")
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"--tensorboard {out_dir}: it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"--tensorboard {out_dir}: cannot create the folder: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"--tensorboard {out_dir}: the folder cannot be written")
    return folder


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metrics_ok(r: dict[str, Any]) -> bool:
    """A metrics record of the types the trainer writes: an integer step, numbers where numbers go."""
    norms = r.get("grad_norm") or {}
    return (isinstance(r.get("step"), int) and not isinstance(r.get("step"), bool)
            and _number(r.get("time", 0.0)) and isinstance(norms, dict) and all(_number(v) for v in norms.values()))


def _histogram_ok(h: dict[str, Any]) -> bool:
    """A histograms record: an integer step, numeric edges, one list of counts per layer, one per bin."""
    edges, layers = h.get("edges"), h.get("layers")
    if not (isinstance(h.get("step"), int) and isinstance(edges, list) and len(edges) >= 2
            and all(_number(e) for e in edges) and isinstance(layers, dict)):
        return False
    return all(isinstance(c, list) and len(c) == len(edges) - 1 and all(_number(k) and k >= 0 for k in c)
               for c in layers.values())


def _typed(path: Path, ok: Callable[[dict[str, Any]], bool]) -> tuple[list[dict[str, Any]], int]:
    """The file's records of the expected types, and how many lines were left out (torn,
    not JSON, not an object, or of the wrong types)."""
    tailer = JsonlTailer(path, max_bytes=None)
    records = tailer.read_new()
    kept = [r for r in records if ok(r)]
    return kept, tailer.skipped + len(records) - len(kept)


def _say_skipped(name: str, count: int) -> None:
    if count:
        print(f"gradviz: note: skipped {count} record{'s' * (count != 1)} of {name} that are not records "
              "of the types gradviz writes", file=sys.stderr)
