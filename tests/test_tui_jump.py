"""`/` finds nodes by name, definition or module path and lists every match in graph order."""

from __future__ import annotations

import pytest

from gradviz.tui.app import StepperApp
from gradviz.tui.screens.jump import JumpScreen, find_nodes
from tui_support import gpt_shaped_trace, lecture_trace, run_async, screen_text, wait_for_graph, wait_until


def test_a_label_finds_itself_and_words_find_every_node_holding_them():
    graph = lecture_trace().graph
    assert find_nodes(graph, "v1") == [graph.find("v1").id]
    assert find_nodes(graph, "exp") == [graph.find("v2").id]  # in v2's definition
    assert find_nodes(graph, "x2") == [graph.find("x2").id]
    assert find_nodes(graph, "v4 v1") == [graph.find("v5").id]  # v5 = v1 − v4 holds both


@pytest.fixture(scope="module")
def gpt_trace():
    pytest.importorskip("torch")
    return gpt_shaped_trace("2,16,2,8")


def test_a_module_path_lists_every_node_inside_it_in_order(gpt_trace):
    graph = gpt_trace.graph
    inside = [n.id for n in graph.nodes
              if (n.meta.get("module") or "").startswith("blocks.1.attn") or n.label.startswith("blocks.1.attn")]
    found = find_nodes(graph, "blocks.1.attn")
    assert set(inside) <= set(found) and found == sorted(found)
    assert any(graph.nodes[i].op == "softmax" or "softmax" in graph.nodes[i].label for i in found)


@run_async
async def test_slash_lists_a_modules_nodes_and_the_softmaxs_adjoint_is_a_choice_away(gpt_trace):
    from textual.widgets import OptionList

    graph = gpt_trace.graph
    app = StepperApp(gpt_trace, source="gpt", start=10_000)  # the end: every adjoint known
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_graph(pilot)
        await pilot.press("slash", *"blocks.1.attn", "enter")
        await pilot.pause()
        jump = app.screen
        assert isinstance(jump, JumpScreen)
        listing = jump.query_one(OptionList)
        found = find_nodes(graph, "blocks.1.attn")
        assert listing.option_count == len(found) > 1 and listing.has_focus
        softmax = next(i for i in found if "softmax" in graph.nodes[i].label)
        await pilot.press(*["down"] * found.index(softmax), "enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, JumpScreen))
        stepper = app.screen
        assert stepper.scene.current == softmax or stepper.selected == softmax
        adjoint = next(iter(gpt_trace.adjoints.values()))[softmax]
        from gradviz.core.fmt import fmt_value

        await pilot.pause(0.2)
        text = screen_text(app)
        assert f"adjoint ∂loss/∂{graph.nodes[softmax].label}" in text and fmt_value(adjoint).split()[0] in text


def test_the_tape_names_each_row_with_its_module_and_keeps_the_tail_when_cut(gpt_trace):
    from gradviz.textfit import cut_start
    from gradviz.tui.widgets.tape import row_name

    graph = gpt_trace.graph
    softmax = next(n for n in graph.nodes if "softmax" in n.label and "blocks.1" in (n.meta.get("module") or ""))
    name = row_name(softmax)
    assert name == f"{softmax.meta['module']}/{softmax.label}" and name.startswith("blocks.1.attn")
    assert cut_start(name, 14).endswith(softmax.label)
    weight = graph.find("blocks.0.attn.qkv.weight") or next(n for n in graph.nodes if n.kind == "parameter")
    assert row_name(weight) == weight.label  # a parameter's path already names its module
