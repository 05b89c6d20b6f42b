"""Every view the stepper, descent and monitor show, at 80×24, 120×40 and 200×60, read by
the screen checker (screencheck.py): no word or number cut, no blank graph pane, the
current node on screen. And the lecture's worked example whole, with its numbers."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from textual.screen import ModalScreen

from gradviz.tui.app import StepperApp
from screencheck import region_text, stepper_defects, text_defects
from tui_support import SAMPLES, lecture_trace, screen_text, wait_for_graph, wait_until

SIZES = [(80, 24), (120, 40), (200, 60)]
SIZE_IDS = [f"{w}x{h}" for w, h in SIZES]


@functools.cache
def model_trace(spec: str, level: str = "module"):
    from gradviz.sources.model import trace_spec

    return trace_spec(str(SAMPLES / spec), batch_size=2, seed=0, level=level, dtype=None)


@functools.cache
def gpt_trace(level: str):
    from tui_support import gpt_shaped_trace

    return gpt_shaped_trace("2,16,2,8", level)


def stepper(trace_of, start: int = 0, keys: tuple[str, ...] = ()):
    """A stepper view: its trace, the step it opens at, the keys pressed once it is drawn."""
    async def make():
        trace = trace_of()
        return StepperApp(trace, source="check", start=start), keys, True
    return make


def descent_twelve_paths():
    async def make():
        from gradviz.cli import build_parser
        from gradviz.commands.descent import build_run
        from gradviz.tui.descent import DescentApp

        rates = ",".join(f"{0.01 * i:.2f}" for i in range(1, 13))
        run = build_run(build_parser().parse_args(["descent", "x**2 + 10*y**2", "--from", "x=2,y=1", "--lr", rates]))
        return DescentApp(run), ("end",), False  # every path's verdict in the legend
    return make


def trained_run(run_dir: Path, *settings: str) -> subprocess.Popen:
    """`gradviz train` of the deep MLP (three dropout layers) for 40 logged steps into run_dir, by the gradviz
    under test (its own folder on PYTHONPATH): the run directory a person opens, as written."""
    import gradviz

    root = Path(gradviz.__file__).resolve().parents[1]
    command = [sys.executable, "-m", "gradviz", "train", str(root / "samples" / "deep_mlp.py"), "--no-tui",
               "--max-steps", "40", "--log-every", "1", "--hist-every", "5", "--run-dir", str(run_dir), *settings]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two real runs that differ in lr, seed, L2 and accumulation (trained side by side), and a copy of the first
    whose status says it still trains (its trainer: this process), for the leave dialog."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("runs")
    # named as `gradviz train` names them (spec-date-time): the dashboard's heading and the
    # comparison's columns carry these names
    a, b = root / "pair" / "deep_mlp-20261207-213000", root / "pair" / "deep_mlp-20261207-214500"
    trainers = {"a": trained_run(a, "--lr", "0.1", "--seed", "0", "--snapshots", "10"),  # for landscape
                "b": trained_run(b, "--lr", "0.03", "--seed", "1", "--l2", "1e-4", "--accum", "2")}
    for name, trainer in trainers.items():
        _, err = trainer.communicate(timeout=300)
        assert trainer.returncode == 0, f"training run {name} failed: {err}"
    live = root / "live"
    shutil.copytree(a, live)
    status = json.loads((live / "status.json").read_text())
    status.update(state="running", pid=os.getpid(), launcher_pid=os.getpid())
    for key in ("pid_start", "launcher_pid_start"):
        status.pop(key, None)
    (live / "status.json").write_text(json.dumps(status))
    return {"a": a, "b": b, "live": live}


def dashboard(run_dir: Path, keys: tuple[str, ...] = ()):
    async def make():
        from gradviz.monitor.app import MonitorApp

        return MonitorApp(run_dir, poll_seconds=0.1), keys, False
    return make


def two_runs(runs: dict[str, Path]):
    async def make():
        from gradviz.monitor.compare_app import CompareApp

        return CompareApp([runs["a"], runs["b"]], poll_seconds=0.1), (), False
    return make


def torch_trace(spec: str, level: str = "module"):
    def trace():
        pytest.importorskip("torch")
        return model_trace(spec, level)
    return trace


def gpt(level: str):
    def trace():
        pytest.importorskip("torch")
        return gpt_trace(level)
    return trace


VIEWS = {
    "lecture-forward": lambda runs: stepper(lecture_trace, 4),
    "lecture-tangent": lambda runs: stepper(lecture_trace, 10),
    "lecture-reverse": lambda runs: stepper(lecture_trace, 28),
    "help": lambda runs: stepper(lecture_trace, 0, ("question_mark",)),
    "two_layer_mlp": lambda runs: stepper(torch_trace("two_layer_mlp.py"), 9),
    "layers": lambda runs: stepper(torch_trace("two_layer_mlp.py"), 10_000, ("b",)),
    "gpt2-module": lambda runs: stepper(gpt("module"), 40),
    "gpt2-aten": lambda runs: stepper(gpt("aten"), 40),
    "resnet18-module": lambda runs: stepper(torch_trace("big/resnet18_shaped.py"), 0),
    "resnet18-aten": lambda runs: stepper(torch_trace("big/resnet18_shaped.py", "aten"), 0),
    "resnet18-aten-fit": lambda runs: stepper(torch_trace("big/resnet18_shaped.py", "aten"), 0, ("f",)),
    "lecture-fit": lambda runs: stepper(lecture_trace, 12, ("f",)),
    "descent": lambda runs: descent_twelve_paths(),
    "dashboard": lambda runs: dashboard(runs["a"]),
    "dashboard-d": lambda runs: dashboard(runs["a"], ("d",)),
    "dashboard-live": lambda runs: dashboard(runs["live"]),
    "leave-dialog": lambda runs: dashboard(runs["live"], ("q",)),
    "dashboard-help": lambda runs: dashboard(runs["live"], ("question_mark",)),
    "monitor-two-runs": lambda runs: two_runs(runs),
}


async def shown(make, size) -> tuple[str, list[str]]:
    """The screen's text once the view is drawn and its keys pressed, and what the checker finds."""
    app, keys, is_stepper = await make()
    async with app.run_test(size=size) as pilot:
        if is_stepper:
            await wait_for_graph(pilot)
        await pilot.pause(0.3)
        for key in keys:
            await pilot.press(key)
        await pilot.pause(0.5)
        if is_stepper:  # a key such as f lays the graph out again, in a worker: read what it ends with
            from gradviz.tui.widgets.graph_pane import GraphPane

            await wait_until(pilot, lambda: not any(pane.loading or pane.fitting for pane in app.screen.query(GraphPane)))
            await pilot.pause(0.3)
        text = screen_text(app)
        if isinstance(app.screen, ModalScreen):  # a dialog: what lies behind its border is not for reading
            text = "\n".join(region_text(text, app.screen.children[0].region))
        found = text_defects(text)
        if is_stepper:  # on the stepper's screen (not its help or layers): its graph pane too
            found += stepper_defects(app, text)
    return text, found


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("view", list(VIEWS))
def test_every_view_reads_whole_at_every_size(view, size, request):
    needs_runs = view.startswith(("dashboard", "leave", "monitor"))
    runs = request.getfixturevalue("runs") if needs_runs else None
    text, found = asyncio.run(shown(VIEWS[view](runs), size))
    assert not found, "\n".join(found) + "\n\n" + text


