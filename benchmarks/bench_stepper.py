"""The stepper, measured inside the app: one step on graphs of 10, 1000 and 3000 nodes, and
the time to first frame on the lecture's example.

Targets: a step under 16 ms at 1000 nodes; the first frame under 1 s for the lecture.
These machines are noisy, so every figure comes with a baseline measured in the same run:

- `apply`: k changes → Scene → graph, tape, inspector and status updated (the stepper's
  own work), against core.steps.state_at at the same k (which rescans every earlier step)
  and against gradviz.draw's TraceDrawing.grid (a full repaint of the look);
- `+render`: apply, then every pane renders its visible lines (what Textual paints);
- `pilot`: a key press through Textual's event loop, until the app is idle again, against
  the same press on a bare Textual app (Pilot waits for idle: most of it is Pilot's own).

    python benchmarks/bench_stepper.py [--sizes 10,1000,3000] [--steps 60]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SIZE = (160, 50)
LECTURE = ["(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", "--at", "x1=0.5,x2=1"]


def median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def p95_ms(times: list[float]) -> float:
    return 1000 * sorted(times)[int(0.95 * (len(times) - 1))]


async def measure_size(nodes: int, steps: int) -> dict:
    from textual.geometry import Region

    from gradviz.core.steps import state_at
    from gradviz.draw.terminal import TraceDrawing
    from gradviz.tui.app import StepperApp
    from gradviz.tui.widgets.graph_pane import GraphPane
    from gradviz.tui.widgets.inspector import Inspector
    from gradviz.tui.widgets.status import StatusBar
    from gradviz.tui.widgets.tape import Tape
    from graphs import trace_of_size

    started = time.perf_counter()
    trace = trace_of_size(nodes)
    traced = time.perf_counter() - started
    app = StepperApp(trace, source=f"{nodes} nodes")
    result: dict = {"nodes": len(trace.graph.nodes), "trace_s": traced}
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        started = time.perf_counter()
        graph = screen.query_one(GraphPane)
        while graph.drawing is None:
            await pilot.pause(0.05)
        result["layout_s"] = time.perf_counter() - started
        result["drawing"] = type(graph.drawing).__name__
        timeline = screen.timeline
        panes = [graph, screen.query_one(Tape), screen.query_one(Inspector), screen.query_one(StatusBar)]
        # Steps inside the tangent pass and inside the reverse pass, forwards then back.
        starts = [timeline.find_pass(phase).start for phase in ("tangent", "reverse")]
        ks = [k for start in starts for k in range(start + 2, min(start + 2 + steps, timeline.last))]
        apply, render, core, full = [], [], [], []
        drawing = TraceDrawing(trace, graph.drawing.detail) if result["drawing"] == "DotDrawing" else None
        for k in ks + ks[::-1]:
            t0 = time.perf_counter()
            screen.k = k
            t1 = time.perf_counter()
            for pane in panes:
                pane.render_lines(Region(0, 0, pane.size.width, pane.size.height))
            t2 = time.perf_counter()
            apply.append(t1 - t0)
            render.append(t2 - t0)
            if len(core) < 20:
                t0 = time.perf_counter()
                state_at(trace, timeline.steps, k)
                core.append(time.perf_counter() - t0)
                if drawing is not None:
                    t0 = time.perf_counter()
                    drawing.grid(timeline.state(k))
                    full.append(time.perf_counter() - t0)
            await pilot.pause(0)
        screen.k = ks[0]
        await pilot.pause()
        presses = min(40, len(ks))
        t0 = time.perf_counter()
        for _ in range(presses):
            await pilot.press("n")
        await pilot.pause()
        result["pilot_ms"] = 1000 * (time.perf_counter() - t0) / presses
        result.update(apply_ms=median_ms(apply), apply_p95_ms=p95_ms(apply), render_ms=median_ms(render),
                      render_p95_ms=p95_ms(render), state_at_ms=median_ms(core),
                      full_repaint_ms=median_ms(full) if full else float("nan"))
        # Jump: find a node by name among thousands, and go to its step.
        t0 = time.perf_counter()
        screen.jump_to(trace.graph.nodes[len(trace.graph.nodes) // 2].label)
        result["jump_ms"] = 1000 * (time.perf_counter() - t0)
    return result


FIRST_FRAME_CHILD = """
import asyncio, sys, time
started = time.perf_counter()
sys.path.insert(0, {root!r})
from gradviz.cli import build_parser
from gradviz.commands.common import load_trace
from gradviz.tui.app import StepperApp
from gradviz.tui.widgets.graph_pane import GraphPane

