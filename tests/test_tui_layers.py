"""The stepper's `b` key: the layers view over the stepper, at 80×24 and 120×40."""

from __future__ import annotations

import pytest

from gradviz.commands.common import read_source
from gradviz.sources.bindings import parse_at, parse_shapes
from gradviz.sources.expr import trace_expression
from gradviz.tui.app import StepperApp
from gradviz.tui.screens.layers import LayersScreen
from tui_support import SAMPLES, lecture_trace, run_async, screen_text, wait_for_graph


def network_trace():
    source = read_source(f"@{SAMPLES / 'two_layer_network.expr'}")
    return trace_expression(source.text, parse_at(source.at), parse_shapes(source.shape), 0)


async def open_layers(pilot) -> None:
    await wait_for_graph(pilot)
    await pilot.press("b")
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_layers_screen_snapshot(snap_compare, size) -> None:
    app = StepperApp(network_trace(), source="samples/two_layer_network.expr", start=0)
    assert snap_compare(app, terminal_size=size, run_before=open_layers)


@run_async
async def test_b_opens_the_layers_view_and_esc_closes_it() -> None:
    app = StepperApp(network_trace(), source="two_layer_network", start=5)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_layers(pilot)
        assert isinstance(app.screen, LayersScreen)
        text = screen_text(app)
        assert "backprop by layers" in text and "lay1 = σ(x·W1 + b1)" in text and "∂J/∂h = (h − y) / (h(1 − h))" in text
        await pilot.press("end")  # scroll to the bottom: the verdict on every check
        await pilot.pause(0.2)
        assert "all 10 matrix-form quantities equal the reverse pass's adjoints" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, LayersScreen) and app.screen.k == 5


@run_async
async def test_b_without_layers_says_why() -> None:
    app = StepperApp(lecture_trace(), source="lecture")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_layers(pilot)
        assert not isinstance(app.screen, LayersScreen)
        assert any("no layers here" in n.message for n in app._notifications)
