"""`gradviz step SOURCE`: the interactive stepper (forward values, tangents, adjoints)."""

from __future__ import annotations

import argparse
import os

from gradviz.draw.look import DETAILS
from gradviz.commands.common import names_a_folder, add_fold_options, add_source_options, check_wrt, fold_choice, load_trace, read_source
from gradviz.errors import GradvizError
from gradviz.html.serve import WEB_DRIVER
from gradviz.streams import terminal_problem


def add_parser(subparsers) -> None:
    """Register `step`."""
    parser = subparsers.add_parser(
        "step", help="step through the trace node by node in an interactive terminal app",
        description="Open SOURCE in the stepper: the graph, the lecture's trace table and each node's "
                    "tangent and adjoint, one step at a time. Press ? in the app for the keys.")
    add_source_options(parser)  # SOURCE may also be a run directory whose loss went NaN
    parser.add_argument("--start", type=int, default=0, metavar="K", help="open at step K (default 0)")
    parser.add_argument("--detail", choices=("fit", *DETAILS), default="fit",
                        help="how much of each node the graph shows: fit (default) takes the most detailed "
                             "form that fits the pane whole (+/- change it in the app, f fits again)")
    add_fold_options(parser)
    parser.add_argument("--serve", action="store_true",
                        help="serve the stepper to web browsers (textual-serve) instead of this terminal: "
                             "each browser gets its own stepper; nothing is fetched from the internet")
    parser.add_argument("--port", type=int, metavar="N", help="with --serve: the port (default 8000)")
    parser.add_argument("--host", metavar="ADDRESS",
                        help="with --serve: the address to listen on (default localhost; this machine's "
                             "address on the network for a lecture hall)")
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Trace SOURCE, then run the app until the user quits."""
    from pathlib import Path

    if not args.serve and (args.port is not None or args.host is not None):  # else silently ignored
        raise GradvizError(f"{'--port' if args.port is not None else '--host'} is for --serve: add --serve")
    if names_a_folder(args.source):  # a run directory: open its non-finite step at the node where it began
        return run_nan_step(args)
    if not args.serve:
        refuse_without_terminal(f"gradviz trace {args.source}")
    trace = load_trace(args, ("tangent", "reverse"))
    wrt = check_wrt(trace, args)
    if args.start < 0:
        raise GradvizError(f"--start {args.start}: steps count from 0")
    if args.serve:  # traced once here, so bad input fails now and not in each browser
        return serve(args)
    from gradviz.tui.app import StepperApp

    source = read_source(args.source)
    app = StepperApp(trace, source=args.source, spec_path=source.text if source.kind == "spec" else None,
                     wrt=wrt if args.wrt else None, start=args.start, detail=args.detail,
                     choice=fold_choice(trace, args))
    app.run()
    return 0


def serve(args: argparse.Namespace) -> int:
    """`--serve`: this same command, run by textual-serve for each browser that connects."""
    from gradviz.html.serve import served_command, serve_stepper

    host, port = args.host or "localhost", 8000 if args.port is None else args.port
    return serve_stepper(served_command(args.parser, args), host, port, f"gradviz step {args.source}")


def refuse_without_terminal(instead: str) -> None:
    """The app would write escape codes into a pipe and wait for keys forever: one line instead."""
    if os.environ.get("TEXTUAL_DRIVER") == WEB_DRIVER:  # `step --serve`: textual-serve is the terminal
        return
    problem = terminal_problem()
    if problem:
        raise GradvizError(f"gradviz step is an interactive app and {problem}; for printed output use: {instead}")


def run_nan_step(args: argparse.Namespace) -> int:
    """`gradviz step RUN_DIR`: trace the saved bad step and open the stepper at its first NaN."""
    from gradviz.commands.common import bound_user_code
    from gradviz.train.nan_origin import trace_saved
    from gradviz.tui.app import StepperApp

    bound_user_code(args)  # the saved step names a spec: its code runs for the replay
    trace = trace_saved(args.source)  # a run that never went NaN says so first
    if args.serve:
        return serve(args)
    refuse_without_terminal(f"gradviz monitor {args.source} (the NaN's origin is in its nan_trace.json)")
    app = StepperApp(trace, source=args.source, start=nan_start(trace) if args.start == 0 else args.start,
                     detail=args.detail, choice=fold_choice(trace, args))
    app.run()
    return 0


def nan_start(trace) -> int:
    """The step k at which the stepper shows where the replayed step went non-finite, as the
    run's message names it (train.nan_origin.origin_of): the value a non-finite loss came
    from, or, for a finite loss with non-finite gradients, the first non-finite adjoint of
    the reverse pass, even when a value went NaN on the way and was made finite again
    (nan_to_num) before the loss."""
    from gradviz.train.nan_origin import origin_of
    from gradviz.tui.app import stepper_steps
    from gradviz.tui.scene import first_bad_step
    from gradviz.tui.timeline import Timeline

    timeline = Timeline(trace, stepper_steps(trace))
    origin = origin_of(trace)
    if origin is not None:
        k = timeline.step_of(origin["node"], "forward" if origin["phase"] == "forward" else "reverse")
        if k is not None:
            return k
    first = first_bad_step(timeline)
    return 0 if first is None else first[0]
