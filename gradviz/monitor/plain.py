"""The monitor without a TUI: a rich progress bar and a table row per epoch.

For CI logs, SSH sessions and notebooks (``gradviz train --no-tui``), and for
``gradviz monitor --no-tui`` on a finished run, which prints the whole table.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable

from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from gradviz.monitor.state import RunView
from gradviz.penalty import penalty_formula
from gradviz.rundir.status import read_rank_check, read_val_nonfinite
from gradviz.step_stats import STEP_STATS
from gradviz.streams import printed_stdout

# The step's statistics that STEP_STATS gives a column, between the record's place (epoch, step)
# and the epoch's validation and throughput.
STAT_COLUMNS = tuple(stat for stat in STEP_STATS if stat.column and not stat.per_layer)
COLUMNS = ("epoch", "step", *(stat.column for stat in STAT_COLUMNS), "val loss", "val acc", "samples/s")
WIDTHS = (6, 8, *(10 for _ in STAT_COLUMNS), 10, 8, 10)
BLANK_WHEN_ZERO = {"penalty"}  # 0 without --l2: no penalty at all, shown as "—"
# Rows are spaced in training time (the records' own clock), so a live run and a replay
# print the same table: an epoch end at most every ROW_SECONDS, any record after QUIET_SECONDS.
ROW_SECONDS = 1.0
QUIET_SECONDS = 10.0


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table cell: compact, '—' when missing, 'nan' kept visible."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    return str(value)


def row_table(cells: list[str] | None) -> Table:
    """One line of the epoch table; the header when cells is None (columns stay aligned)."""
    table = Table(box=None, show_header=cells is None, pad_edge=False, header_style="bold")
    for name, width in zip(COLUMNS, WIDTHS):
        table.add_column(name, justify="right", width=width, no_wrap=True)
    if cells is not None:
        table.add_row(*cells)
    return table


def record_cells(record: dict[str, Any]) -> list[str]:
    """The table cells of one metrics record."""
    stats = ["—" if stat.name in BLANK_WHEN_ZERO and not record.get(stat.name) else fmt(record.get(stat.name))
             for stat in STAT_COLUMNS]
    return [
        fmt(record.get("epoch")),
        fmt(record.get("step")),
        *stats,
        fmt(record.get("val_loss")),
        f"{record['val_acc']:.1%}" if isinstance(record.get("val_acc"), float) else "—",
        f"{record.get('samples_per_s', 0):,.0f}",
    ]


def layer_table(view: RunView) -> Table:
    """Latest per-layer gradient and parameter norms, and dropout keep rates."""
    table = Table(title="layers at the last logged step", title_justify="left")
    for name in ("layer", "|∇| (gradient norm)", "|θ| (parameter norm)"):
        table.add_column(name, justify="right" if name != "layer" else "left")
    last = view.records[-1]
    for layer in view.layers:
        table.add_row(layer, fmt(last["grad_norm"].get(layer)), fmt(last.get("param_norm", {}).get(layer)))
    for layer, rate in last.get("keep_rate", {}).items():
        p = next((d["p"] for d in view.meta.get("dropout", []) if d["name"] == layer), None)
        drop = "—" if rate is None or not isinstance(rate, float) or math.isnan(rate) else f"{1 - rate:.1%}"
        table.add_row(f"{layer} (dropout)", f"dropped {drop}", f"p = {fmt(p)}")
    return table


def follow(view: RunView, console: Console | None = None, interval: float = 0.25,
           on_interrupt: Callable[[], None] | None = None) -> str:
    """Print a run's progress until it ends; returns its final state.

    A Ctrl-C calls on_interrupt (which asks the trainer to stop cleanly) and keeps
    following, so the user sees the trainer's last records and its checkpoint saved.
    """
    console = console or Console(file=printed_stdout())  # piped: no trailing spaces, as trace
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
               TimeRemainingColumn(), TextColumn("{task.fields[loss]}")]
    printed_header = False
    last_row: float | None = None  # training time of the last printed row
    printed: dict[str, Any] | None = None  # the last printed record
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("starting", total=None, loss="")
        seen = 0
        while True:
            try:
                view.poll()
                new = view.records[seen:]
                seen = len(view.records)
                done = view.done
                for record in new:
                    since = record.get("time", 0.0) - (last_row or 0.0)
                    final = record is view.records[-1] and done
                    epoch_row = record.get("epoch_end") and (last_row is None or since >= ROW_SECONDS)
                    if epoch_row or since >= QUIET_SECONDS or final:
                        printed_header = print_row(progress.console, record, printed_header)
                        last_row, printed = record.get("time", 0.0), record
                if done and view.records and printed is not view.records[-1]:
                    # the last record was read before the trainer said it had ended: it still shows
                    printed_header = print_row(progress.console, view.records[-1], printed_header)
                if view.records:
                    last = view.records[-1]
                    progress.update(task, total=view.total_steps, completed=view.step_reached() or last["step"],
                                    description=f"epoch {last['epoch']}/{view.meta.get('epochs', '?')}",
                                    loss=f"loss {fmt(last.get('loss'))}")
                if done:
                    break
                if view.caught_up:  # else there is more to read now: a long log replays at full speed
                    time.sleep(interval)
            except KeyboardInterrupt:
                if on_interrupt is None:
                    raise
                progress.console.print("[yellow]interrupted: the trainer stops after this step and saves a checkpoint…[/]")
                on_interrupt()
                on_interrupt = None  # a second Ctrl-C leaves at once
    if view.records:
        console.print(layer_table(view))
        if view.accumulation():
            console.print(f"[dim]update: {view.accumulation()}[/]")
        if view.log_every and view.log_every > 1:
            console.print(f"[dim]loss: the mean over each logging window of {view.log_every} steps (--log-every)[/]")
        extra = view.records[-1].get("extra") or {}
        if extra:  # gradviz.watch's own metrics (run.log(acc=...))
            console.print("metrics at the last logged step: " + ", ".join(f"{k} {fmt(v)}" for k, v in extra.items()))
    console.print(summary_line(view))
    for note in view.skipped_notes():  # never a record dropped without a word
        print(f"gradviz: note: {note}", file=sys.stderr)
    return view.state


def print_row(console: Console, record: dict[str, Any], printed_header: bool) -> bool:
    """Print one record's row, under the header the first time; returns that the header is out.

    Where the row does not fit (piped at 40 columns rich cut its cells to `0.5…`), the record
    is printed as `name value` pairs, each whole, as many to a line as fit."""
    cells = record_cells(record)
    natural = sum(max(cell_len(name), cell_len(cell)) for name, cell in zip(COLUMNS, cells)) + 2 * (len(COLUMNS) - 1)
    if natural > console.width:
        pairs = [f"{name} {cell}" for name, cell in zip(COLUMNS, cells)]
        for line in pair_lines(pairs, console.width):
            console.print(Text(line), soft_wrap=True)
        return printed_header
    if not printed_header:
        console.print(row_table(None))
    console.print(row_table(cells))
    return True


def pair_lines(pairs: list[str], width: int) -> list[str]:
    """`pairs` two spaces apart, as many to a line as fit in `width` (one too long has a line of its own)."""
    lines: list[str] = []
    for pair in pairs:
        if lines and cell_len(lines[-1]) + 2 + cell_len(pair) <= width:
            lines[-1] += "  " + pair
        else:
            lines.append(pair)
    return lines


def summary_line(view: RunView) -> str:
    """One closing line: how the run ended and where its files are."""
    state = view.state
    nan = view.first_nonfinite()
    parts = [f"run {view.ending()}"]
    if nan and nan.get("message"):  # traced to its origin by the trainer
        parts.append(f"[red]{nan['message']}[/] (gradviz step {view.paths.root} opens it)")
    elif nan:
        parts.append(f"[red]non-finite values first logged at step {nan['step']}"
                     + (f" (layer {nan['layer']})" if nan.get("layer") else "") + "[/]")
    val = read_val_nonfinite(view.status)
    if val:
        parts.append(f"[red]{val['message']}[/]")
    check = read_rank_check(view.status)
    if check:
        parts.append(f"[red]{check}[/]")
    if state == "lost":
        parts.append("[red]the trainer process is gone (killed?)[/]")
    formula = penalty_formula(view.meta.get("l2"), view.meta.get("l2_form"))
    if formula:
        parts.append(f"objective J + {formula}")
    parts.append(f"run directory: {view.paths.root}")
    return "; ".join(parts)
