"""The stepper app driven by Pilot at a fixed size: the lecture's example, step by step."""

from __future__ import annotations

import pytest
from rich.console import Console

from gradviz.tui.app import StepperApp
from gradviz.tui.screens.stepper import StepperScreen
from gradviz.tui.widgets.inspector import Inspector
from gradviz.tui.widgets.tape import Tape
from tui_support import (SAMPLES, assert_centred, expression_trace, lecture_trace, run_async, screen_text,
                         wait_until)

SIZE = (140, 50)

# The lecture's numbers at x1 = 0.5, x2 = 1: value, tangent ∂/∂x1, tangent ∂/∂x2, adjoint ∂f/∂·.
LECTURE_ROWS = {
    "v1": ("0.5000", "1.0000", "-0.5000", "3.4731"),
    "v2": ("1.6487", "1.6487", "-0.8244", "0.5000"),
    "v3": ("2.1487", "2.6487", "-1.3244", "0.5000"),
    "v4": ("0", "0", "1.0000", "-2.1487"),
    "v5": ("0.5000", "1.0000", "-1.5000", "2.1487"),
    "f": ("1.0744", "3.4731", "-3.8853", "1.0000"),
}


def inspector_text(app) -> str:
    console = Console(width=100, color_system=None)
    with console.capture() as capture:
        console.print(app.screen.query_one(Inspector).report)
    return capture.get()


def row(app, label: str) -> list[str]:
    screen = app.screen
    return screen.query_one(Tape).row_text(screen.trace.graph.find(label).id).split()


@run_async
async def test_walks_every_forward_tangent_and_reverse_step():
    app = StepperApp(lecture_trace(), source="lecture", detail="full")  # the tape shares the screen with the tall drawing
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, StepperScreen) and screen.k == 0
        assert row(app, "v2")[-4:] == ["·", "·", "·", "·"]
        seen = []
        for k in range(1, 31):
            await pilot.press("n")
            assert screen.k == k
            seen.append((screen.scene.phase, app.screen.trace.graph.nodes[screen.scene.current].label))
            if k == 2:  # forward: v2 just computed, v3 not yet
                assert row(app, "v2")[-4:] == ["1.6487", "·", "·", "·"]
                assert row(app, "v3")[-4:] == ["·", "·", "·", "·"]
                assert "∂v2/∂v1 = e^{v1} = 1.6487" in inspector_text(app)
            if k == 10:  # tangent pass for x1 reaches v2
                assert "v2' = e^{v1}·v1' = 1.6487" in inspector_text(app)
                assert row(app, "v2")[-3:] == ["1.6487", "·", "·"]
            if k == 26:  # reverse pass: f, v5, v4, v3 are final; v̄1 still waits for v̄2
                tape = app.screen.query_one(Tape)
                v1_row = 2 + tape.nodes.index(app.screen.trace.graph.find("v1").id) - int(tape.scroll_y)
                await pilot.click(Tape, offset=(3, v1_row))  # border and header, then the rows as scrolled
                assert screen.selected == app.screen.trace.graph.find("v1").id
                text = inspector_text(app)
                assert "v̄1 = v̄2·∂v2/∂v1 + v̄3·∂v3/∂v1 + v̄5·∂v5/∂v1" in text
                assert "= v̄2·e^{v1} + v̄3 + v̄5" in text and "= ? + 0.5000 + 2.1487 = ?" in text
                await pilot.press("escape")
        assert [phase for phase, _ in seen] == ["forward"] * 6 + ["tangent"] * 16 + ["reverse"] * 8
        assert [label for _, label in seen[-8:]] == ["f", "v5", "v4", "v3", "v2", "v1", "x2", "x1"]
        for label, numbers in LECTURE_ROWS.items():
            assert row(app, label)[-4:] == list(numbers)
        await pilot.press("left", "left")  # back to v1's reverse step
        assert "= 0.8244 + 0.5000 + 2.1487 = 3.4731" in inspector_text(app)  # v̄1, term by term
        status = screen_text(app)
        assert "REVERSE" in status and "pass 1 of 1" in status and "step 28/30" in status
        assert "forward mode 2 passes" in status and "reverse mode 1" in status


@run_async
async def test_stepping_back_restores_the_view_exactly():
    app = StepperApp(lecture_trace(), source="lecture")
    async with app.run_test(size=SIZE) as pilot:
        # the footer's key hints are painted a frame after the first: wait for them, so that
        # step 0 is read whole before it is compared (on a loaded machine it was read without)
        await wait_until(pilot, lambda: "q Quit" in screen_text(app))
        views = {}
        for k in range(31):
            await pilot.pause()
            views[k] = screen_text(app)
            await pilot.press("n")
        for k in range(30, -1, -1):
            await pilot.pause()
            assert screen_text(app) == views[k], f"step {k} differs after stepping back"
            await pilot.press("p")


