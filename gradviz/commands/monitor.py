"""`gradviz monitor RUN_DIR`: the dashboard on a running or finished run (replay)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gradviz.errors import TrainingError
from gradviz.rundir import is_run_dir


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `gradviz monitor` and its options."""
    p = subparsers.add_parser(
        "monitor", help="watch a training run directory, live or replayed",
        description="Open the training dashboard on a run directory written by `gradviz train`: it follows a "
                    "running trainer and replays a finished (or killed) run with a step scrubber.")
    p.add_argument("run_dir", type=Path, help="a run directory (runs/<name>)")
    p.add_argument("--no-tui", action="store_true", help="print the run's table instead of the dashboard")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Open the dashboard (or print the table) for a run directory; the exit code."""
    run_dir: Path = args.run_dir
    if not run_dir.is_dir():
        raise TrainingError(f"{run_dir}: no such run directory")
    if not is_run_dir(run_dir):
        raise TrainingError(f"{run_dir}: not a run directory (no config.json or metrics.jsonl)")
    if not args.no_tui and sys.stdout.isatty():
        from gradviz.monitor.app import run_dashboard

        run_dashboard(run_dir, None)
    else:
        from gradviz.monitor.plain import follow
        from gradviz.monitor.state import RunView

        follow(RunView(run_dir))
    return 0
