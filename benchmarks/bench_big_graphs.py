"""Big graphs, made in code: how long tracing, folding + layout, a step and --json take,
and how much memory the trace holds, from 10² to 10⁴ nodes and on real-size models.

The zoo: expressions of 100, 1,000, 10,000 (and, asked for by name, 100,000) nodes whose
statements all reuse the inputs x1 and x2 (two hubs with thousands of users: what made
`dot` run past 120 s), a GPT-2-small-shaped model (samples/big/gpt2_shaped.py: 12 blocks,
d=768, 12 heads, seq 128, batch 2) at module and aten level, the same sample as a 6-layer
transformer (d=256, 4 heads, seq 128, batch 8), and a ResNet-18-shaped CNN at aten level
(samples/big/resnet18_shaped.py). Each row runs in its own process, so its peak memory is its own.

- trace: building the Trace (for models: the spec loaded, a forward and backward captured);
- layout: fold.plan_fold + `dot` + routing + rasterising: the first picture, with edges;
- step p50/p95: one step of the stepper's graph drawing (tui.drawing.DotDrawing.paint: the
  changed nodes' boxes and edges repainted), median and 95th percentile over the first
  `--steps` steps; Textual's own screen update comes on top (bench_stepper measures that);
- first frame (Textual, headless at 160×50 through `App.run_test`): from creating the
  stepper app with the ready Trace (its Timeline included) to the end of the first screen
  update that paints the graph pane's drawing (the layout worker's result, not the spinner);
  the `drawing` field says which drawing it was (DotDrawing: dot's layout, with edges);
- tui step p50/p95: one `n` key press inside Textual, from the key event to the end of the
  first screen update that shows the new step (the binding, the stepper's apply to every
  pane, the compositor's render and the terminal bytes it would write), as the process's
  CPU time over that span: Textual waits for its next frame tick (up to 1/60 s) before
  painting, which is idle time, not work; `key→screen p95` is the same span in wall time,
  that wait included. Measured once the findings worker is done. 50 steps from k = 0 and
  50 from the first adjoint step; Pilot's own
  `press` is not used (it sleeps ≥ 40 ms per key waiting for idle);
- expand: `z` on a node inside a folded module (graphs that open folded), from the key to the
  end of the screen update that paints the opened drawing (its layout in the worker included);
- json ×: `--json` of the trace against the trace alone (a ratio, measured in the same process);
- memory: the process's peak RSS growth while tracing, less the model's parameters (which
  the trace builds), against a plain forward+backward of the same model on the same batch
  (models only).

The Textual columns are measured after the others in the same process (the drawing modules
are imported by then: about 15 ms). --no-tui leaves them out.

    python benchmarks/bench_big_graphs.py [--only expr1000,gpt2-module] [--steps 200] [--no-tui]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ZOO = {
    "expr100": ("expression", 33),
    "expr1000": ("expression", 333),
    "expr10000": ("expression", 3333),
    "expr100000": ("expression", 33333),
    # spec rows: path, level, batch, the sample's size setting (GRADVIZ_GPT2: blocks,dim,heads,length)
    "gpt2-module": ("spec", "samples/big/gpt2_shaped.py", "module", 2, {}),
    "gpt2-aten": ("spec", "samples/big/gpt2_shaped.py", "aten", 2, {}),
    "transformer6-module": ("spec", "samples/big/gpt2_shaped.py", "module", 8, {"GRADVIZ_GPT2": "6,256,4,128"}),
    "resnet18-aten": ("spec", "samples/big/resnet18_shaped.py", "aten", 2, {}),
}
DEFAULT_ROWS = "expr100,expr1000,expr10000,gpt2-module,gpt2-aten,transformer6-module,resnet18-aten"


def hub_expression(statements: int) -> str:
    """`statements` lines, each reusing x1 and x2: 3 nodes a line, x1 and x2 used by every line."""
    return "\n".join(f"s{i} = tanh({f's{i - 1}' if i else 'x1'} * x1 + x2)" for i in range(statements))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plain_step_mb(name: str) -> float:
    """Peak RSS growth of a plain forward+backward of the row's model on the same batch."""
    from gradviz.sources.model import prepare_spec

    _, path, _, batch, _ = ZOO[name]
    spec, model, x, y, _ = prepare_spec(path, batch, 0, None, True)
    before = peak_mb()
    spec.loss(model(x), y).backward()
    return peak_mb() - before


