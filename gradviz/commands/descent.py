"""`gradviz descent EXPR`: gradient descent on f(x, y), drawn on its surface, step by step."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from gradviz.commands.chart_options import add_chart_options
from gradviz.errors import GradvizError
from gradviz.optimizers import optimizer_names, optimizers_help


def add_parser(subparsers) -> None:
    """Register `descent`."""
    parser = subparsers.add_parser(
        "descent", help=f"watch gradient descent ({', '.join(optimizer_names())}) on a function of two inputs",
        description="Run gradient descent on EXPR, a function of two inputs, every gradient from gradviz's own "
                    "reverse pass. On a terminal: the map of f with the paths growing step by step (n/p/space, "
                    "s opens the stepper at θ). Otherwise: a verdict per path and every step as a table.")
    parser.add_argument("expr", metavar="EXPR", help="f of two inputs, e.g. 'x**2 + 10*y**2', or @FILE")
    parser.add_argument("--from", dest="starts", action="append", default=[], metavar="x=…,y=…",
                        help="starting point (repeatable: several starts; default: both inputs 1)")
    parser.add_argument("--lr", default="0.1", metavar="η[,η…]", help="learning rate(s), e.g. 0.01,0.1,1.1 (default 0.1)")
    parser.add_argument("--optimizer", default="gd", metavar="NAME[,NAME…]", help=f"comma-separated: {optimizers_help()}")
    parser.add_argument("--momentum", type=float, default=0.9, help="momentum μ (as torch.optim.SGD; default 0.9)")
    parser.add_argument("--steps", type=int, default=200, help="most updates per path (default 200)")
    parser.add_argument("--window", metavar="x=LO:HI,y=LO:HI", help="the map's window (default: fits the paths)")
    parser.add_argument("--cells", choices=("half", "shade"), default="half",
                        help="half-blocks in colour (two map rows per line), or shade characters")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="also write the map with the paths: .svg, .png, or .gif (the paths growing step by step)")
    add_chart_options(parser)
    parser.add_argument("--layout", choices=("overlay", "side"), default="overlay",
                        help="all paths on one map, or one map per optimizer side by side (--no-tui and SVG)")
    parser.add_argument("--no-tui", action="store_true", help="print the map and the verdicts instead of the app")
    parser.set_defaults(func=run)


def build_run(args: argparse.Namespace):
    """Parse EXPR and the options, run every path: a DescentRun."""
    import numpy as np

    from gradviz.commands.common import read_source
    from gradviz.descent.objective import DescentError, parse_objective
    from gradviz.descent.runs import parse_optimizers, parse_rates, parse_start, parse_window, run_descent

    source = read_source(args.expr)
    if source.kind != "expression":
        raise GradvizError(f"{args.expr}: descent takes an expression of two inputs, not a model spec "
                           "(see gradviz landscape for models)")
    objective = parse_objective(source.text)
    starts = [parse_start(s, objective.names) for s in args.starts] or [np.ones(2)]
    if not 0 <= args.momentum < 1:
        raise DescentError(f"--momentum must lie in [0, 1), got {args.momentum}")
    window = parse_window(args.window, objective.names) if args.window else None
    return run_descent(objective, starts, parse_optimizers(args.optimizer), parse_rates(args.lr), args.steps,
                       args.momentum, window)


def run(args: argparse.Namespace) -> int:
    """Run the paths; the app on a terminal, else the verdicts and the tables."""
    from gradviz.descent.draw import run_svg, run_svg_frames
    from gradviz.draw.chart_file import chart_format, write_chart

    if args.output:
        chart_format(Path(args.output), "the map")  # refuse a bad name before any work
    descent = build_run(args)
    if args.output:
        gif = Path(args.output).suffix.lower() == ".gif"
        frames = run_svg_frames(descent, layout=args.layout) if gif else [run_svg(descent, layout=args.layout)]
        path = write_chart(Path(args.output), frames, args.theme, args.frame_ms, args.scale, "the map")
        steps = max(len(p.thetas) for p in descent.paths) - 1
        print(f"wrote {path}" + (f" (the paths growing over {steps} steps, {args.frame_ms} ms a frame)" if gif else ""),
              file=sys.stderr)
    if not sys.stdout.isatty():
        from gradviz.descent.table import run_text

        sys.stdout.write(run_text(descent))
        return 0
    if args.no_tui:
        from rich.console import Console

        from gradviz.descent.draw import run_map, side_by_side_map
        from gradviz.descent.table import verdict_lines

        size = shutil.get_terminal_size()
        console = Console()
        height = max(16, size.lines - 2 - len(descent.paths))
        if args.layout == "side":
            console.print(side_by_side_map(descent, size.columns, height, args.cells))
        else:
            console.print(run_map(descent, size.columns, height, args.cells))
        for line in verdict_lines(descent):
            console.print(line, highlight=False, markup=False)  # the objective is the user's text
        return 0
    from gradviz.tui.descent import DescentApp

    DescentApp(descent, cells=args.cells).run()
    return 0
