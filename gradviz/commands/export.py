"""`gradviz export SOURCE -o FILE`: the graph as SVG, PNG, PDF or DOT, at a step or finished."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from gradviz.commands.common import names_a_folder, PASS_OF_MODE, add_fold_options, add_source_options, check_wrt, fold_from_args, load_trace


def add_parser(subparsers) -> None:
    """Register `export`."""
    parser = subparsers.add_parser(
        "export", help="write the computation graph as SVG, PNG, PDF or DOT",
        description="Trace SOURCE and write its graph through Graphviz; the format comes from "
                    "the extension of FILE (.svg, .png, .pdf, .dot).")
    add_source_options(parser)  # SOURCE may be a run directory: its training charts
    parser.add_argument("more_runs", nargs="*", metavar="RUN_DIR",
                        help="more run directories to overlay with the first one (charts of runs only)")
    parser.add_argument("--tensorboard", metavar="DIR",
                        help="run directories: write the run's scalars, histograms and text as TensorBoard events")
    parser.add_argument("-o", "--output", dest="file", metavar="FILE",
                        help="the file to write: .svg, .png, .pdf or .dot")
    parser.add_argument("--mode", choices=("values", "forward", "tangent", "reverse"), default="reverse",
                        help="which pass the picture (or --frames) shows: values, forward mode (tangents; "
                             "'tangent' is the same) or reverse mode (default, with edge contributions)")
    parser.add_argument("--step", type=int, metavar="N",
                        help="show step N as `gradviz step` numbers it (values, tangent passes, adjoint passes); "
                             "default: the finished pass")
    parser.add_argument("--detail", choices=("fit", "full", "compact", "line", "ops", "dots"), default="fit",
                        help="fit (default): the most detailed form whose picture is at most 1920 px wide "
                             "(a full-HD screen); full boxes with values and edge numbers, compact one-line "
                             "boxes, line (no borders), op names only, or one dot per node")
    parser.add_argument("--frames", metavar="DIR",
                        help="write one SVG per step into DIR (step_000.svg …), every frame with the same layout")
    parser.add_argument("--gif", metavar="FILE",
                        help="with --frames: also write the frames as one animated GIF (needs Pillow)")
    parser.add_argument("--frame-ms", type=int, default=800, metavar="MS", help="with --gif: milliseconds per step")
    parser.add_argument("--scale", type=float, default=1.0, metavar="S",
                        help="PNG (and GIF) resolution as a multiple of 96 dpi: 2 or 3 for a projector")
    parser.add_argument("--max-nodes", type=int, default=None, metavar="N",
                        help="above N boxes, fold modules (or focus on the output) instead of waiting on dot; default 2000")
    add_fold_options(parser)
    parser.add_argument("--html", metavar="FILE",
                        help="write the stepper as one self-contained web page (.html): every step's graph, "
                             "status and inspector; arrow keys, buttons and a scrubber; nothing fetched")
    parser.add_argument("--layers", action="store_true",
                        help="write the layers view (backprop by layers) instead of the graph: .svg, .html or .txt")
    from gradviz.commands.chart_options import add_theme_option
    from gradviz.commands.layers import add_delta_option

    add_delta_option(parser)
    add_theme_option(parser)
    parser.add_argument("--x", dest="x_axis", choices=("step", "epoch", "samples", "time"), default="step",
                        help="run charts: the loss over steps (default), epochs, samples seen or wall-clock seconds")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export the picture (or the frames) and print where it went."""
    from gradviz.draw.export import NODE_LIMIT, export_format, export_frames, export_trace
    from gradviz.errors import ExportError

    if names_a_folder(args.source) or args.more_runs:
        return export_runs(args)
    if args.theme == "dark" and not args.layers:
        raise ExportError("--theme dark: the graph is drawn on white paper only; the layers view (--layers) "
                          "and run charts take either theme")
    if args.layers:
        from gradviz.commands.layers import export_layers

        return export_layers(args)
    if args.file is None and args.frames is None and args.html is None:
        raise ExportError("say where to write: -o FILE (.svg, .png, .pdf, .dot), --frames DIR or --html FILE")
    if args.html is not None:
        from gradviz.html.stepper_page import check_page_path

        check_page_path(Path(args.html))  # before tracing, which a big model takes minutes over
    if args.file is not None:
        export_format(Path(args.file))  # an unknown extension fails before any tracing
    if args.gif is not None and args.frames is None:
        raise ExportError("--gif FILE animates the frames: give --frames DIR too")
    if args.gif is not None and not args.gif.lower().endswith(".gif"):
        raise ExportError(f"--gif {args.gif}: the file name must end in .gif")
    if not 0.1 <= args.scale <= 10:
        raise ExportError(f"--scale {args.scale:g} is out of range: 0.1 to 10")
    if not 20 <= args.frame_ms <= 60_000:
        raise ExportError(f"--frame-ms {args.frame_ms} is out of range: 20 to 60000")
    mode = PASS_OF_MODE[args.mode]
    trace = load_trace(args, ("tangent", "reverse"))  # every pass, so steps are numbered as the stepper's
    wrt = check_wrt(trace, args)
    if args.html is not None:
        from gradviz.html.stepper_page import page_steps

        page_steps(trace, wrt)  # a page too long for its steps is refused before the picture is fitted
    limit = args.max_nodes or NODE_LIMIT
    if args.max_nodes is None:  # a model opens as far as a readable picture allows; --max-nodes N opens more
        from gradviz.commands.common import fold_choice
        from gradviz.draw.export import EXPORT_MODULE_BUDGET

        fold = fold_choice(trace, args).plan(trace.graph, limit, EXPORT_MODULE_BUDGET)
    else:
        fold = fold_from_args(trace, args, limit, terminal=False)
    detail, fit_note = export_detail(trace, args, mode, wrt, limit, fold)
    if args.file is not None:
        path = export_trace(trace, Path(args.file), mode, args.step, wrt, None, detail, limit, args.scale, fold)
        print(f"wrote {path}{fit_note}")
    if args.frames is not None:
        gif = Path(args.gif) if args.gif else None
        paths = export_frames(trace, Path(args.frames), mode, wrt, None, detail, limit, gif, args.scale,
                              args.frame_ms, fold)
        print(f"wrote {len(paths)} frames to {Path(args.frames)}/ ({paths[0].name} … {paths[-1].name})")
        if gif is not None:
            print(f"wrote {gif} ({len(paths)} frames, {args.frame_ms} ms each)")
    if args.html is not None:
        from gradviz.html.stepper_page import write_stepper_page

        path = write_stepper_page(trace, Path(args.html), args.source, wrt, detail, limit, fold)
        print(f"wrote {path} ({path.stat().st_size // 1024} kB; open it in a browser: → and ← step)")
    return 0


