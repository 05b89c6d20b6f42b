"""`gradviz methods EXPR`: numerical, symbolic and automatic differentiation side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from gradviz.commands.common import read_source, seed_value
from gradviz.errors import ExportError, GradvizError


def add_parser(subparsers) -> None:
    """Register `methods`."""
    parser = subparsers.add_parser(
        "methods", help="compare finite differences, SymPy and AD on one function at one point",
        description="The lecture's three ways to differentiate: finite differences over h = 1e-1 … 1e-15 "
                    "(error against AD, log-log), SymPy's closed form (and its swell), and AD's values.")
    parser.add_argument("source", metavar="EXPR", help="a scalar expression of scalar inputs, or @FILE with one")
    parser.add_argument("--at", action="append", default=[], metavar="NAME=VALUE",
                        help="the point: x1=0.5,x2=1 (repeatable; @FILE's '# at:' lines are defaults)")
    parser.add_argument("--wrt", metavar="INPUT", help="the input whose error curve and swell are shown (default: the first)")
    parser.add_argument("--depth", type=int, default=6, metavar="K",
                        help="compose f with itself up to K times to show expression swell (0: skip; default 6)")
    parser.add_argument("-o", "--output", "--svg", dest="svg", metavar="FILE",
                        help="also write the error curve: .svg or .png (--svg is the older name)")
    from gradviz.commands.chart_options import add_chart_options

    add_chart_options(parser, animated=False)
    parser.add_argument("--full", action="store_true", help="also print every step's estimates and errors")
    parser.add_argument("--seed", type=seed_value, default=0, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compare the three methods and print them (and write the SVG when asked)."""
    from rich.console import Console

    from gradviz.methods.compare import NonFinitePoint, compare
    from gradviz.sources.bindings import parse_at
    from gradviz.sources.expr import trace_expression
    from gradviz.streams import printed_stdout
    from gradviz.views.methods import methods_report

    if not 0 <= args.depth <= 12:
        raise GradvizError(f"--depth must lie in 0..12 (the closed form grows about fourfold per level), got {args.depth}")
    if args.svg is not None and Path(args.svg).suffix.lower() not in (".svg", ".png"):
        raise ExportError(f"{args.svg}: the error curve is written as .svg or .png")
    if args.svg is not None:
        from gradviz.draw.chart_file import chart_format

        chart_format(Path(args.svg), "the error curve")  # Pillow for .png, before any work
    source = read_source(args.source)
    if source.kind == "spec":
        raise GradvizError(f"{args.source}: methods takes an expression (a model's tensors have too many inputs "
                           "for finite differences per element and for SymPy)")
    at = {**parse_at(source.at), **parse_at(args.at)}
    trace = trace_expression(source.text, at, {}, args.seed, "float64", ("reverse",))
    console = Console(file=printed_stdout())
    try:
        comparison = compare(trace, source.text.replace("\n", "; "), args.wrt, args.depth)
    except NonFinitePoint as exc:
        from gradviz.views.trace_report import nonfinite_note

        console.print(nonfinite_note(exc.trace))
        return exc.exit_code
    console.print(methods_report(comparison, console.width, args.full))
    if args.svg is not None:
        from gradviz.methods.svg import error_curve_svg

        forward, central = comparison.sweeps[comparison.wrt]
        title = f"∂{comparison.output}/∂{comparison.wrt} by finite differences at " + \
            ", ".join(f"{k} = {v:g}" for k, v in comparison.point.items())
        from gradviz.draw.chart_file import write_chart

        write_chart(Path(args.svg), [error_curve_svg(forward, central, title)], args.theme, scale=args.scale,
                    what="the error curve")
        console.print(f"wrote {args.svg}", markup=False, highlight=False)  # a file name is not markup
    return 0
