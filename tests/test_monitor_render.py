"""The dashboard's drawings as plain text: plots, heatmap, mask grid, the plain printer."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from rich.console import Console

from gradviz.monitor.heat import render_heatmap, render_mask
from gradviz.monitor.plain import follow
from gradviz.monitor.plot import BrailleCanvas, Line, render_plot, sample_indices
from gradviz.monitor.state import RunView
from monitor_support import make_run


def plain(texts) -> list[str]:
    return [t.plain for t in texts]


def test_braille_canvas_sets_the_right_dots() -> None:
    canvas = BrailleCanvas(2, 1)
    canvas.dot(0, 0, "red")  # top-left dot of the first cell
    canvas.dot(3, 3, "red")  # bottom-right dot of the second cell
    assert plain(canvas.rows()) == [chr(0x2801) + chr(0x2880)]


def test_line_plot_has_labels_and_a_falling_curve() -> None:
    xs = list(range(100))
    rows = plain(render_plot([Line("loss", xs, [1 / (1 + x) for x in xs], "cyan")], width=30, height=6))
    assert len(rows) == 6
    assert [r[:9] for r in rows[:5]] == ["       1┤", "        ┤", "   0.505┤", "        ┤", "    0.01┤"]
    assert rows[-1].split() == ["0", "99"]
    assert rows[0][9] != chr(0x2800)  # the curve starts at the top left …
    assert rows[4][-1] != chr(0x2800)  # … and ends at the bottom right


def test_plot_skips_non_finite_values_and_handles_log_scale() -> None:
    rows = plain(render_plot([Line("l", [1, 2, 3], [1.0, math.nan, 100.0], "red")], 20, 5, log=True))
    assert rows[0].strip().startswith("100") and rows[3].strip().startswith("1┤")
    assert plain(render_plot([Line("l", [1], [math.nan], "red")], 20, 3))[0] == "waiting for data…"


def test_sampling_is_bounded_by_the_width() -> None:
    assert sample_indices(5, 10) == [0, 1, 2, 3, 4]
    picked = sample_indices(1_000_000, 100)
    assert len(picked) == 100 and picked[0] == 0 and picked[-1] == 999_999


def test_heatmap_marks_non_finite_norms_and_the_selected_layer() -> None:
    columns = {"a": [1.0, 10.0, 100.0], "b": [0.1, math.nan, 1.0]}
    rows = render_heatmap(["a", "b"], columns, upto=2, width=40, height=2, selected=1, fmt=lambda v: f"{v:g}")
    text = plain(rows)
    assert text == ["a ███      100", "b █×█        1"]
    assert "reverse" in str(rows[1].style) and "reverse" not in str(rows[0].style)
    assert [str(span.style) for span in rows[1].spans[:2]] == ["#440154", "bold red"]  # lowest norm: darkest


def test_mask_grid_shows_kept_and_dropped_units_against_p() -> None:
    layer = {"p": 0.5, "shape": [8], "kept": "10110010", "keep_rate": 0.5}
    rows = plain(render_mask("drop", layer, width=60, max_rows=3))
    assert rows == ["drop p=0.50 dropped 50.0% · here 4/8", "█·██··█·"]
    # Narrow: a short title that fits whole, never a cut one.
    rows = plain(render_mask("drop", layer, width=20, max_rows=3))
    assert rows == ["drop p=0.50 50% off", "█·██··█·"]


def test_attention_masks_wrap_per_query_row() -> None:
    layer = {"p": 0.1, "shape": [2, 3, 3], "kept": "111101111110111011", "keep_rate": 0.9}
    rows = plain(render_mask("attn", layer, width=20, max_rows=10))
    assert rows[1:] == ["███", "█·█", "███", "██·", "███", "·██"]


def test_plain_follow_prints_a_row_per_epoch_and_the_layer_table(tmp_path: Path) -> None:
    make_run(tmp_path / "run", steps=30)
    out = io.StringIO()
    state = follow(RunView(tmp_path / "run"), Console(file=out, width=100, color_system=None))
    text = out.getvalue()
    assert state == "finished"
    rows = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert [r[:2] for r in rows] == [["1", "10"], ["2", "20"], ["3", "30"]]
    assert "fc2" in text and "drop (dropout)" in text and "dropped 25.0%" in text
    assert "run finished at step 30" in text


def test_plain_follow_reports_the_first_non_finite_step(tmp_path: Path) -> None:
    make_run(tmp_path / "run", steps=20, nonfinite_at=12)
    out = io.StringIO()
    follow(RunView(tmp_path / "run"), Console(file=out, width=120, color_system=None))
    assert "non-finite values first logged at step 12 (layer fc2)" in out.getvalue()


def test_plain_rows_are_spaced_in_training_time(tmp_path: Path) -> None:
    paths = make_run(tmp_path / "run", steps=200, per_epoch=2)  # an epoch every 0.4 s of training
    out = io.StringIO()
    follow(RunView(paths.root), Console(file=out, width=100, color_system=None))
    steps = [int(line.split()[1]) for line in out.getvalue().splitlines() if line.strip()[:1].isdigit()]
    assert steps == list(range(2, 201, 6))  # epoch ends at least 1 s of training apart, and the last


def test_the_window_mean_is_said_on_the_step_axis_where_it_fits() -> None:
    from rich.text import Text

    from gradviz.monitor.widgets import _axis_note

    notes = ("train: mean of each 25-step window", "mean/25 steps")
    axis = Text("         1" + " " * 30 + "120")
    assert _axis_note(axis, notes).plain == "         1" + " " * 8 + "mean/25 steps" + " " * 9 + "120"
    wide = Text("         1" + " " * 60 + "120")
    assert "train: mean of each 25-step window" in _axis_note(wide, notes).plain
    narrow = Text("         1" + " " * 8 + "120")
    assert _axis_note(narrow, notes).plain == narrow.plain  # no room: the axis as it was


def test_a_mask_taller_than_its_rows_keeps_its_first_rows_and_says_so() -> None:
    layer = {"p": 0.5, "shape": [64], "kept": "10" * 32, "keep_rate": 0.5}
    rows = plain(render_mask("drop", layer, width=60, max_rows=1))
    assert rows == ["drop p=0.50 dropped 50.0% · here 32/64 (first 32 of 64)", "█·" * 16]


def test_distribution_rows_put_positive_values_on_top_and_colour_by_count() -> None:
    from gradviz.monitor.heat import render_distribution

    edges = [-10.0, -1.0, 0.0, 1.0, 10.0]  # four bins: [-10,-1) [-1,0) [0,1) [1,10]
    frames = [[0, 0, 0, 5], [3, 0, 0, 0]]  # step A: all large positive; step B: all large negative
    rows = plain(render_distribution(frames, edges, upto=1, width=11, height=4))
    assert [r[9:] for r in rows] == ["█ ", "  ", "  ", " █"]  # top row: the largest positive bin
    assert rows[0].strip().startswith("1") and rows[-1].strip().startswith("-1")
    merged = plain(render_distribution(frames, edges, upto=1, width=11, height=2))
    assert [r[9:] for r in merged] == ["█ ", " █"]  # two bins per row when the panel is short


def test_plain_follow_prints_the_last_record_when_the_end_is_read_after_it(tmp_path: Path) -> None:
    """The trainer writes its last record, then says it finished: a poll between the two reads
    the record while the run still runs (no row: too soon after the last), and the next poll
    reads only the end. The last row must still show (it was lost in one CI run)."""
    from gradviz.rundir.files import write_json_atomic

    paths = make_run(tmp_path / "run", steps=25, state="running")

    class EndsAfterItsLastRecord(RunView):
        polls = 0

        def poll(self) -> bool:
            EndsAfterItsLastRecord.polls += 1
            if EndsAfterItsLastRecord.polls == 2:
                write_json_atomic(paths.status, {"state": "finished", "step": 25})
            return super().poll()

    view = EndsAfterItsLastRecord(paths.root)
    view._process_alive = lambda: True  # a live trainer without a pid file
    out = io.StringIO()
    state = follow(view, Console(file=out, width=100, color_system=None), interval=0.01)
    rows = [line.split()[:2] for line in out.getvalue().splitlines() if line.strip()[:1].isdigit()]
    assert state == "finished" and rows[-1] == ["3", "25"], rows


def test_plain_rows_keep_every_number_whole_at_40_columns(tmp_path: Path) -> None:
    """`train --no-tui` piped at COLUMNS=40 cut its fixed-width row to `0.5…`, `8…`, `24,8…`:
    where the row does not fit, each record is printed as whole `name value` pairs."""
    from gradviz.monitor.plain import COLUMNS, record_cells

    make_run(tmp_path / "run", steps=30)
    view = RunView(tmp_path / "run")
    out = io.StringIO()
    follow(view, Console(file=out, width=40, color_system=None))
    lines = out.getvalue().splitlines()
    rows = lines[:next(i for i, line in enumerate(lines) if line.startswith("epoch 3/3") or "━" in line)]
    assert rows and all(len(line) <= 40 and "…" not in line for line in rows), rows
    text = "\n".join(rows)
    for record in view.records:
        if record.get("epoch_end"):
            for name, cell in zip(COLUMNS, record_cells(record)):
                assert f"{name} {cell}" in text, (name, cell, text)


def test_piped_plain_monitor_keeps_no_trailing_spaces(tmp_path: Path) -> None:
    """`gradviz monitor RUN | cat` padded the layer table's title to the table's width and kept
    the space where the summary wrapped before the run directory, as trace no longer does."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    make_run(tmp_path / "a-run-directory-with-a-long-enough-name-to-wrap", steps=30)
    out = subprocess.run([sys.executable, "-m", "gradviz", "monitor", str(tmp_path / "a-run-directory-with-a-long-enough-name-to-wrap")],
                         cwd=root, env={**os.environ, "COLUMNS": "80", "PYTHONPATH": str(root)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "layers at the last logged step" in out.stdout and "run finished at step 30" in out.stdout
    assert [line for line in out.stdout.splitlines() if line != line.rstrip()] == [], out.stdout


@pytest.mark.parametrize("field, value, said", [
    ("ranks_agree", False, "the ranks ended with different parameters"),
    ("shards_cover", False, "the ranks' shards do not hold every parameter exactly once"),
    ("ranks_agree", True, None),
    ("shards_cover", True, None),
])
def test_a_failed_check_across_ranks_is_said_at_the_end_and_on_the_dashboard(tmp_path, field, value, said) -> None:
    # status.json's end-of-run check (DDP: replicas equal; FSDP2: shards cover the model) was written and
    # never shown: a run whose ranks diverged ended with nothing said.
    from gradviz.monitor.plain import summary_line
    from gradviz.monitor.state import RunView
    from gradviz.monitor.widgets import ProgressPanel
    from gradviz.rundir.files import read_json
    from gradviz.rundir.paths import RunPaths
    from gradviz.rundir.status import write_status
    from train_support import sample, train_here

    train_here(tmp_path / "run", sample("two_layer_mlp"), epochs=1)
    paths = RunPaths(tmp_path / "run")
    write_status(paths, read_json(paths.status)["state"], **{field: value})
    view = RunView(tmp_path / "run")
    view.poll()
    closing, warning = summary_line(view), ProgressPanel(view)._warning()
    if said is None:
        assert "ranks" not in closing and warning is None
    else:
        assert said in closing and said in warning.plain
