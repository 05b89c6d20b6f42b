"""A synthetic run directory for the monitor tests: deterministic, written without torch."""

from __future__ import annotations

import json
import math
from pathlib import Path

from gradviz.rundir.files import write_json_atomic
from gradviz.rundir.jsonl import JsonlWriter
from gradviz.rundir.paths import RunPaths

LAYERS = ["fc1", "fc2", "out"]


def make_run(root: Path, steps: int = 60, state: str = "finished", nonfinite_at: int | None = None,
             per_epoch: int = 10) -> RunPaths:
    """Write a run of `steps` logged steps (every step logged) that looks like the trainer's."""
    paths = RunPaths(Path(root))
    paths.root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(paths.config, {"spec": "demo.py", "run_dir": str(root), "epochs": steps // per_epoch})
    write_json_atomic(paths.meta, {
        "spec": "demo", "layers": [{"name": n, "parameters": 10} for n in LAYERS],
        "dropout": [{"name": "drop", "p": 0.25}], "n_train": 320, "n_val": 80, "steps_per_epoch": per_epoch,
        "total_steps": steps, "epochs": steps // per_epoch, "batch_size": 32, "device": "cpu",
        "device_name": "Test CPU", "world_size": 1,
    })
    write_json_atomic(paths.status, {"state": state, "step": steps})
    metrics, masks = JsonlWriter(paths.metrics), JsonlWriter(paths.masks)
    for step in range(1, steps + 1):
        bad = nonfinite_at is not None and step >= nonfinite_at
        loss = math.nan if bad else 0.7 * math.exp(-step / 20) + 0.05
        grad = {n: (math.nan if bad and n == "fc2" else 0.5 * (k + 1) * math.exp(-step / 30)) for k, n in enumerate(LAYERS)}
        record = {"step": step, "epoch": (step - 1) // per_epoch + 1, "time": step * 0.2, "samples": 32 * step,
                  "lr": 0.1, "samples_per_s": 3200.0, "mem": 100 * 2**20, "loss": loss, "penalty": 0.0, "total": loss,
                  "grad_norm": grad, "grad_norm_total": math.sqrt(sum(v * v for v in grad.values())),
                  "param_norm": {n: 1.0 for n in LAYERS}, "keep_rate": {"drop": 0.75}}
        if bad:
            record["nonfinite"] = {"layer": "fc2"}
        if step % per_epoch == 0:
            record.update({"epoch_end": True, "val_loss": loss * 1.1, "val_acc": min(0.99, 0.5 + step / 100)})
        metrics.write(record)
        kept = "".join("0" if (i * 7 + step) % 4 == 0 else "1" for i in range(16))
        masks.write({"step": step, "epoch": record["epoch"],
                     "layers": {"drop": {"p": 0.25, "shape": [16], "kept": kept, "keep_rate": 0.75}}})
    metrics.close()
    masks.close()
    if nonfinite_at is not None:
        write_json_atomic(paths.status, {"state": state, "step": steps, "nan": {"step": nonfinite_at, "layer": "fc2"}})
    return paths


def dump(obj: object) -> str:
    return json.dumps(obj)[:300]