args = build_parser().parse_args(["step", *{argv!r}])
app = StepperApp(load_trace(args), source=args.source)

async def main():
    async with app.run_test(size=(120, 40)) as pilot:
        first = time.perf_counter() - started
        while app.screen.query_one(GraphPane).drawing is None:
            await pilot.pause(0.01)
        await pilot.pause()
        print(first, time.perf_counter() - started)

asyncio.run(main())
"""


def first_frame_headless(repeat: int) -> tuple[list[float], list[float], list[float]]:
    """Process start → first frame, → graph drawn (headless), against `python -c pass`."""
    code = FIRST_FRAME_CHILD.format(root=str(ROOT), argv=LECTURE)
    frames, graphs, bare = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t0)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
        first, graph = (float(x) for x in out.stdout.split())
        # The child measures from its first line; add the interpreter's start-up (≈ bare).
        frames.append(first + bare[-1])
        graphs.append(graph + bare[-1])
    return frames, graphs, bare


def first_frame_tmux(repeat: int) -> list[float]:
    """`gradviz step` in a real terminal (tmux): launch → the status bar appears on screen."""
    if shutil.which("tmux") is None:
        return []
    import shlex

    times = []
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "gradviz", "step", *LECTURE])
    for _ in range(repeat):
        folder = tempfile.TemporaryDirectory()
        socket = str(Path(folder.name) / "tmux.sock")
        t0 = time.perf_counter()
        subprocess.run(["tmux", "-S", socket, "new-session", "-d", "-s", "b", "-x", "120", "-y", "40",
                        f"cd {shlex.quote(str(ROOT))} && PYTHONPATH={shlex.quote(str(ROOT))} {command}"], check=True)
        while True:
            screen = subprocess.run(["tmux", "-S", socket, "capture-pane", "-p", "-t", "b"],
                                    capture_output=True, text=True).stdout
            if "step 0/30" in screen:
                times.append(time.perf_counter() - t0)
                break
            if time.perf_counter() - t0 > 30:
                break
            time.sleep(0.005)
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)
        folder.cleanup()
    return times


BARE_APP = """
from textual.app import App
from textual.binding import Binding
from textual.widgets import Footer, Static

class Bare(App):
    BINDINGS = [Binding("n", "next", "Next")]
    count = 0

    def compose(self):
        yield Static("step 0/30", id="count")
        yield Footer()

    def action_next(self):
        self.count += 1
        self.query_one("#count", Static).update(f"step {self.count}/30")

