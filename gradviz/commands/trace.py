"""`gradviz trace SOURCE`: the lecture's trace table, gradients and passes, printed."""

from __future__ import annotations

import argparse
import sys

from gradviz.errors import GradvizError
from gradviz.commands.common import (MODES, PASS_OF_MODE, add_fold_options, add_source_options, check_wrt,
                                     fold_from_args, load_trace)


def add_parser(subparsers) -> None:
    """Register `trace`."""
    parser = subparsers.add_parser(
        "trace", help="print values, tangents and adjoints of an expression or model",
        description="Trace SOURCE into a computation graph and print the lecture's trace table.")
    add_source_options(parser)
    parser.add_argument("--mode", choices=MODES, default="all",
                        help="which passes to show: values, forward (values and tangents: forward mode; "
                             "'tangent' is the same), reverse, or all (default)")
    parser.add_argument("--check", action="store_true",
                        help="compare derivatives with finite differences and torch.autograd; print the largest error")
    parser.add_argument("--json", action="store_true", help="print the trace as JSON (schema in the README)")
    parser.add_argument("--format", choices=("markdown", "latex", "csv"), dest="table_format",
                        help="print a handout: the trace table (every tangent and adjoint column; numbers exact, "
                             "or rounded with --decimals), and for markdown and latex the tangent chains and "
                             "adjoint sums; csv is the table only")
    parser.add_argument("--decimals", type=int, metavar="N", help="with --format: round numbers to N places")
    parser.add_argument("--graph", action="store_true", help="draw the graph under the table")
    parser.add_argument("--ascii", action="store_true", help="with --graph: plain ASCII instead of box-drawing glyphs")
    parser.add_argument("--detail", choices=("fit", "full", "compact", "line", "ops", "dots"), default="fit",
                        help="with --graph: fit (default), the most detailed form with values no wider than the "
                             "terminal; or that form whatever its width")
    add_fold_options(parser)
    parser.add_argument("--full", action="store_true",
                        help="with --json: every tensor element as lists, not summaries (models, and an "
                             "expression's tensors of more than 100 elements)")
    parser.add_argument("--arrays", metavar="FILE.npz",
                        help="with --json: also write every summarised tensor whole to this .npz file; "
                             "each summary names its key there (numpy.load reads them back bit for bit)")
    parser.add_argument("--layers", action="store_true",
                        help="backprop by layers: z_k, lay_k, δ_k, ∂J/∂W_k, ∂J/∂b_k per layer in the lecture's matrix form, checked")
    from gradviz.commands.layers import add_delta_option

    add_delta_option(parser)
    parser.add_argument("--show", metavar="NODE", action="append", default=[],
                        help="also print NODE's value and adjoint in full (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Trace, print, and return 1 when a value or adjoint went non-finite (else 0)."""
    if args.table_format and args.json:
        raise GradvizError("--format and --json are two outputs: choose one")
    if args.layers and (args.json or args.table_format):
        raise GradvizError(f"--layers prints the layers view; it has no {'--json' if args.json else '--format'} "
                           "form (gradviz export --layers -o FILE writes .svg, .html or .txt)")
    if args.arrays is not None and (not args.json or args.full):
        raise GradvizError("--arrays FILE.npz writes the tensors --json summarises: give --json, without --full")
    if args.arrays is not None and not args.arrays.endswith(".npz"):
        raise GradvizError(f"--arrays {args.arrays}: the file name must end in .npz")
    if args.decimals is not None and not 0 <= args.decimals <= 17:
        raise GradvizError(f"--decimals {args.decimals} is out of range: 0 to 17")
    mode = PASS_OF_MODE[args.mode]
    modes = ("tangent", "reverse") if mode == "all" else (mode,)
    trace = load_trace(args, modes, summaries=_needs_full(args))
    wrt = check_wrt(trace, args)
    if args.layers:
        from gradviz.commands.layers import print_layers

        return print_layers(trace, args.delta)
    if args.table_format:
        from gradviz.views.handout import HANDOUT_WRITERS

        sys.stdout.write(HANDOUT_WRITERS[args.table_format](trace, args.decimals))
    elif args.json:
        from gradviz.views.json_report import ArrayFile, dump_json, trace_to_json

        arrays = ArrayFile(args.arrays) if args.arrays is not None else None
        report = trace_to_json(trace, args.source, full=args.full, arrays=arrays)
        if arrays is not None:
            try:
                arrays.write(args.arrays)
            except OSError as exc:
                raise GradvizError(f"cannot write {args.arrays}: {exc.strerror or exc}") from None
        if args.check:
            report["check"] = _check(trace, args).to_json()
        dump_json(report, sys.stdout)
    else:
        from rich.console import Console

        from gradviz.streams import printed_stdout
        from gradviz.views.trace_report import node_details, trace_report

        console = Console(file=printed_stdout())
        shown = [node_details(trace, name) for name in args.show]  # an unknown node is one line, before the report
        console.print(trace_report(trace, mode, wrt))
        for details in shown:
            console.print(details)
        if args.graph:
            from gradviz.draw.terminal import render_trace_graph

            from gradviz.streams import unicode_ok

            fit = args.detail == "fit"  # the most detailed form that fits, as `export` and the stepper choose
            console.print(render_trace_graph(trace, detail="full" if fit else args.detail,
                                             ascii=args.ascii or not unicode_ok(), fold=fold_from_args(trace, args),
                                             width=console.width if fit else None))
        if args.check and trace.info.get("source") == "model" and "script" in trace.info:
            console.print("check: not available for scripts of tensors (a spec, or gradviz.trace(model, x, "
                          "check=True), compares with the oracles)", style="yellow")
        elif args.check:
            console.print(_check(trace, args).summary())
    return 1 if trace.first_nonfinite() is not None else 0


def _needs_full(args: argparse.Namespace) -> str | None:
    """Why this trace command cannot run on a --keep summaries trace (None: it can)."""
    wanted = [flag for flag, on in (("--check", args.check), ("--format", args.table_format), ("--layers", args.layers),
                                    ("--show", args.show), ("--full", args.full), ("--graph", args.graph)) if on]
    if wanted:
        return f"{' and '.join(wanted)} need{'s' if len(wanted) == 1 else ''} every value and adjoint in full, " \
               "which a summaries-only trace drops"
    return None


def _check(trace, args: argparse.Namespace):
    """--check: the model oracles for a model, finite differences and torch for an expression."""
    if trace.info.get("source") == "model":
        from gradviz.sources.model.check import check_spec_file

        return check_spec_file(args.source, args.batch_size, args.seed, args.level, args.dtype,
                               not getattr(args, "eval", False))
    from gradviz.check import check_trace

    return check_trace(trace, args.source)
