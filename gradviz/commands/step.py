"""`gradviz step SOURCE`: the interactive stepper (forward values, tangents, adjoints)."""

from __future__ import annotations

import argparse

from gradviz.commands.common import add_fold_options, add_source_options, check_wrt, fold_choice, load_trace, read_source
from gradviz.errors import GradvizError
from gradviz.streams import terminal_problem


def add_parser(subparsers) -> None:
    """Register `step`."""
    parser = subparsers.add_parser(
        "step", help="step through the trace node by node in an interactive terminal app",
        description="Open SOURCE in the stepper: the graph, the lecture's trace table and each node's "
                    "tangent and adjoint, one step at a time. Press ? in the app for the keys.")
    add_source_options(parser)
    parser.add_argument("--start", type=int, default=0, metavar="K", help="open at step K (default 0)")
    parser.add_argument("--detail", choices=("full", "ops", "dots"), default="full",
                        help="how much of each node the graph shows (+/- change it in the app)")
    add_fold_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Trace SOURCE, then run the app until the user quits."""
    problem = terminal_problem()
    if problem:  # the app would write escape codes into a pipe and wait for keys forever
        raise GradvizError(f"gradviz step is an interactive app and {problem}; "
                           f"for printed output use: gradviz trace {args.source}")
    trace = load_trace(args, ("tangent", "reverse"))
    wrt = check_wrt(trace, args)
    if args.start < 0:
        raise GradvizError(f"--start {args.start}: steps count from 0")
    from gradviz.tui.app import StepperApp

    source = read_source(args.source)
    app = StepperApp(trace, source=args.source, spec_path=source.text if source.kind == "spec" else None,
                     wrt=wrt if args.wrt else None, start=args.start, detail=args.detail,
                     choice=fold_choice(trace, args))
    app.run()
    return 0