Bare().run()
"""


def key_latency_tmux(presses: int = 20) -> dict[str, list[float]]:
    """Key press → the changed screen, in a real terminal (tmux): `n` sent with send-keys,
    then capture-pane polled until 'step k/' shows, for the stepper on the lecture and for
    a bare Textual app (one Static and a footer) under the same load. Both include tmux's
    own round trips (a capture-pane is a process start), so the ratio is what counts."""
    if shutil.which("tmux") is None:
        return {}
    import shlex

    commands = {
        "stepper": " ".join(shlex.quote(a) for a in [sys.executable, "-m", "gradviz", "step", *LECTURE]),
        "bare textual": " ".join(shlex.quote(a) for a in [sys.executable, "-c", BARE_APP]),
    }
    results: dict[str, list[float]] = {}
    for name, command in commands.items():
        folder = tempfile.TemporaryDirectory()
        socket = str(Path(folder.name) / "tmux.sock")
        tmux = ["tmux", "-S", socket]
        subprocess.run(tmux + ["new-session", "-d", "-s", "b", "-x", "120", "-y", "40",
                               f"cd {shlex.quote(str(ROOT))} && PYTHONPATH={shlex.quote(str(ROOT))} {command}"],
                       check=True)

        def screen() -> str:
            return subprocess.run(tmux + ["capture-pane", "-p", "-t", "b"], capture_output=True, text=True).stdout

        t0 = time.perf_counter()
        while "step 0/30" not in screen() and time.perf_counter() - t0 < 60:
            time.sleep(0.02)
        time.sleep(1.0)  # let the layout worker finish
        times = []
        for k in range(1, presses + 1):
            t0 = time.perf_counter()
            subprocess.run(tmux + ["send-keys", "-t", "b", "n"], check=True)
            while f"step {k}/30" not in screen():
                if time.perf_counter() - t0 > 10:
                    break
            times.append(time.perf_counter() - t0)
            time.sleep(0.05)
        subprocess.run(tmux + ["kill-server"], capture_output=True)
        folder.cleanup()
        results[name] = times
    return results


async def bare_pilot_press_ms(presses: int = 40) -> float:
    """The same key press on a bare Textual app (one Static, a footer): Pilot's own cost."""
    from textual.app import App
    from textual.binding import Binding
    from textual.widgets import Footer, Static

    class Bare(App):
        BINDINGS = [Binding("n", "next", "Next")]
        count = 0

        def compose(self):
            yield Static("0", id="count")
            yield Footer()

        def action_next(self) -> None:
            self.count += 1
            self.query_one("#count", Static).update(str(self.count))

    app = Bare()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        t0 = time.perf_counter()
        for _ in range(presses):
            await pilot.press("n")
        return 1000 * (time.perf_counter() - t0) / presses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,3000")
    parser.add_argument("--steps", type=int, default=60, help="steps measured in each of two passes")
    parser.add_argument("--repeat", type=int, default=5, help="runs of the first-frame measurement")
    parser.add_argument("--presses", type=int, default=20, help="key presses timed under tmux")
    parser.add_argument("--no-tmux-keys", action="store_true", help="skip the key-to-screen measurement in tmux")
    args = parser.parse_args()

    frames, graphs, bare = first_frame_headless(args.repeat)
    print(f"first frame, lecture (headless, from process start): median {median_ms(frames):.0f} ms "
          f"(graph drawn {median_ms(graphs):.0f} ms; `python -c pass` {median_ms(bare):.0f} ms)  target < 1000 ms")
    tmux = first_frame_tmux(args.repeat)
    if tmux:
        print(f"first frame, lecture (tmux, launch → status bar on screen): median {median_ms(tmux):.0f} ms")
    if not args.no_tmux_keys:
        latency = key_latency_tmux(args.presses)
        if latency:
            stepper, bare = latency["stepper"], latency["bare textual"]
            print(f"key → screen (tmux, send-keys n → capture-pane shows the next step), {len(stepper)} presses: "
                  f"stepper median {median_ms(stepper):.0f} ms p95 {p95_ms(stepper):.0f} ms; bare Textual app "
                  f"median {median_ms(bare):.0f} ms p95 {p95_ms(bare):.0f} ms; ratio "
                  f"{median_ms(stepper) / median_ms(bare):.2f}")
    print()
    header = (f"{'nodes':>6} {'drawing':>14} {'trace s':>8} {'layout s':>9} {'apply ms':>9} {'p95':>6} "
              f"{'+render':>8} {'p95':>6} {'pilot ms':>9} {'state_at':>9} {'full paint':>10} {'jump ms':>8}")
    print(f"(baseline: one Pilot key press on a bare Textual app takes {asyncio.run(bare_pilot_press_ms()):.0f} ms)")
    print(header)
    for nodes in (int(n) for n in args.sizes.split(",")):
        r = asyncio.run(measure_size(nodes, args.steps))
        print(f"{r['nodes']:>6} {r['drawing']:>14} {r['trace_s']:>8.2f} {r['layout_s']:>9.2f} {r['apply_ms']:>9.2f} "
              f"{r['apply_p95_ms']:>6.2f} {r['render_ms']:>8.2f} {r['render_p95_ms']:>6.2f} {r['pilot_ms']:>9.2f} "
              f"{r['state_at_ms']:>9.2f} {r['full_repaint_ms']:>10.2f} {r['jump_ms']:>8.2f}", flush=True)
    print("\napply: the stepper's update of all panes for one step; +render: and painting their visible lines;"
          "\npilot: one key press end to end; state_at: core's O(k) state at the same k (baseline);"
          "\nfull paint: gradviz.draw's TraceDrawing.grid for the same step (baseline). Target: +render < 16 ms.")


if __name__ == "__main__":
    main()