def export_detail(trace, args: argparse.Namespace, mode: str, wrt: str | None, limit: int, fold) -> tuple[str, str]:
    """(form, note): --detail as asked, or for `fit` the most detailed form that fits the page
    (frames and pages measured on the finished pass, whose numbers are the widest), with a
    note saying which form was drawn when it is not the full one, and why."""
    from gradviz.draw.export import FIT_FORMS, PAGE_WIDTH_PX, export_format, fit_detail

    if args.detail != "fit":
        return args.detail, ""
    if args.file is not None and export_format(Path(args.file)) == "dot" and shutil.which("dot") is None:
        return FIT_FORMS[0], ""  # DOT text needs no `dot` program; measuring the forms does
    step = args.step if args.file is not None and args.frames is None and args.html is None else None
    detail, width = fit_detail(trace, mode, step, wrt, None, limit, fold)
    if detail == FIT_FORMS[0]:
        return detail, ""
    if width > PAGE_WIDTH_PX:
        return detail, (f" ({detail} form, still {width} px wide: no form fits a {PAGE_WIDTH_PX} px page; "
                        "--depth or --focus draw less of the graph)")
    dropped = "" if detail in ("compact", "line") else ", without values"
    return detail, (f" ({detail} form{dropped}: the more detailed ones are wider than a {PAGE_WIDTH_PX} px page; "
                    "--detail full draws them anyway)")


def export_runs(args: argparse.Namespace) -> int:
    """Run directories: their charts as SVG (-o) and/or TensorBoard events (--tensorboard)."""
    from gradviz.errors import ExportError
    from gradviz.monitor.compare import find_runs

    runs = find_runs([Path(args.source), *map(Path, args.more_runs)])
    if args.file is None and args.tensorboard is None:
        raise ExportError("say where to write: -o FILE.svg (charts) or --tensorboard DIR")
    if args.file is not None:
        from gradviz.monitor.charts import export_charts

        print(f"wrote {export_charts(runs, Path(args.file), args.theme, args.scale, args.x_axis)}")
    if args.tensorboard is not None:
        from gradviz.train.tensorboard_export import export_tensorboard

        if len(runs) > 1:
            raise ExportError("--tensorboard writes one run at a time (TensorBoard overlays runs from folders)")
        count = export_tensorboard(runs[0], Path(args.tensorboard))
        print(f"wrote {count} logged steps as TensorBoard events to {args.tensorboard}")
    return 0
