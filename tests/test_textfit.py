"""The narrow-screen rule: whole words and numbers, declared shorter forms, ' …' for the rest."""

from __future__ import annotations

from gradviz.descent.terminal import legend_entry
from gradviz.textfit import fit_words
from screencheck import text_defects


def test_text_that_fits_is_left_alone_and_else_loses_whole_words():
    assert fit_words("converged at step 110", 30) == "converged at step 110"
    assert fit_words("converged at step 110", 20) == "converged at step …"
    assert fit_words("converged at step 110", 20, ["conv. 110"]) == "conv. 110"
    assert fit_words("converged", 3) == ""


def test_a_descent_legend_keeps_marker_optimizer_eta_and_the_verdicts_number():
    # at 80×24 the legend had 46 cells: 'still moving after 200 steps (oscill' was cut there
    line = legend_entry("gd η=0.1", "still moving after 200 steps (oscillating)", 40)
    assert line == "gd η=0.1  still moving after 200 steps"
    assert legend_entry("gd η=0.05", "converged at step 110", 20) == "gd η=0.05  conv. 110"
    assert legend_entry("gd η=0.05", "converged at step 110", 60) == "gd η=0.05  converged at step 110"


def test_the_screen_checker_finds_each_kind_of_cut():
    assert text_defects("◆ gd η=0.1  still moving after 200 steps (oscill│ step")
    assert text_defects("│blocks.0…  parameter")
    assert text_defects("axis -1.00e-0 ")
    assert not text_defects("│…blocks.3.attn.c_attn.weight  parameter │")
    assert not text_defects("   2.46┤▀▀▀ │ gd η=0.01 │")


def test_names_lose_their_start_and_definitions_their_end_at_a_words_edge():
    from gradviz.textfit import cut_end, cut_start

    assert cut_start("blocks.3.attn.c_attn.weight", 20) == "…attn.c_attn.weight"
    assert cut_end("qkv = Linear(16→48)(blocks.1.ln1)", 25) == "qkv = Linear(16→48)(…"
    assert cut_end("x = 1.2345e-05 * y", 12) == "x = …"  # never 1.2345e…
    assert cut_end("transpose_5 = transpose(reshape_4, 1, 2)", 16) == "transpose_5 = …"
    assert not text_defects(cut_end("t_1 = t(blocks.0.attn.proj.weight)", 12))
    # no word ends in the room (a tape row's LayerNorm at 120x40 was left blank): it says '…'
    assert cut_end("ln1 = LayerNorm(16)(x)", 3) == "…" and cut_end("ln1", 0) == ""


def test_the_gradient_distributions_axis_writes_whole_numbers_once():
    from gradviz.monitor.heat import render_distribution
    from gradviz.monitor.widgets import short

    edges = [-1e-5 * i for i in range(10, -11, -1)]  # bins of 1e-05 around zero
    frames = [[1] * 20 for _ in range(5)]
    rows = [row.plain for row in render_distribution(frames, edges, 4, 30, 8, short)]
    assert not text_defects("\n".join(rows)), rows  # was '-1.00e-0' (the exponent cut to one digit)
    names = [row[:8].strip() for row in rows if row[:8].strip()]
    assert len(names) == len(set(names))  # no label said twice


def test_a_maps_axis_labels_are_whole_and_never_overlap():
    import numpy as np

    from gradviz.descent.surface import Surface, Window
    from gradviz.descent.terminal import render_map

    surface = Surface(Window(-1.9, 2.51, -9.23, 9.23), np.ones((8, 8)), "x", "PC2 (24%)", "loss")
    text = render_map(surface, [], 40, 16).plain
    assert not text_defects(text), text  # was 'PC2 (24%│' and the middle number dropped
    assert "PC2 │" in text and " 0┤" in text  # the name shortened to its first word, on its own row
    axis = render_map(surface, [], 24, 16).plain.splitlines()
    numbers = next(line for line in axis if "-1.9" in line)
    assert "2.51" in numbers and "-1.90.3" not in numbers  # a label left out rather than run together


def test_styled_text_keeps_whole_words_and_their_styles():
    from rich.text import Text

    from gradviz.textfit import fit_text

    title = Text("∇ values of fc1, step 1→40", style="bold") + Text(" · colour log count · d: norms", style="dim")
    assert fit_text(title, 80) is title
    # on the old code the panel's title read '… · colour log cou…' at 80×24
    cut = fit_text(title, 44)
    assert cut.plain == "∇ values of fc1, step 1→40 · colour log …"
    assert not text_defects(cut.plain)
    from rich.console import Console

    console = Console()
    assert cut.get_style_at_offset(console, 2).bold and cut.get_style_at_offset(console, 30).dim
    assert fit_text(title, 20, [Text("∇ fc1, step 1→40")]).plain == "∇ fc1, step 1→40"