LECTURE_ADJOINTS = {"x1": "3.4731", "x2": "-3.8853", "v1": "3.4731", "v2": "0.5000", "v3": "0.5000",
                    "v4": "-2.1487", "v5": "2.1487", "f": "1.0000"}
LECTURE_VALUES = {"x1": "0.5000", "x2": "1.0000", "v1": "0.5000", "v2": "1.6487", "v3": "2.1487",
                  "v4": "0", "v5": "0.5000", "f": "1.0744"}


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_the_lectures_eight_nodes_with_their_numbers_are_all_in_the_graph_pane(size):
    """At the end of the reverse pass: every node's value (and, but at 80×24, its adjoint)
    inside the graph pane, without scrolling; at 200×60 the full form, with the current
    node's contribution beside its edge (the stepper writes the current node's only)."""
    from gradviz.tui.widgets.graph_pane import GraphPane

    async def check():
        app = StepperApp(lecture_trace(), source="lecture", start=30)
        async with app.run_test(size=size) as pilot:
            await wait_for_graph(pilot)
            await pilot.pause(0.3)
            pane = app.screen.query_one(GraphPane)
            assert (pane.scroll_x, pane.scroll_y) == (0, 0)
            graph_text = "\n".join(region_text(screen_text(app), pane.content_region))
            return pane.drawing.detail, graph_text

    detail, graph_text = asyncio.run(check())
    trace = lecture_trace()
    for node in trace.graph.nodes:
        assert f"{node.definition}  {LECTURE_VALUES[node.label]}" in graph_text or (
            detail == "full" and node.definition in graph_text and LECTURE_VALUES[node.label] in graph_text), node.label
        if size != (80, 24):
            symbol = node.label[0] + "\u0304" + node.label[1:]  # x̄1: the bar over the letter
            assert f"{symbol} = {LECTURE_ADJOINTS[node.label]}" in graph_text, graph_text
    if size == (200, 60):  # the full form; the current node x1's term written beside its out-edge
        assert detail == "full"
        assert graph_text.count("3.4731") == 3  # x̄1's box, v̄1's box and v̄1·∂v1/∂x1 on the edge


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_g_adjoint_pass_lights_only_the_edge_that_adds_to_x_bar(size):
    """jacobian.expr, g's adjoint pass at x: x feeds v1 = x·y and sin(x) (into f only) and
    exp(x) (into g). The cells the pane paints in the active edge's style are those of the
    one edge whose term the inspector lists (x→exp(x)), none of the others'."""
    from rich.cells import cell_len

    from gradviz.core.explain import adjoint_terms
    from gradviz.core.steps import stepper_steps
    from gradviz.tui.widgets.graph_pane import GraphPane
    from tui_support import expression_trace

    trace = expression_trace("f = x * y + sin(x)\ng = exp(x) / y", "x=0.5,y=2")
    x = next(n.id for n in trace.graph.nodes if n.label == "x")
    k = next(i for i, s in enumerate(stepper_steps(trace), start=1)
             if s.phase == "reverse" and s.pass_key == "g" and s.node == x)
    terms = {(t.child, t.position) for t in adjoint_terms(trace, "g", x) if t.value is not None}

    async def check():
        app = StepperApp(trace, source="jacobian", start=k)
        async with app.run_test(size=size) as pilot:
            await wait_for_graph(pilot)
            await pilot.pause(0.3)
            pane = app.screen.query_one(GraphPane)
            drawing = pane.drawing._drawing  # the TraceDrawing whose grid the pane shows
            active = pane.drawing.style("edge.active")
            sx, sy = int(pane.scroll_x), int(pane.scroll_y)
            lit = set()
            for y in range(pane.scrollable_content_region.height):
                x0 = 0
                for segment in pane.render_line(y):  # x̄'s bar is a combining mark: count cells
                    if segment.style == active:
                        lit.update((sx + x0 + i, sy + y) for i in range(cell_len(segment.text)))
                    x0 += cell_len(segment.text)
            cells = {}
            grid = drawing._grid
            for j, flat in enumerate(grid.edge_cells):  # its line, and its label where it has one
                mine = {(int(c) % grid.width, int(c) // grid.width) for c in flat}
                rect = drawing.layout.labels.get(j)
                if rect is not None:
                    mine |= {(rect.x + i, rect.y + r) for i in range(rect.w) for r in range(rect.h)}
                cells[drawing._sizing.edge_ids[j]] = mine
            # an output's box is drawn in the active edge's yellow too: read the lines only
            boxes = len(grid.box_keys)
            lit = {(x, y) for x, y in lit if y < grid.height and x < grid.width and grid.owners[y, x] >= boxes}
            return lit, cells

    lit, cells = asyncio.run(check())
    assert len(terms) == 1 and len([e for e in cells if trace.graph.nodes[e[0]].inputs[e[1]] == x]) == 3
    assert lit, "no edge is lit on screen"
    wanted = set().union(*(cells[e] for e in terms))
    assert lit <= wanted, sorted(lit - wanted)


def test_the_dashboards_help_lists_every_key_it_has(runs):
    """`?` on the dashboard: one row per key and what it does, each binding's keys on screen
    (a toast from its docstring, before, left out `x`; the footer at 80 columns shows few)."""
    from gradviz.monitor.screen import MonitorScreen
    from gradviz.tui.keys import key_text

    text, found = asyncio.run(shown(dashboard(runs["live"], ("question_mark",)), (80, 24)))
    assert not found, found
    rows = [line.strip("│ ") for line in text.splitlines()]
    for binding in MonitorScreen.BINDINGS:
        keys = key_text(binding)
        assert any(row.startswith(keys) or f"/ {keys}" in row for row in rows), (keys, text)
    assert any(row.startswith("x ") and "x-axis" in row for row in rows), text


@pytest.mark.parametrize("width", [80, 84, 88, 100])
def test_the_steppers_footer_shows_whole_keys_at_every_width(width):
    """Between 81 and 88 columns Textual's footer cut the stepper's last key (`o Out`); each
    item on the footer's row must be a whole key and its whole description."""
    import re

    async def footer_row():
        app = StepperApp(lecture_trace(), source="lecture", start=3)
        async with app.run_test(size=(width, 24)) as pilot:
            await wait_for_graph(pilot)
            await pilot.pause(0.3)
            shown = {f"{app.get_key_display(b)} {b.description}" for _, b, _, _ in app.screen.active_bindings.values()}
            return screen_text(app).splitlines()[-1], shown

    row, shown = asyncio.run(footer_row())
    items = re.split(r"\s{2,}", row.strip())
    assert items and all(item in shown for item in items), (items, shown)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_the_inspectors_keys_keep_their_indent_where_they_wrap(size):
    """Step 0's intro lists the footer's keys; a description wrapped on a narrow inspector
    ran back to its left edge (`(stepping back is exact)` under `← p / → n`)."""
    from gradviz.tui.widgets.inspector import Inspector

    async def intro_rows():
        app = StepperApp(lecture_trace(), source="lecture", start=0)
        async with app.run_test(size=size) as pilot:
            await wait_for_graph(pilot)
            await pilot.pause(0.3)
            inspector = app.screen.query_one(Inspector)
            inspector.scroll_home(animate=False)
            await pilot.pause(0.1)
            return region_text(screen_text(app), inspector.content_region)

    rows = [row.rstrip() for row in asyncio.run(intro_rows())]
    keys = rows[rows.index("Keys") + 1:]
    keys = keys[:keys.index("")] if "" in keys else keys
    assert len(keys) >= 3, rows
    assert all(row.startswith("  ") for row in keys), "\n".join(rows)
    first = next(k for k in keys if "← p / → n" in k)
    assert "previous" in first  # the description beside its keys, not under them


def batches_map(width: int, height: int):
    from gradviz.cli import build_parser
    from gradviz.commands.batches import render

    args = build_parser().parse_args(["batches"])
    return render(args, width, height, args.cells)


def methods_report_of_lecture(width: int, height: int):
    from gradviz.methods.compare import compare
    from gradviz.sources.expr import trace_expression
    from gradviz.views.methods import methods_report
    from tui_support import LECTURE

    trace = trace_expression(LECTURE, {"x1": 0.5, "x2": 1.0}, {}, 0, "float64", ("reverse",))
    return methods_report(compare(trace, LECTURE, None, 6), width, False)


def lecture_trace_report(width: int, height: int):
    from gradviz.views.trace_report import trace_report

    return trace_report(lecture_trace(), "all", "x1")


@functools.cache
def run_landscape(run_dir: Path):
    from gradviz.cli import build_parser
    from gradviz.commands.landscape import compute

    return compute(build_parser().parse_args(["landscape", str(run_dir), "--grid", "11"]))


def landscape_of_run(runs):
    def draw(width: int, height: int):
        from gradviz.landscape.view import landscape_map

        return landscape_map(run_landscape(runs["a"]), width, height)
    return draw


PRINTED = {  # what a command prints on a terminal of that size (print_map draws at rows - 2)
    "batches": lambda runs: batches_map,
    "methods": lambda runs: methods_report_of_lecture,
    "trace": lambda runs: lecture_trace_report,
    "landscape": landscape_of_run,
}


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("view", list(PRINTED))
def test_every_printed_view_reads_whole_at_every_size(view, size, request):
    import io

    from rich.cells import cell_len
    from rich.console import Console

    runs = request.getfixturevalue("runs") if view == "landscape" else None
    width, height = size
    console = Console(file=io.StringIO(), width=width, height=height, color_system=None)
    console.print(PRINTED[view](runs)(width, max(16, height - 2)))
    text = console.file.getvalue()
    found = text_defects(text)
    assert not found, "\n".join(found) + "\n\n" + text
    assert max(cell_len(line) for line in text.splitlines()) <= width, text


def test_the_dashboard_counts_the_epochs_a_shortened_run_reaches(runs):
    """40 steps of 13 per epoch (--max-steps 40 of the spec's 60 epochs): the dashboard said
    `epoch 4/60  step 40/40 … 100%`; the run reaches epoch 4 of 4."""
    meta = json.loads((runs["a"] / "meta.json").read_text())
    assert (meta["epochs"], meta["total_steps"], meta["steps_per_epoch"]) == (60, 40, 13)
    text, found = asyncio.run(shown(dashboard(runs["a"]), (120, 40)))
    assert "epoch 4/4  step 40/40" in text, text


def test_monitor_of_two_runs_piped_at_40_columns_names_every_setting_beside_whole_values(runs):
    """`gradviz monitor A B | cat` at 40 columns: rich narrowed the settings table by cutting
    the runs' names (`deep_mlp-2026120…`); each setting is named beside each run's value."""
    import gradviz

    root = Path(gradviz.__file__).resolve().parents[1]
    env = {**os.environ, "COLUMNS": "40", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-m", "gradviz", "monitor", str(runs["a"]), str(runs["b"])], cwd=root,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert not text_defects(out.stdout) and [line for line in lines if line != line.rstrip()] == [], out.stdout
    for setting, a, b in (("lr", "0.1", "0.03"), ("accum", "1", "2"), ("seed", "0", "1")):
        at = lines.index(setting)
        assert lines[at + 1:at + 5] == [f"  {runs['a'].name}", f"    {a}", f"  {runs['b'].name}", f"    {b}"], lines
