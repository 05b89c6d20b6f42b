"""`gradviz batches`: SGD (B=1), mini-batch and full-batch GD on y ≈ w·x + b, on one map."""

from __future__ import annotations

import argparse
import sys

from gradviz.commands.common import print_map, seed_value


def add_parser(subparsers) -> None:
    """Register `batches`."""
    parser = subparsers.add_parser(
        "batches", help="SGD vs mini-batch vs full-batch gradient descent on least squares, on one loss map",
        description="Fit y ≈ w·x + b to N points made in code with mini-batch SGD at several batch sizes from one "
                    "start, and draw every path on the map of the full-data loss: small batches are noisy and make "
                    "many updates per epoch, the full batch is smooth and makes one.")
    parser.add_argument("--n", type=int, default=64, help="number of points (default 64)")
    parser.add_argument("--batch-sizes", default="1,8,N", metavar="B[,B…]", help="batch sizes; N is all points (default 1,8,N)")
    parser.add_argument("--model", action="store_true",
                        help="fit the non-convex y ≈ sin(w·x + b) (data from w=3, b=0.5) instead of the line: from "
                             "one start, B = 1 and B = N end in different minima")
    parser.add_argument("--epochs", type=int, default=None, help="passes over the data (default 3; 5 with --model)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate η (default 0.05; 0.2 with --model)")
    parser.add_argument("--from", dest="start", default=None, metavar="w=…,b=…",
                        help="start (default w=-2,b=2.5; w=0.5,b=0 with --model)")
    parser.add_argument("--seed", type=seed_value, default=0, help="seed of the points and the shuffles (default 0)")
    parser.add_argument("--cells", choices=("half", "shade"), default="half", help="half-blocks in colour, or shade characters")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="also write the map: .svg, .png, or .gif (the paths growing update by update)")
    from gradviz.commands.chart_options import add_chart_options

    add_chart_options(parser)
    parser.set_defaults(func=run)


# One update is a few numpy calls, ~10 µs on the 2-core test machine, and each keeps its θ
# for the map: 2e6 updates is about 20 s and 32 MB.
MAX_UPDATES = 2_000_000


