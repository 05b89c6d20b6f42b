"""`gradviz monitor RUN_DIR…`: the dashboard on a running or finished run (replay), or several side by side."""

from __future__ import annotations

import argparse
import stat
import sys
from pathlib import Path

from gradviz.errors import TrainingError
from gradviz.files.read import check_regular
from gradviz.rundir.files import read_json
from gradviz.rundir.paths import RunPaths
from gradviz.rundir.status import ACTIVE_STATES, DONE_STATES
from gradviz.streams import terminal_problem

MAX_STATUS_BYTES = 1024 * 1024


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `gradviz monitor` and its options."""
    p = subparsers.add_parser(
        "monitor", help="watch a training run directory, live or replayed",
        description="Open the training dashboard on a run directory written by `gradviz train`: it follows a "
                    "running trainer and replays a finished (or killed) run with a step scrubber.")
    p.add_argument("run_dir", type=Path, nargs="+",
                   help="a run directory (runs/<name>); several, or a folder of runs, to compare them side by side")
    p.add_argument("--no-tui", action="store_true", help="print the run's table instead of the dashboard")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Open the dashboard (or print the table) for a run directory, or compare several; the exit code."""
    from gradviz.monitor.compare import find_runs

    paths: list[Path] = args.run_dir
    runs = find_runs(paths)
    for run_dir in runs:
        check_status(RunPaths(run_dir))
    problem = None if args.no_tui else terminal_problem()
    if len(runs) > 1 or (len(paths) == 1 and runs != paths):
        return compare(runs, args.no_tui, problem)
    run_dir = runs[0]
    if not args.no_tui and problem is None:
        from gradviz.commands.train import EXIT_INTERRUPTED
        from gradviz.monitor.app import run_dashboard

        _, interrupted = run_dashboard(run_dir, None)
        if interrupted:  # Ctrl-C leaves a watched run training; the status says how we left, as --no-tui's
            return EXIT_INTERRUPTED
    else:  # not a terminal: the printed table, never the full-screen app
        if problem:
            print(f"gradviz: {problem}: printing the run as --no-tui does", file=sys.stderr)
        from gradviz.monitor.plain import follow
        from gradviz.monitor.state import RunView

        view = RunView(run_dir)
        if follow(view) == "failed":
            print(f"the run failed: {view.status.get('message', 'no message')}")
    return 0


def compare(runs: list[Path], no_tui: bool, problem: str | None = None) -> int:
    """Several runs side by side: the compare app, or the settings table and each run's ending."""
    if not no_tui and problem is None:
        from gradviz.monitor.compare_app import CompareApp

        CompareApp(runs).run()
        return 0
    if problem:
        print(f"gradviz: {problem}: printing the runs as --no-tui does", file=sys.stderr)
    from rich.console import Console

    from gradviz.streams import printed_stdout
    from gradviz.views.whole_columns import WholeColumns

    from gradviz.monitor.compare import differing_settings, run_labels
    from gradviz.monitor.plain import fmt, summary_line
    from gradviz.monitor.state import RunView
    from rich.table import Table

    views = [RunView(path) for path in runs]
    for view in views:
        while view.poll():
            pass
    labels = run_labels(views)
    table = Table(title="settings that differ", title_justify="left")
    table.add_column("setting")
    for label in labels:
        table.add_column(label, justify="right")
    for key, values in differing_settings(views):
        table.add_row(key, *(fmt(v) for v in values))
    table.add_row("last logged loss", *(fmt(v.records[-1]["loss"]) if v.records else "—" for v in views))
    console = Console(file=printed_stdout())
    console.print(WholeColumns(table))  # at 40 columns: the settings' names beside each run's values
    for view in views:
        console.print(summary_line(view))
    return 0


def check_status(paths: RunPaths) -> None:
    """A run directory has a status.json naming a known state (train writes it first)."""
    try:
        info = paths.status.stat()
    except OSError:
        raise TrainingError(f"{paths.root}: not a run directory (no status.json)") from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_STATUS_BYTES:
        raise TrainingError(f"{paths.status}: not a run status (not a small regular file)")
    for name in ("config", "meta", "metrics", "masks", "histograms"):  # a FIFO among them would block the reader
        if getattr(paths, name).exists():
            check_regular(getattr(paths, name), "run file")
    status = read_json(paths.status)
    if status is None:
        raise TrainingError(f"{paths.status}: not a run status (not a JSON object)")
    if status.get("state") not in (*ACTIVE_STATES, *DONE_STATES):
        raise TrainingError(f"{paths.status}: not a run status (state {status.get('state')!r})")
