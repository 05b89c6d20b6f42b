"""The dashboard's panels: each draws part of a RunView at the cursor's logged step.

Attributes down: the screen sets ``index`` (the cursor), ``selected`` (the chosen layer),
``log_scale`` and bumps ``version`` when records arrive; every panel redraws from the
shared RunView, sampling at most a few points per character cell.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from gradviz.monitor.heat import log_range, render_distribution, render_heatmap, heat_legend, render_mask
from gradviz.monitor.plain import fmt
from gradviz.monitor.plot import Line, legend, render_plot, sample_indices
from gradviz.monitor.state import RunView
from gradviz.penalty import FORMULAS
from gradviz.rundir.status import read_rank_check, read_val_nonfinite
from gradviz.textfit import fit_text

EXTRA_COLORS = ("green", "yellow", "magenta", "blue")
STATE_STYLES = {"starting": "black on yellow", "running": "black on green", "paused": "black on yellow",
                "finished": "black on cyan", "stopped": "black on yellow", "failed": "white on red", "lost": "white on red"}


class RunPanel(Widget):
    """Base of the panels: a RunView, the cursor and the display options."""

    index: reactive[int] = reactive(-1)
    selected: reactive[int] = reactive(0)
    log_scale: reactive[bool] = reactive(False)
    following: reactive[bool] = reactive(True)
    version: reactive[int] = reactive(0)

    def __init__(self, view: RunView, **kwargs: Any):
        super().__init__(**kwargs)
        self.view = view

    def value_at(self, values: list[float]) -> float:
        """The value of a series at the cursor (NaN when out of range)."""
        return values[self.index] if 0 <= self.index < len(values) else math.nan

    def waiting(self) -> Text:
        return Text("waiting for the first logged step…", style="dim")

    def cursor_x(self) -> float | None:
        """The cursor's step, marked on plots only when replaying (live, it is the right edge)."""
        if self.following or not 0 <= self.index < len(self.view.series.steps):
            return None
        return self.view.series.steps[self.index]

    def one_line(self, text: Text, *shorter: Text) -> Text:
        """A title on one row of the panel: `text`, or the first declared shorter form that
        fits, or whole words of the shortest and ' …' (never a word or number cut)."""
        line = fit_text(text, max(1, self.size.width), shorter)
        line.no_wrap = True
        return line