def percentile_ms(times: list[float], q: float) -> float:
    return 1000 * sorted(times)[int(q * (len(times) - 1))]


async def measure_tui(trace, name: str, presses: int = 50) -> dict:
    """First frame, one step and `z` inside the stepper app (see the docstring)."""
    from textual import events

    from gradviz.draw.fold import MODULE
    from gradviz.tui.app import StepperApp
    from gradviz.tui.screens.stepper import StepperScreen
    from gradviz.tui.widgets.graph_pane import GraphPane

    # Every screen update goes through StepperScreen._on_timer_update (the frame tick, and
    # Pilot's pause): `waiting` is a test of the state about to be painted; once one passes,
    # the end of that update is the moment the screen shows it.
    waiting: list = []  # [(test, future)]
    update = StepperScreen._on_timer_update

    def timed_update(screen) -> None:
        ready = [(test, done) for test, done in waiting if not done.done() and test()]
        update(screen)
        if ready:
            now = (time.perf_counter(), time.process_time())
            for _, done in ready:
                done.set_result(now)

    StepperScreen._on_timer_update = timed_update

    def until(test):
        done = asyncio.get_running_loop().create_future()
        waiting.append((test, done))
        return done

    headless_display = StepperApp._display

    def display(app, screen, renderable) -> None:
        """Headless apps write nothing: make the terminal's bytes anyway, as a terminal would."""
        headless_display(app, screen, renderable)
        if renderable is not None and app.is_headless and hasattr(renderable, "render_segments"):
            renderable.render_segments(app.console)

    StepperApp._display = display

    row: dict = {}
    started = time.perf_counter()
    app = StepperApp(trace, source=name)
    graph: GraphPane | None = None

    def drawn() -> bool:
        return graph is not None and graph.drawing is not None and not graph.loading

    async with app.run_test(size=(160, 50)) as pilot:
        graph = app.screen.query_one(GraphPane)
        first = until(drawn)
        ended, _ = await asyncio.wait_for(first, 600)
        row["frame_s"] = ended - started
        drawing = graph.drawing
        row["drawing"] = type(drawing).__name__ + (f" ({drawing.note})" if drawing.note.startswith("simple") else "")
        # the findings are looked for in a worker after the first picture: its thread would
        # count in the steps' CPU time (and hold the GIL), so the steps start once it is done
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        timeline = screen.timeline

        async def press(key: str, test) -> tuple[float, float]:
            done = until(test)
            wall, cpu = time.perf_counter(), time.process_time()
            key_event = events.Key(key, key)
            key_event.set_sender(app)
            app._driver.send_message(key_event)
            ended, cpu_ended = await asyncio.wait_for(done, 120)
            return ended - wall, cpu_ended - cpu

        reverse = timeline.find_pass("reverse")
        starts = [0] + ([reverse.start] if reverse is not None else [])
        cpu, wall = [], []
        for start in starts:
            screen.k = start
            await pilot.pause()
            for k in range(start + 1, min(start + presses, timeline.last) + 1):
                w, c = await press("n", lambda k=k: screen.k == k)
                wall.append(w)
                cpu.append(c)
                await pilot.pause(0)
        row.update(tui_p50_ms=1000 * statistics.median(cpu), tui_p95_ms=percentile_ms(cpu, 0.95),
                   tui_wall_p95_ms=percentile_ms(wall, 0.95), tui_steps=len(cpu))

        fold = graph.drawing.fold
        folded = next((k for k in range(1, timeline.last + 1)
                       if (fold.box_of(timeline.steps[k - 1].node) or "").startswith(MODULE)), None) \
            if fold is not None else None
        if folded is not None:
            screen.k = folded
            await pilot.pause()
            before = graph.drawing
            wall_s, _ = await press("z", lambda: graph.drawing is not before and not graph.loading)
            row["expand_s"] = wall_s
    return row