@run_async
async def test_slash_v4_jumps_to_v4():
    app = StepperApp(lecture_trace(), source="lecture")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", "v", "4", "enter")
        screen = app.screen
        assert screen.k == 4 and screen.trace.graph.nodes[screen.scene.current].label == "v4"
        await pilot.press("m", "w")  # into x2's tangent pass: /v4 stays in that pass
        await pilot.press("slash", "v", "4", "enter")
        assert screen.k == 20 and screen.scene.state.pass_key == "x2"
        await pilot.press("slash", "n", "o", "p", "e", "enter")
        assert screen.k == 20  # no such node: a warning, no move


@run_async
async def test_e_writes_an_svg_and_says_where(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = StepperApp(lecture_trace(), source="lecture")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "n", "e")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
    svgs = list(tmp_path.glob("*.svg"))
    assert [p.name for p in svgs] == ["gradviz-step-2.svg"]
    assert svgs[0].read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "v2 = exp(v1)" in svgs[0].read_text() and "step 2/30, values: v2" in svgs[0].read_text()  # the stepper's step number
    assert any(f"wrote {svgs[0]}" in m for m in messages), messages


@run_async
async def test_modes_passes_and_play():
    app = StepperApp(lecture_trace(), source="lecture")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("m")
        assert screen.k == 1
        await pilot.press("m", "n", "n", "n")
        assert (screen.k, screen.scene.state.pass_key) == (10, "x1")
        await pilot.press("w")
        assert (screen.k, screen.scene.state.pass_key) == (18, "x2")
        await pilot.press("o")
        assert screen.k == 23
        await pilot.press("end")
        assert screen.k == 30
        await pilot.press("home", "right_square_bracket", "right_square_bracket", "left_square_bracket")
        assert screen.speed == 8
        await pilot.press("space")
        assert screen.playing
        await pilot.pause(0.4)
        await pilot.press("space")
        assert not screen.playing and 1 <= screen.k < 30


@run_async
async def test_help_screen_lists_the_keys():
    app = StepperApp(lecture_trace(), source="lecture")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        text = screen_text(app)
        assert "find nodes by name, definition or module path" in text and "first non-finite" in text
        await pilot.press("escape")
        assert isinstance(app.screen, StepperScreen)


@run_async
async def test_bang_jumps_to_the_first_non_finite_node_drawn_red():
    trace = expression_trace("y = log(a - 1) * b", "a=0.5,b=2")
    app = StepperApp(trace, source="nan")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("exclamation_mark")
        screen = app.screen
        bad = screen.scene.current
        assert trace.graph.nodes[bad].definition.endswith("log(v1)")
        assert "nan" in row(app, trace.graph.nodes[bad].label)
        await pilot.press("n")
        assert screen.scene.look(bad) == "bad"


@run_async
async def test_detail_levels_and_fit():
    from gradviz.tui.widgets.graph_pane import GraphPane
    from tui_support import wait_for_graph

    app = StepperApp(lecture_trace(), source="lecture", detail="full")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_graph(pilot)
        graph = app.screen.query_one(GraphPane)
        full_height = graph.drawing.height
        await pilot.press("minus")
        await wait_until(pilot, lambda: graph.drawing.detail == "compact")
        assert graph.detail == "compact" and graph.drawing.height < full_height
        await pilot.press("plus")
        assert graph.drawing.detail == "full"
        await pilot.press("minus", "minus", "f")  # at 140×50 the full drawing fits whole: fit goes back to it
        await wait_until(pilot, lambda: graph.drawing.detail == "full" and not graph.fitting)
        await pilot.pause(0.2)
        size = graph.scrollable_content_region.size
        assert graph.drawing.height <= size.height and graph.drawing.width <= size.width


@run_async
async def test_t_is_only_for_model_specs():
    app = StepperApp(lecture_trace(), source="lecture")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "o Output" in screen_text(app))  # the footer, once drawn (slow under load)
        assert "t Train" not in screen_text(app)
        await pilot.press("t")
        assert isinstance(app.screen, StepperScreen) and app.screen.training is None


