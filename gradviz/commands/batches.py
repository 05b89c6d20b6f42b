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
    parser.add_argument("--epochs", type=int, default=3, help="passes over the data (default 3)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate η (default 0.05)")
    parser.add_argument("--from", dest="start", default="w=-2,b=2.5", metavar="w=…,b=…", help="start (default w=-2,b=2.5)")
    parser.add_argument("--seed", type=seed_value, default=0, help="seed of the points and the shuffles (default 0)")
    parser.add_argument("--cells", choices=("half", "shade"), default="half", help="half-blocks in colour, or shade characters")
    parser.add_argument("-o", "--output", metavar="FILE.svg", help="also write the map as SVG")
    parser.set_defaults(func=run)


# One update is a few numpy calls, ~10 µs on the 2-core test machine, and each keeps its θ
# for the map: 2e6 updates is about 20 s and 32 MB.
MAX_UPDATES = 2_000_000


def build(args: argparse.Namespace):
    """The points, the paths and the map's window, from the options."""
    import math

    import numpy as np

    from gradviz.budgets import Factor, check_work
    from gradviz.descent.batches import batch_path, least_squares_solution, make_points
    from gradviz.descent.objective import DescentError
    from gradviz.descent.runs import parse_start
    from gradviz.descent.surface import fit_window

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
    points = make_points(args.n, args.seed)
    start = parse_start(args.start, ("w", "b"))
    paths = [batch_path(points, b, args.epochs, args.lr, start, args.seed) for b in sizes]
    best = least_squares_solution(points)
    finite = [p.thetas for p in paths if np.all(np.isfinite(p.thetas)) and np.abs(p.thetas).max() < 1e6]
    window = fit_window(finite + [best[None, :], start[None, :]], pad=0.1)
    return points, paths, best, window


def _updates(n: int) -> str:
    return f"{n} update" if n == 1 else f"{n} updates"


def tracks(paths, epochs: int):
    """One Track per batch size, noting its updates per epoch and where it ended."""
    from gradviz.descent.surface import Track

    return [Track(f"B={p.batch_size}", p.thetas,
                  f"{_updates(p.updates_per_epoch)}/epoch, {p.updates_per_epoch * epochs} in all, "
                  f"ends at w={p.thetas[-1][0]:.3g}, b={p.thetas[-1][1]:.3g}") for p in paths]


def batches_surface(points, window, nx: int, ny: int):
    """The full-data loss over the window."""
    import numpy as np

    from gradviz.descent.batches import loss
    from gradviz.descent.surface import surface_of

    def grid(xs, ys):
        w, b = np.meshgrid(xs, ys)
        return loss(points, w, b)

    return surface_of(grid, window, nx, ny, ("w", "b", "L"))


def title(args, best) -> str:
    """The heading of the map."""
    return (f"L(w,b) of y≈w·x+b on all N={args.n} points; η={args.lr:g}, {args.epochs} epochs; "
            f"min ({best[0]:.3g}, {best[1]:.3g})")


def render(args, width: int, height: int, cells: str):
    """The terminal map (rich Text) at width × height."""
    from gradviz.descent.terminal import render_map

    points, paths, best, window = build(args)
    cols, rows = max(10, width - 10), max(4, height - 5 - len(paths))
    surface = batches_surface(points, window, cols, rows * 2 if cells == "half" else rows)
    return render_map(surface, tracks(paths, args.epochs), width, height, cells=cells, title=title(args, best))


def summary(args) -> str:
    """Plain text: per batch size, updates per epoch and θ with the full-data loss at each epoch's end."""
    from gradviz.descent.batches import loss

    points, paths, best, _ = build(args)
    lines = [title(args, best), ""]
    for p in paths:
        lines.append(f"B={p.batch_size}: {_updates(p.updates_per_epoch)} per epoch")
        lines.append(f"  {'epoch':>5}  {'update':>6}  {'w':>9}  {'b':>9}  {'L(w,b)':>9}")
        for e, i in enumerate((0,) + p.epoch_ends):
            w, b = p.thetas[i]
            lines.append(f"  {e:>5}  {i:>6}  {w:>9.4g}  {b:>9.4g}  {float(loss(points, w, b)):>9.4g}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """The map on a terminal (with the summary), the summary alone otherwise; SVG with -o."""
    if args.output:
        from gradviz.descent.svg import map_svg, write_svg

        points, paths, best, window = build(args)
        svg = map_svg(batches_surface(points, window, 90, 90), tracks(paths, args.epochs), title(args, best))
        print(f"wrote {write_svg(svg, args.output)}", file=sys.stderr)
    return print_map(lambda columns, rows: render(args, columns, rows, args.cells), lambda: summary(args))
