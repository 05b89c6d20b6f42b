"""Exact steps: status.json, the summaries and the dashboard report the step reached, the
checkpoint's step and the failure's step — not the last logged one."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from rich.console import Console

from gradviz.monitor.plain import follow
from gradviz.monitor.state import RunView
from train_support import LINEAR_SPEC, records, run_worker, status, train_here, write_spec

# The loss interrupts its own process (as Ctrl-C would) at step 37, or raises at step 10
# (the spec check calls loss once before training: call n is step n - 1).
COUNTING = LINEAR_SPEC.replace("def loss(output, target):\n", """_calls = [0]

def loss(output, target):
    _calls[0] += 1
    if _calls[0] == ACT_AT:
        ACT()
""") + "\nimport os, signal\n"


def test_a_stopped_run_reports_the_step_reached_and_the_checkpoints_step(tmp_path: Path) -> None:
    body = COUNTING + "ACT_AT = 38\ndef ACT():\n    os.kill(os.getpid(), signal.SIGINT)\n"
    spec = write_spec(tmp_path, body)
    result = train_here(tmp_path / "run", spec, log_every=25, epochs=20, val_fraction=0.0)
    assert result.state == "stopped" and result.steps == 37
    state = status(tmp_path / "run")
    assert state["step"] == state["checkpoint_step"] == 37
    assert torch.load(tmp_path / "run" / "final.pt", weights_only=False)["step"] == 37
    logged = records(tmp_path / "run")[-1]["step"]
    assert logged == 37 or logged == 25  # the last logged step may trail the stop
    out = io.StringIO()
    follow(RunView(tmp_path / "run"), Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "run stopped at step 37" in text and "checkpoint final.pt at step 37" in text
    assert "mean over each logging window of 25 steps" in text


def test_a_failure_reports_the_step_it_happened_at(tmp_path: Path) -> None:
    body = COUNTING + "ACT_AT = 11\ndef ACT():\n    raise ValueError('boom')\n"
    spec = write_spec(tmp_path, body)
    assert run_worker(tmp_path / "run", spec, log_every=25, epochs=5, val_fraction=0.0) == 1
    state = status(tmp_path / "run")
    assert state["state"] == "failed" and state["failed_at_step"] == 10
    assert records(tmp_path / "run")[-1]["step"] == 1
    view = RunView(tmp_path / "run")
    view.poll()
    assert view.ending().startswith("failed at step 10 (last logged step 1)")


def test_ending_text_of_a_synthetic_run(tmp_path: Path) -> None:
    from gradviz.rundir.jsonl import JsonlWriter
    from gradviz.rundir.paths import RunPaths
    from gradviz.rundir.status import write_status

    paths = RunPaths(tmp_path)
    writer = JsonlWriter(paths.metrics)
    for step in (1, 25, 325):
        writer.write({"step": step, "epoch": 1, "loss": 1.0, "grad_norm": {}})
    writer.close()
    write_status(paths, "stopped", step=343, checkpoint_step=343)
    view = RunView(tmp_path)
    view.poll()
    assert view.ending() == "stopped at step 343 (last logged step 325); checkpoint final.pt at step 343"


def test_the_update_formula_carries_the_penalty_when_l2_is_on(tmp_path: Path) -> None:
    """With L2 on the update steps on ∇(L_B + λ·Σ‖θ‖₂), not ∇L_B alone (the slide's J_R)."""
    spec = write_spec(tmp_path, LINEAR_SPEC)
    train_here(tmp_path / "norm", spec, batch_size=16, accum=1, lr=0.05, l2=0.001, l2_form="norm", max_steps=2,
               val_fraction=0.0)
    view = RunView(tmp_path / "norm")
    view.poll()
    assert view.accumulation() == ("B = 16, K = 1, B_P = 16 (no accumulation): "
                                   "θ ← θ − η·∇(L_B + λ·Σ‖θ‖₂), η = 0.05, λ = 0.001")
    train_here(tmp_path / "sq", spec, batch_size=16, accum=4, lr=0.05, l2=0.01, max_steps=2, val_fraction=0.0)
    view = RunView(tmp_path / "sq")
    view.poll()
    assert view.accumulation() == ("B = 16, K = 4, B_P = 4: θ ← θ − η·(1/4·Σ∇L_B_P + ∇λ·Σ‖θ‖²), "
                                   "η = 0.05, λ = 0.01")


def test_accumulation_is_stated_with_the_runs_numbers(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, LINEAR_SPEC)
    train_here(tmp_path / "run", spec, batch_size=16, accum=4, lr=0.05, max_steps=3, val_fraction=0.0)
    view = RunView(tmp_path / "run")
    view.poll()
    assert view.accumulation() == "B = 16, K = 4, B_P = 4: θ ← θ − η/4·Σ∇L_B_P = θ − 0.05/4·Σ∇L_B_P"
    out = io.StringIO()
    follow(view, Console(file=out, width=200, color_system=None))
    assert "update: B = 16, K = 4, B_P = 4" in out.getvalue()
    train_here(tmp_path / "adam", spec, batch_size=16, accum=1, lr=0.01, optimizer="adam", max_steps=2)
    view = RunView(tmp_path / "adam")
    view.poll()
    assert view.accumulation() == "B = 16, K = 1, B_P = 16 (no accumulation): one gradient ∇L_B per update"
