"""The small untruths of issue 21, each checked as a person meets it."""

from __future__ import annotations

import os
from pathlib import Path

from gradviz.tui.actions import next_phase_start
from gradviz.tui.app import StepperApp
from gradviz.tui.keys import key_rows
from gradviz.tui.screens.stepper import StepperScreen
from tui_support import lecture_trace, run_async, screen_text, wait_for_graph, wait_until


def test_help_names_the_step_keys_in_the_order_it_lists_them():
    keys, what = key_rows(StepperScreen.BINDINGS)[0]
    assert keys == "← p / → n" and what.startswith("previous / next step")  # p goes back


def test_m_goes_round_values_tangents_adjoints_and_never_back_to_step_0():
    timeline = StepperApp(lecture_trace()).timeline
    starts = [timeline.find_pass(phase).start for phase in ("forward", "tangent", "reverse")]
    k, seen = 0, []
    for _ in range(4):
        k = next_phase_start(timeline, k)
        seen.append(k)
    assert seen == [starts[0], starts[1], starts[2], starts[0]]
    assert next_phase_start(timeline, starts[0], -1) == starts[2]  # M from the values: the adjoints


@run_async
async def test_e_says_the_full_path_of_the_svg_it_wrote(tmp_path):
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        app = StepperApp(lecture_trace(), source="lecture", start=3)
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await wait_for_graph(pilot)
            await pilot.press("e")
            await wait_until(pilot, lambda: any("wrote" in n.message for n in app._notifications))
            written = Path(tmp_path, "gradviz-step-3.svg").resolve()
            assert written.exists()
            assert any(str(written) in n.message for n in app._notifications)
    finally:
        os.chdir(here)


@run_async
async def test_the_dashboard_answers_question_mark_with_its_keys(tmp_path):
    from gradviz.monitor.app import MonitorApp
    from monitor_support import make_run

    make_run(tmp_path / "run", steps=20)
    app = MonitorApp(tmp_path / "run", poll_seconds=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        shown = screen_text(app)  # the help screen, one row per key (it was a toast, before that nothing)
        assert "scrub" in shown and "log scale" in shown and "distribution" in shown, shown


@run_async
async def test_the_stepper_opened_from_descent_lists_its_keys():
    from gradviz.cli import build_parser
    from gradviz.commands.descent import build_run
    from gradviz.tui.descent import BackToDescent, DescentApp

    run = build_run(build_parser().parse_args(["descent", "x**2 + 10*y**2", "--from", "x=2,y=1", "--lr", "0.05"]))
    app = DescentApp(run)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n", "s")
        await wait_until(pilot, lambda: isinstance(app.screen, BackToDescent))
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "Keys" in text and "→ n" in text and "previous / next step" in text
        assert "back to the descent map" in " ".join(what for _, what in key_rows(app.screen.usable()))


@run_async
async def test_help_at_80_columns_keeps_each_panes_text_indented_when_it_wraps():
    app = StepperApp(lecture_trace(), source="lecture")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_graph(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        await pilot.press("end")
        await pilot.pause(0.3)
        rows = screen_text(app).splitlines()
        start = next(i for i, row in enumerate(rows) if "graph:" in row and "dim boxes" in row)
        column = rows[start].index("dim boxes")
        wrapped = rows[start + 1]  # 'node this step computes…', under 'dim boxes', not under 'graph:'
        assert wrapped[column - 1] == " " and wrapped[column] != " ", "\n".join(rows)


@run_async
async def test_two_runs_with_long_names_keep_their_settings_row_labels_at_80x24(tmp_path):
    import json

    from gradviz.monitor.compare_app import CompareApp, SettingsPanel
    from monitor_support import make_run
    from screencheck import region_text, text_defects

    paths = []
    for name, lr, seed in (("experiment-lr0.1-batch32-seed0-long-name", 0.1, 0),
                           ("experiment-lr0.01-batch32-seed1-long-name", 0.01, 1)):
        run = make_run(tmp_path / name, steps=60)
        config = json.loads(run.config.read_text())
        config.update(lr=lr, seed=seed)
        run.config.write_text(json.dumps(config))
        paths.append(run.root)
    app = CompareApp(paths, poll_seconds=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        panel = app.query_one(SettingsPanel)
        rows = region_text(screen_text(app), panel.content_region)
        labels = [row.split()[0] for row in rows if row.split()]
        assert {"lr", "seed", "ended"} <= set(labels), rows  # were 's…' and 'e…'
        assert not text_defects("\n".join(rows)), rows