class LossPanel(RunPanel):
    """Training loss, validation loss (per epoch) and the L2 penalty over steps, epochs,
    samples seen or wall-clock seconds (`x_axis`, which `x` cycles)."""

    x_axis: reactive[str] = reactive("step")

    def render(self) -> RenderableType:
        from gradviz.monitor.x_axis import at_steps, x_values

        s = self.view.series
        if self.index < 0:
            return self.waiting()
        xs = x_values(self.view, self.x_axis)
        short = set(self.view.short_windows())
        lines = [Line("train", [x for i, x in enumerate(xs) if i not in short],
                      [y for i, y in enumerate(s.loss) if i not in short], "cyan")]
        if short:  # an epoch's partial window: its own marked points, outside the line of full windows
            lines.append(Line("short window", [xs[i] for i in sorted(short)], [s.loss[i] for i in sorted(short)],
                              "blue", markers=True))
        if s.val_steps:
            lines.append(Line("val", at_steps(self.view, self.x_axis, s.val_steps), s.val_loss, "yellow", markers=True))
        # The penalty is named by its formula, λ·Σ‖θ‖² or the slide's λ·Σ‖θ‖₂: the form in use.
        penalty = f"penalty {FORMULAS.get(self.view.meta.get('l2_form') or 'squared', '')}".rstrip()
        if any(p > 0 for p in s.penalty[-50:]):
            lines.append(Line(penalty, xs, s.penalty, "magenta"))
        step = s.steps[self.index]
        values = {"train": fmt(self.value_at(s.loss)), penalty: fmt(self.value_at(s.penalty))}
        k = bisect.bisect_right(s.val_steps, step) - 1
        if k >= 0:
            acc = f" ({s.val_acc[k]:.1%})" if math.isfinite(s.val_acc[k]) else ""
            values["val"] = fmt(s.val_loss[k]) + acc
        title = legend(lines, self.log_scale, values, self.size.width)
        curves = dict(s.extra)
        if len({v for v in s.lr if math.isfinite(v)}) > 1:  # a schedule: the learning rate gets its own plot
            curves = {"lr": s.lr, **curves}
        extra = list(curves)[: max(0, (self.size.height - 4) // 4)]  # each extra metric: its own small plot
        height = max(2, self.size.height - 1 - 4 * len(extra))
        cursor = None if self.cursor_x() is None else xs[self.index]
        rows = render_plot(lines, self.size.width, height, self.log_scale, (xs[0], xs[-1]), cursor_x=cursor)
        every = self.view.log_every
        if every and every > 1 and rows:  # each point averages a window: say so on the step axis
            rows[-1] = _axis_note(rows[-1], (f"train: mean of each {every}-step window", f"mean/{every} steps"))
        for k, name in enumerate(extra):
            line = Line(name, xs, curves[name], EXTRA_COLORS[k % len(EXTRA_COLORS)])
            rows.append(self.one_line(legend([line], False, {name: fmt(self.value_at(curves[name]))},
                                             self.size.width)))
            rows += render_plot([line], self.size.width, 3, False, (xs[0], xs[-1]), cursor_x=cursor)
        return Group(self.one_line(title), *rows)


class LayerPanel(RunPanel):
    """The chosen layer's gradient norm over steps, beside the total; or (d) its gradient
    values' distribution over time."""

    distribution: reactive[bool] = reactive(False)

    def render(self) -> RenderableType:
        s, layers = self.view.series, self.view.layers
        if self.index < 0 or not layers:
            return self.waiting()
        layer = layers[self.selected % len(layers)]
        if self.distribution:
            return self._distribution(layer)
        norms = s.grad.get(layer, [])
        lines = [Line("‖∇‖ total", s.steps, s.grad_total, "grey50"), Line(f"‖∇‖ {layer}", s.steps, norms, "green")]
        values = {lines[0].name: fmt(self.value_at(s.grad_total)), lines[1].name: fmt(self.value_at(norms))}
        title = legend(lines, self.log_scale, values, self.size.width)
        rows = render_plot(lines, self.size.width, max(2, self.size.height - 1), self.log_scale,
                           (s.steps[0], s.steps[-1]), cursor_x=self.cursor_x())
        return Group(self.one_line(title), *rows)


    def _distribution(self, layer: str) -> RenderableType:
        v = self.view
        frames = v.hists.get(layer)
        if not frames:
            return Text(f"no gradient histograms of {layer} (yet): --hist-every", style="dim")
        step = v.series.steps[self.index] if 0 <= self.index < len(v.series.steps) else v.hist_steps[-1]
        upto = max(0, bisect.bisect_right(v.hist_steps, step) - 1)
        steps = f"step {v.hist_steps[0]}→{v.hist_steps[upto]}"
        title = Text(f"∇ values of {layer}, {steps}", style="bold")
        keys = Text(" · colour log count · d: norms", style="dim")
        rows = render_distribution(frames, v.hist_edges, upto, self.size.width, max(1, self.size.height - 1), short)
        # the notes go before the layer's name and the steps do
        shorter = (title + keys[:len(" · colour log count")], title, Text(f"∇ {layer}, {steps}", style="bold"))
        return Group(self.one_line(title + keys, *shorter), *rows)


class HeatPanel(RunPanel):
    """Gradient norm of every layer over steps: a heatmap on a log colour scale."""

    def render(self) -> RenderableType:
        s, layers = self.view.series, self.view.layers
        if self.index < 0 or not layers:
            return self.waiting()
        width, height = self.size.width, max(1, self.size.height - 1)
        rows = render_heatmap(layers, s.grad, self.index, width, height, self.selected % len(layers), short)
        idx = sample_indices(self.index + 1, max(1, width))
        lo, hi = log_range(layers, s.grad, idx)
        title = heat_legend(10 ** lo, 10 ** hi, short)
        if title.cell_len + 11 <= width:  # the words only where they fit: never a cut legend
            title = Text("log colour ", style="dim") + title
        return Group(self.one_line(title), *rows)


class MaskPanel(RunPanel):
    """The dropout masks of the current sample: kept (█) and dropped (·) units per layer."""

    def render(self) -> RenderableType:
        dropout = self.view.meta.get("dropout")
        if self.index < 0:
            return self.waiting()
        if not dropout:
            skipped = self.view.meta.get("dropout_unrecorded")
            note = f" ({', '.join(skipped)} not recorded: channel-wise)" if skipped else ""
            return Text("this model has no nn.Dropout layers" + note, style="dim")
        sample = self.view.masks_at(self.view.series.steps[self.index])
        if sample is None:
            return Text("no mask sample yet", style="dim")
        names = list(sample["layers"])
        budget = max(1, self.size.height // max(1, len(names)) - 1)
        head = f"step {sample['step']}: first example of the batch"
        if len(head) > self.size.width:
            head = f"step {sample['step']}, example 1"
        rows: list[Text] = [Text(head, style="dim")]
        for name in names:
            rows += render_mask(name, sample["layers"][name], self.size.width, budget)
        return Group(*(self.one_line(row) for row in rows[: self.size.height]))


class ProgressPanel(RunPanel):
    """State, epoch, step, ETA, throughput, device, memory, world size and warnings."""

    note: reactive[str] = reactive("")

    def render(self) -> RenderableType:
        v = self.view
        state = v.state
        meta = v.meta
        head = Text(f" {state.upper()} ", style=STATE_STYLES.get(state, "reverse"))
        head.append(f"  {meta.get('spec') or v.config.get('spec', '?')}  ", style="bold")
        head.append(v.paths.root.name, style="dim")
        if meta:
            head.append(f"  {meta.get('device')} ({meta.get('device_name')})  world {meta.get('world_size', 1)}")
        if self.note:
            head.append(f"  {self.note}", style="yellow")
        update = v.accumulation()
        if update and head.cell_len + len(update) + 2 <= self.size.width:  # only whole, where it fits
            head.append(f"  {update}", style="dim")
        if self.index < 0:
            body = Text(v.status.get("message", "starting the trainer (importing torch)…"),
                        style="red" if state == "failed" else "dim")
            return Group(head, body)
        record = v.records[self.index]
        # Live, the step the trainer reached (its heartbeat), not the last logged one.
        live = self.following and self.index == len(v.records) - 1
        step = max(record["step"], v.step_reached() or 0) if live else record["step"]
        total = v.total_steps or step
        bar_width = max(10, min(40, self.size.width // 4))
        done = min(1.0, step / max(1, total))
        line = Text(f"epoch {record['epoch']}/{v.total_epochs or '?'}  step {step}/{total}  ")
        filled = round(done * bar_width)
        line.append("━" * filled, style="green").append("━" * (bar_width - filled), style="grey30")
        line.append(f" {done:.0%}")
        steps_s, samples_s = v.throughput(self.index)
        eta = v.eta_seconds(self.index) if state in ("running", "starting") else None
        if eta is not None:
            line.append(f"  ETA {_duration(eta)}")
        extras = []  # in order of importance; each shown only where it fits whole
        if steps_s:
            extras.append(f"  {steps_s:,.0f} steps/s")
        if samples_s:
            extras.append(f"  {samples_s:,.0f} samples/s")
        if record.get("mem"):
            where = "CUDA" if str(meta.get("device", "")).startswith("cuda") else "RSS"
            extras.append(f"  mem {record['mem'] / 2**20:,.0f} MiB ({where})")
        for extra in extras:
            if line.cell_len + len(extra) <= self.size.width:
                line.append(extra)
        rows = [self.one_line(head), self.one_line(line)]
        warning = self._warning()
        if warning is not None:
            rows.append(self.one_line(warning))
        elif v.done:  # exact steps from status.json, not the last logged one, on a row of their own
            rows.append(self.one_line(Text(v.ending(), style="dim")))
        return Group(*rows)

    def _warning(self) -> Text | None:
        v = self.view
        if v.state == "failed":
            step = v.status.get("failed_at_step")
            at = f" at step {step}" if step is not None else ""
            return Text(f"failed{at}: {v.status.get('message', '')}", style="bold red")
        if v.state == "lost":
            return Text("the trainer process is gone (killed?): showing what it logged", style="bold red")
        nan = v.first_nonfinite()
        if nan and nan.get("message"):  # "NaN at step 412, born at fc2 → log (forward)"
            return Text(f"{nan['message']} · gradviz step RUN_DIR opens it", style="bold red")
        if nan:
            where = f", first in layer {nan['layer']}" if nan.get("layer") else ""
            return Text(f"non-finite loss or gradient from step {nan['step']}{where}", style="bold red")
        val = read_val_nonfinite(v.status)
        if val:  # "validation loss NaN at epoch 1 (step 4)"
            return Text(val["message"], style="bold red")
        check = read_rank_check(v.status)
        if check:
            return Text(check, style="bold red")
        return None


class ScrubBar(RunPanel):
    """Where the cursor is in the run: a track with a marker, 'live' when following."""

    def render(self) -> RenderableType:
        s = self.view.series
        if self.index < 0:
            return Text("")
        label = Text(f" step {s.steps[self.index]} ", style="bold")
        live = self.following and not self.view.done  # a finished run is a replay, never "live"
        label.append("live" if live else "replay ←/→ home/end", style="green" if live else "yellow")
        label.append(" ")
        track = max(5, self.size.width - label.cell_len - 2)
        at = round(self.index / max(1, len(s.steps) - 1) * (track - 1))
        bar = Text("─" * at, style="grey50").append("●", style="bold yellow").append("─" * (track - at - 1), style="grey50")
        return label + Text("▕") + bar + Text("▏")


def _axis_note(axis: Text, notes: tuple[str, ...]) -> Text:
    """The x-axis label row with the first note that fits whole in its gap, centred."""
    plain = axis.plain
    stripped = plain.strip()
    first_end = len(plain) - len(plain.lstrip()) + len(stripped.split(" ")[0])
    last_start = len(plain.rstrip()) - len(stripped.split(" ")[-1])
    gap = last_start - first_end
    for note in notes:
        if len(note) + 4 <= gap:
            at = first_end + (gap - len(note)) // 2
            return Text(plain[:at]) + Text(note, style="dim") + Text(plain[at + len(note):])
    return axis


def short(value: float) -> str:
    """Three significant digits, for narrow columns."""
    return fmt(value, digits=3)


def _duration(seconds: float) -> str:
    """1h02m, 3m05s or 42s."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
