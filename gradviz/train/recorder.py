"""Writes what the trainer learns into the run directory (on rank 0 only)."""

from __future__ import annotations

import math
import os
import platform
import socket
import time
from typing import Any

import torch

from gradviz.rundir.files import write_json_atomic
from gradviz.rundir.jsonl import JsonlWriter
from gradviz.rundir.paths import RunPaths
from gradviz.rundir.status import write_status
from gradviz.train.stats import Layout, unpack


class RunRecorder:
    """Appends metrics and mask records, keeps status.json, notes the first non-finite step."""

    def __init__(self, paths: RunPaths, layer_names: list[str], dropout_p: dict[str, float], enabled: bool):
        self.paths = paths
        self.layer_names = layer_names
        self.dropout_p = dropout_p
        self.enabled = enabled
        self.first_nonfinite: dict[str, Any] | None = None
        self._metrics = JsonlWriter(paths.metrics) if enabled else None
        self._masks = JsonlWriter(paths.masks) if enabled else None

    def status(self, state: str, **fields: Any) -> None:
        """Replace status.json (a no-op on other ranks)."""
        if self.enabled:
            write_status(self.paths, state, **fields)

    def meta(self, meta: dict[str, Any]) -> None:
        """Write meta.json once the model and data are known."""
        if self.enabled:
            write_json_atomic(self.paths.meta, meta)

    def record(self, values: list[float], layout: Layout, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write one metrics line (and one masks line) from a captured vector's host copy."""
        unpacked = unpack(values, layout, self.layer_names)
        samples = unpacked.pop("mask_samples")
        record: dict[str, Any] = dict(layout.info)
        record.update(unpacked)
        record["total"] = record["loss"] + record["penalty"]
        record.update(extra or {})
        bad_layer = next((n for n, v in record["grad_norm"].items() if not math.isfinite(v)), None)
        if bad_layer is not None or not math.isfinite(record["total"]):
            record["nonfinite"] = {"layer": bad_layer}
            if self.first_nonfinite is None:
                self.first_nonfinite = {"step": record["step"], "layer": bad_layer}
                self.status("running", nan=self.first_nonfinite)
        if not self.enabled:
            return record
        self._metrics.write(record)
        if samples:
            layers = {
                name: {**sample, "p": self.dropout_p.get(name), "keep_rate": record["keep_rate"].get(name)}
                for name, sample in samples.items()
            }
            self._masks.write({"step": record["step"], "epoch": record["epoch"], "layers": layers})
        return record

    def close(self) -> None:
        """Close the log files."""
        for writer in (self._metrics, self._masks):
            if writer is not None:
                writer.close()


RSS_SECONDS = 1.0  # /proc is read at most this often
_rss_cache = (0.0, None)  # (time read, bytes)


def memory_in_use(device: torch.device) -> int | None:
    """Bytes in use: CUDA memory allocated by torch, or this process's resident memory."""
    global _rss_cache
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))  # allocator bookkeeping: no sync
    now = time.monotonic()
    if now - _rss_cache[0] < RSS_SECONDS:
        return _rss_cache[1]
    try:
        with open("/proc/self/statm") as handle:
            rss = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        rss = None
    _rss_cache = (now, rss)
    return rss


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model from /proc/cpuinfo where there is one."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def describe_host() -> dict[str, Any]:
    """Facts for meta.json and status.json: this process and machine."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