def build(args: argparse.Namespace):
    """The points, the paths and the map's window, from the options."""
    import math

    import numpy as np

    from gradviz.budgets import Factor, check_work
    from gradviz.descent.batches import batch_path
    from gradviz.descent.objective import DescentError
    from gradviz.descent.problems import global_minimum
    from gradviz.descent.runs import parse_start
    from gradviz.descent.surface import fit_window

    problem = problem_of(args)
    if not 2 <= args.n <= 100_000:
        raise DescentError(f"--n must lie in 2..100000, got {args.n}")
    if not 1 <= args.epochs <= 1000:
        raise DescentError(f"--epochs must lie in 1..1000, got {args.epochs}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise DescentError(f"--lr must be a positive number, got {args.lr}")
    sizes = []
    for part in args.batch_sizes.split(","):
        part = part.strip()
        try:
            sizes.append(args.n if part.upper() == "N" else int(part))
        except ValueError:
            raise DescentError(f"--batch-sizes {args.batch_sizes}: {part!r} is not a whole number or N") from None
    if len(sizes) > 6:
        raise DescentError("--batch-sizes: at most 6 on one map")
    check_work("batches", [Factor("epochs", args.epochs, "--epochs"),
                           Factor("updates per epoch over every batch size", sum(math.ceil(args.n / b) for b in sizes if b >= 1),
                           "--n or raise the --batch-sizes")], MAX_UPDATES, "updates")
    points = problem.make_points(args.n, args.seed)
    start = parse_start(args.start, ("w", "b"))
    paths = [batch_path(points, b, args.epochs, args.lr, start, args.seed, problem.gradient) for b in sizes]
    best = global_minimum(problem, points)
    finite = [p.thetas for p in paths if np.all(np.isfinite(p.thetas)) and np.abs(p.thetas).max() < 1e6]
    window = fit_window(finite + [best[None, :], start[None, :]], pad=0.1)
    return points, paths, best, window


def problem_of(args: argparse.Namespace):
    """The problem (line, or sine with --model), its defaults filled into args where not given."""
    from gradviz.descent.problems import PROBLEMS

    problem = PROBLEMS["sine" if args.model else "line"]
    args.epochs = problem.epochs if args.epochs is None else args.epochs
    args.lr = problem.lr if args.lr is None else args.lr
    args.start = problem.start if args.start is None else args.start
    return problem


def _updates(n: int) -> str:
    return f"{n} update" if n == 1 else f"{n} updates"


def tracks(paths, epochs: int, verdicts: list[str] | None = None):
    """One Track per batch size, noting its updates per epoch, where it ended and (for the
    non-convex model) which minimum that is."""
    from gradviz.descent.surface import Track

    verdicts = verdicts or [""] * len(paths)
    return [Track(f"B={p.batch_size}", p.thetas,
                  f"{_updates(p.updates_per_epoch)}/epoch, {p.updates_per_epoch * epochs} in all, "
                  f"ends at w={p.thetas[-1][0]:.3g}, b={p.thetas[-1][1]:.3g}" + (f": {v.split(' (')[0]}" if v else ""))
            for p, v in zip(paths, verdicts)]


def verdicts(args, points, paths, best) -> list[str]:
    """Which minimum each path ended in (the line has only one: no verdicts)."""
    from gradviz.descent.problems import verdict

    problem = problem_of(args)
    return [] if problem.convex else [verdict(problem, points, p.thetas[-1], best) for p in paths]


def grown(whole, upto: int):
    """The tracks cut after update `upto`: one frame of a GIF in which the paths grow."""
    from dataclasses import replace

    return [replace(t, points=t.points[: upto + 1], note=f"update {min(upto, len(t.points) - 1)}") for t in whole]


def batches_surface(points, window, nx: int, ny: int, args=None):
    """The full-data loss over the window."""
    import numpy as np

    from gradviz.descent.problems import PROBLEMS
    from gradviz.descent.surface import surface_of

    loss = (problem_of(args) if args is not None else PROBLEMS["line"]).loss

    def grid(xs, ys):
        w, b = np.meshgrid(xs, ys)
        return loss(points, w, b)

    return surface_of(grid, window, nx, ny, ("w", "b", "L"))


def title(args, best) -> str:
    """The heading of the map."""
    return (f"L(w,b) of {problem_of(args).formula} on all N={args.n} points; η={args.lr:g}, {args.epochs} epochs; "
            f"min ({best[0]:.3g}, {best[1]:.3g})")


def render(args, width: int, height: int, cells: str):
    """The terminal map (rich Text) at width × height."""
    from gradviz.descent.terminal import render_map

    points, paths, best, window = build(args)
    cols, rows = max(10, width - 10), max(4, height - 5 - len(paths))
    surface = batches_surface(points, window, cols, rows * 2 if cells == "half" else rows, args)
    return render_map(surface, tracks(paths, args.epochs, verdicts(args, points, paths, best)), width, height,
                      cells=cells, title=title(args, best))


def summary(args) -> str:
    """Plain text: per batch size, updates per epoch and θ with the full-data loss at each epoch's end."""
    points, paths, best, _ = build(args)
    loss = problem_of(args).loss
    lines = [title(args, best), "update per batch of B examples: θ ← θ − η·∇L_B(θ), L_B the batch's mean loss", ""]
    ends = verdicts(args, points, paths, best) or [""] * len(paths)
    for p, end in zip(paths, ends):
        lines.append(f"B={p.batch_size}: {_updates(p.updates_per_epoch)} per epoch" + (f"; ends {end}" if end else ""))
        lines.append(f"  {'epoch':>5}  {'update':>6}  {'w':>9}  {'b':>9}  {'L(w,b)':>9}")
        for e, i in enumerate((0,) + p.epoch_ends):
            w, b = p.thetas[i]
            lines.append(f"  {e:>5}  {i:>6}  {w:>9.4g}  {b:>9.4g}  {float(loss(points, w, b)):>9.4g}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """The map on a terminal (with the summary), the summary alone otherwise; SVG with -o."""
    if args.output:
        from pathlib import Path

        from gradviz.descent.svg import map_svg
        from gradviz.draw.chart_file import chart_format, growth_steps, write_chart

        out = Path(args.output)
        gif = chart_format(out, "the map") == ".gif"
        points, paths, best, window = build(args)
        surface = batches_surface(points, window, 90, 90, args)
        whole = tracks(paths, args.epochs, verdicts(args, points, paths, best))
        longest = max(len(t.points) for t in whole) - 1
        frames = [map_svg(surface, grown(whole, k), title(args, best)) for k in growth_steps(longest)] if gif else []
        frames.append(map_svg(surface, whole, title(args, best)))
        path = write_chart(out, frames, args.theme, args.frame_ms, args.scale, "the map")
        print(f"wrote {path}" + (f" (the paths growing over {longest} updates, {args.frame_ms} ms a frame)" if gif else ""),
              file=sys.stderr)
    return print_map(lambda columns, rows: render(args, columns, rows, args.cells), lambda: summary(args))