def measure(name: str, steps: int, tui: bool = True) -> dict:
    from gradviz.draw.fold import box_count
    from gradviz.tui.drawing import DotDrawing
    from gradviz.tui.scene import Scene
    from gradviz.tui.timeline import Timeline
    from gradviz.views.json_report import trace_to_json

    kind, *args = ZOO[name]
    row: dict = {"name": name}
    if kind == "spec":
        import torch  # noqa: F401  (its import is not the trace's cost)

        from gradviz.sources.model import trace_spec
    before = peak_mb()
    started = time.perf_counter()
    if kind == "expression":
        from gradviz.sources.expr import trace_expression
        trace = trace_expression(hub_expression(args[0]), {"x1": 0.3, "x2": 0.2})
    else:
        trace = trace_spec(args[0], batch_size=args[2], seed=0, level=args[1], dtype=None)
    row["trace_s"] = time.perf_counter() - started
    params = sum(v.nbytes for n, v in zip(trace.graph.nodes, trace.values) if n.kind == "parameter")
    row["trace_mb"] = peak_mb() - before - params / 2**20
    row["nodes"] = len(trace.graph.nodes)

    started = time.perf_counter()
    drawing = DotDrawing(trace)
    row["layout_s"] = time.perf_counter() - started
    row["boxes"] = box_count(trace.graph, list(drawing.fold.groups), drawing.fold.stubs)
    row["fold"] = drawing.fold.note or "open"

    timeline = Timeline(trace)
    drawing.paint(Scene(timeline, 0))
    times = []
    for k in range(1, min(steps, len(timeline) - 1) + 1):
        scene = Scene(timeline, k)
        t0 = time.perf_counter()
        drawing.paint(scene)
        times.append(time.perf_counter() - t0)
    row["step_p50_ms"] = 1000 * statistics.median(times)
    row["step_p95_ms"] = 1000 * sorted(times)[int(0.95 * (len(times) - 1))]

    started = time.perf_counter()
    json.dumps(trace_to_json(trace, name))
    json_s = time.perf_counter() - started
    row["json_ratio"] = (row["trace_s"] + json_s) / row["trace_s"]

    if tui:
        del drawing, timeline, scene
        row.update(asyncio.run(measure_tui(trace, name)))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=DEFAULT_ROWS,
                        help=f"comma-separated rows of the zoo (default: all but expr100000; rows: {', '.join(ZOO)})")
    parser.add_argument("--steps", type=int, default=200, help="steps timed per graph")
    parser.add_argument("--no-tui", action="store_true", help="leave out the Textual columns")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # one row, in a child process
    parser.add_argument("--plain", help=argparse.SUPPRESS)  # a plain step of a spec, in a child process
    args = parser.parse_args()
    if args.row:
        print(json.dumps(measure(args.row, args.steps, not args.no_tui)))
        return
    if args.plain:
        print(json.dumps({"plain_mb": plain_step_mb(args.plain)}))
        return
    print(f"{'graph':<20}{'nodes':>7}{'boxes':>7}{'trace s':>9}{'layout s':>9}{'step p50':>9}{'p95 ms':>8}"
          f"{'json ×':>8}{'trace MB':>9}{'plain MB':>9}"
          + ("" if args.no_tui else f"{'frame s':>8}{'tui p50':>8}{'p95 ms':>7}{'key→scr':>8}{'expand s':>9}")
          + "  fold")
    for name in args.only.split(","):
        env = {**os.environ, "PYTHONPATH": str(ROOT), **(ZOO[name][4] if ZOO[name][0] == "spec" else {})}
        done = subprocess.run([sys.executable, __file__, "--row", name, "--steps", str(args.steps)]
                              + (["--no-tui"] if args.no_tui else []),
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            print(f"{name:<20} failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        if ZOO[name][0] == "spec":
            plain = subprocess.run([sys.executable, __file__, "--plain", name], capture_output=True,
                                   text=True, env=env)
            r.update(json.loads(plain.stdout.strip().splitlines()[-1]))
        plain = f"{r['plain_mb']:>9.0f}" if "plain_mb" in r else f"{'':>9}"
        tui = ""
        if "frame_s" in r:
            expand = f"{r['expand_s']:>9.2f}" if "expand_s" in r else f"{'-':>9}"
            tui = (f"{r['frame_s']:>8.2f}{r['tui_p50_ms']:>8.1f}{r['tui_p95_ms']:>7.1f}{r['tui_wall_p95_ms']:>8.1f}"
                   f"{expand}")
            if not r["drawing"].startswith("DotDrawing"):
                tui += f"  [{r['drawing']}]"
        print(f"{r['name']:<20}{r['nodes']:>7}{r['boxes']:>7}{r['trace_s']:>9.2f}{r['layout_s']:>9.2f}"
              f"{r['step_p50_ms']:>9.1f}{r['step_p95_ms']:>8.1f}{r['json_ratio']:>8.2f}{r['trace_mb']:>9.0f}{plain}"
              f"{tui}  {r['fold'][:60]}", flush=True)


if __name__ == "__main__":
    main()
