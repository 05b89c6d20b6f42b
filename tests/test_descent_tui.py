"""The descent app: the path grows with n/p/space, the panel shows θ, f, ∇f, η∇f; s opens the stepper."""

from __future__ import annotations

import numpy as np
import pytest

from gradviz.cli import build_parser
from gradviz.commands.descent import build_run
from gradviz.tui.descent import BackToDescent, DescentApp, DescentScreen
from tui_support import run_async, screen_text

QUAD = ["descent", "x**2 + 10*y**2", "--from", "x=2,y=1", "--lr", "0.01,0.09,0.11"]


def quad_run(*extra):
    return build_run(build_parser().parse_args([*QUAD, *extra]))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_after_six_steps(snap_compare, size):
    async def six_steps(pilot):
        for _ in range(6):
            await pilot.press("n")
        await pilot.pause()

    assert snap_compare(DescentApp(quad_run()), terminal_size=size, run_before=six_steps)


@run_async
async def test_keys_grow_and_shrink_the_path_and_the_panel_shows_the_step():
    run = quad_run()
    app = DescentApp(run, cells="shade")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, DescentScreen) and screen.k == 0
        await pilot.press("n", "n", "n", "p")
        assert screen.k == 2
        step = run.paths[0].steps[2]
        text = screen_text(app)
        assert f"θ2  = ({step.theta[0]:.5g}, {step.theta[1]:.5g})" in text
        assert f"∇f   = ({step.grad[0]:.5g}, {step.grad[1]:.5g})" in text
        eta = 0.01 * step.grad
        assert f"η∇f  = ({eta[0]:.5g}, {eta[1]:.5g})" in text
        await pilot.press("end")
        assert screen.k == screen.last == 200
        assert "diverged at step 30" in screen_text(app)
        await pilot.press("home", "space")
        await pilot.pause(0.6)
        assert screen.k > 0
        await pilot.press("space")


@run_async
async def test_s_opens_the_stepper_at_theta_and_q_comes_back():
    run = quad_run()
    app = DescentApp(run, cells="shade")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("c", "n", "n", "n")  # follow the second path (η = 0.09), three steps in
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, BackToDescent)
        trace = app.screen.trace
        theta = run.paths[1].steps[3].theta
        x, y = (trace.graph.find(n).id for n in ("x", "y"))
        assert float(trace.values[x]) == theta[0] and float(trace.values[y]) == theta[1]
        np.testing.assert_allclose([float(trace.gradient("f", n)) for n in ("x", "y")], run.paths[1].steps[3].grad)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, DescentScreen) and app.screen.k == 3


@run_async
async def test_e_writes_the_svg(tmp_path):
    app = DescentApp(quad_run())
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.svg_path = str(tmp_path / "run.svg")
        await pilot.press("e")
        await pilot.pause()
    assert (tmp_path / "run.svg").read_text().startswith("<svg")
