"""The run-directory format: append-only logs, torn lines, control commands, config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gradviz.errors import SpecError, TrainingError
from gradviz.train.config import DEFAULTS, TrainConfig, read_config, resolve, validate, write_config
from gradviz.rundir.control import write_control
from gradviz.rundir.jsonl import JsonlTailer, JsonlWriter, read_jsonl
from gradviz.rundir.paths import RunPaths


def test_writer_appends_whole_lines_and_reader_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    writer = JsonlWriter(path)
    for step in range(3):
        writer.write({"step": step, "loss": float("nan") if step == 2 else 0.5})
    writer.close()
    with open(path, "a") as handle:
        handle.write('{"step": 3, "lo')  # a writer killed mid-line
    rows = read_jsonl(path)
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert rows[2]["loss"] != rows[2]["loss"]  # NaN survives the round trip


def test_tailer_returns_a_line_only_once_it_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    tailer = JsonlTailer(path)
    assert tailer.read_new() == [] and tailer.at_end()
    path.write_text('{"a": 1}\n{"a": ')
    assert tailer.read_new() == [{"a": 1}]
    with open(path, "a") as handle:
        handle.write('2}\nnot json\n{"a": 3}\n')
    assert tailer.read_new() == [{"a": 2}, {"a": 3}]
    assert tailer.skipped == 1 and tailer.at_end()


def test_tailer_reads_a_bounded_amount_per_call(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(1000)))
    tailer = JsonlTailer(path, max_bytes=1000)
    first = tailer.read_new()
    assert 0 < len(first) < 1000
    seen = list(first)
    while not tailer.at_end():
        seen += tailer.read_new()
    assert [r["i"] for r in seen] == list(range(1000))


def test_control_commands_are_numbered(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    write_control(paths, "pause")
    write_control(paths, "resume")
    assert json.loads(paths.control.read_text())["seq"] == 2
    with pytest.raises(ValueError):
        write_control(paths, "explode")


def test_resolve_prefers_flags_then_spec_then_defaults() -> None:
    config = TrainConfig(spec="s.py", run_dir="r", lr=0.5)
    resolved = resolve(config, {"lr": 0.1, "epochs": 7})
    assert (resolved.lr, resolved.epochs, resolved.batch_size) == (0.5, 7, DEFAULTS["batch_size"])
    assert resolve(resolved, {"lr": 0.1, "epochs": 99}) == resolved  # idempotent: every rank may resolve
    with pytest.raises(SpecError, match="unknown key.*'learning_rate'"):
        resolve(config, {"learning_rate": 0.1})


@pytest.mark.parametrize("settings, message", [
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"lr": -1.0}, "--lr must be a positive number"),
    ({"batch_size": 0}, "--batch-size must be a positive integer"),
    ({"accum": 8, "batch_size": 4}, "--accum 8 splits a batch of 4"),
    ({"dropout": 1.0}, r"--dropout must lie in \[0, 1\)"),
    ({"val_fraction": 1.0}, r"--val-fraction must lie in \[0, 1\)"),
    ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
    ({"l2": -0.1}, "--l2 must be zero or positive"),
])
def test_validation_names_the_bad_flag(settings: dict, message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        validate(TrainConfig(spec="s.py", run_dir="r", **settings))


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    config = TrainConfig(spec="s.py", run_dir=str(tmp_path), lr=0.3, accum=2, stop_on_nan=True)
    write_config(config, tmp_path / "config.json")
    assert read_config(tmp_path / "config.json") == config


def test_monitor_side_imports_neither_torch_nor_textual() -> None:
    code = ("import sys, gradviz.rundir.status, gradviz.rundir.control, gradviz.rundir.jsonl, gradviz.step_stats,"
            " gradviz.train.launch, gradviz.monitor.state, gradviz.monitor.plain;"
            "print(sorted(m for m in ('torch', 'textual') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