@run_async
async def test_t_trains_a_model_spec_in_the_monitor_and_comes_back(tmp_path):
    pytest.importorskip("torch")
    from gradviz.monitor.screen import MonitorScreen
    from gradviz.sources.model import trace_spec

    spec = str(SAMPLES / "two_layer_mlp.py")
    app = StepperApp(trace_spec(spec), source=spec, spec_path=spec)
    async with app.run_test(size=SIZE) as pilot:
        stepper = app.screen
        stepper.train_settings = {"run_dir": tmp_path / "run", "device": "cpu", "epochs": 10_000}
        await wait_until(pilot, lambda: "t Train" in screen_text(app))  # the footer, once drawn
        await pilot.press("t")
        handle = stepper.training
        try:
            assert handle is not None
            await pilot.pause(0.2)
            assert isinstance(app.screen, MonitorScreen)
            await wait_until(pilot, lambda: app.screen.view.state == "running")
            await pilot.press("q", "k")  # leave the monitor, keep training
            await pilot.pause(0.2)
            assert app.screen is stepper and handle.alive()
            await pilot.press("n")
            assert stepper.k == 1  # the stepper still steps
        finally:
            handle.stop()
            handle.wait(timeout=60)


@run_async
async def test_findings_are_listed_and_choosing_one_selects_its_node(monkeypatch):
    from types import SimpleNamespace

    import gradviz.tui.app as app_module
    from gradviz.tui.widgets.findings import FindingsList

    trace = lecture_trace()
    v4 = trace.graph.find("v4").id
    findings = [SimpleNamespace(kind="dead", node=v4, message="log(x2) is 0 at x2 = 1")]
    monkeypatch.setattr(app_module, "load_findings", lambda _trace: findings)
    app = StepperApp(trace, source="lecture")
    async with app.run_test(size=SIZE) as pilot:
        while not app.screen.query(FindingsList):  # found in a worker once the graph is drawn
            await pilot.pause(0.01)
        await pilot.pause()
        listing = app.screen.query_one(FindingsList)
        assert "dead: v4: log(x2) is 0 at x2 = 1" in screen_text(app)
        listing.focus()
        await pilot.press("enter")
        assert app.screen.selected == v4
        assert "v4 = log(x2)" in inspector_text(app)


def test_findings_of_the_nan_hunt_sample_name_its_first_nan():
    from gradviz.cli import build_parser
    from gradviz.commands.common import load_trace
    from gradviz.tui.widgets.findings import load_findings

    trace = load_trace(build_parser().parse_args(["step", "@" + str(SAMPLES / "nan_hunt.expr")]))
    findings = load_findings(trace)
    assert findings and findings[0].kind == "non-finite"
    assert trace.graph.nodes[findings[0].node].label == "v2"


@run_async
async def test_clicking_a_node_in_the_graph_selects_it_and_dragging_pans():
    from gradviz.tui.widgets.graph_pane import GraphPane
    from tui_support import wait_for_graph

    trace = lecture_trace()
    app = StepperApp(trace, source="lecture", start=3, detail="full")
    async with app.run_test(size=(140, 36)) as pilot:  # the full drawing is taller than the pane: it pans
        await wait_for_graph(pilot)
        graph = app.screen.query_one(GraphPane)
        v2 = trace.graph.find("v2").id
        x, y, w, h = graph.drawing.box(v2)
        offset = (x - int(graph.scroll_x) + 1 + w // 2, y - int(graph.scroll_y) + 1 + h // 2)  # +1: the border
        await pilot.click(GraphPane, offset=offset)
        assert app.screen.selected == v2
        assert "v2 = exp(v1)" in inspector_text(app) and "selected" in inspector_text(app)
        await pilot.press("escape")
        assert app.screen.selected is None
        before = graph.scroll_y
        assert before >= 6
        await pilot.mouse_down(GraphPane, offset=(5, 4))  # drag the drawing down: it scrolls up
        await pilot.hover(GraphPane, offset=(5, 10))
        await pilot.mouse_up(GraphPane, offset=(5, 10))
        assert graph.scroll_y == before - 6 and app.screen.selected is None


@run_async
async def test_the_node_is_centred_for_the_pane_as_it_finally_is_however_it_got_there():
    """A model that scrolls at 120×40: the opening picture centres the current node in the pane
    as finally laid out, and stepping away and back shows the same picture (the offset was once
    a function of where the pane came from: the opening was a row and a column off centre)."""
    pytest.importorskip("torch")
    from gradviz.sources.model import trace_spec
    from gradviz.tui.widgets.graph_pane import GraphPane
    from tui_support import wait_for_graph

    spec = str(SAMPLES / "two_layer_mlp.py")
    app = StepperApp(trace_spec(spec), source="samples/two_layer_mlp.py", spec_path=spec, start=9)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_graph(pilot)
        pane = app.screen.query_one(GraphPane)
        assert pane.max_scroll_y > 0 and pane.max_scroll_x > 0  # it scrolls both ways: centring matters
        assert_centred(pane)
        opening, picture = pane.scroll_offset, screen_text(app)
        for keys in (("n", "p"), ("p", "p", "n", "n"), ("n", "n", "n", "p", "p", "p")):
            await pilot.press(*keys)
            await pilot.pause()
            assert pane.scroll_offset == opening, keys
            assert screen_text(app) == picture, keys
