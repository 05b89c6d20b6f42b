"""`gradviz landscape RUN_DIR|SPEC`: the loss on a 2-D slice of parameter space around θ*."""

from __future__ import annotations

import argparse
import sys

from gradviz.commands.common import bound_user_code, print_map, seed_value, timeout_seconds


def add_parser(subparsers) -> None:
    """Register `landscape`."""
    parser = subparsers.add_parser(
        "landscape", help="the loss around a trained model on a 2-D slice of its parameters",
        description="Evaluate the loss at θ* + α·d1 + β·d2 over a grid, θ* being a run's final parameters "
                    "(or a spec's fresh ones), d1 and d2 filter-normalised random directions (Li et al. 2018) "
                    "or the first two principal components of the run's trajectory (train with --snapshots N), "
                    "with the trajectory projected on the slice. Evaluated in vmapped batches of grid points.")
    parser.add_argument("source", metavar="RUN_DIR|SPEC", help="a run directory of gradviz train, or a spec .py")
    parser.add_argument("--directions", choices=("random", "pca"), default=None,
                        help="random (filter-normalised) or pca (of the trajectory); default: pca when the run "
                             "kept snapshots, else random")
    parser.add_argument("--grid", type=int, default=25, metavar="N", help="N×N grid points (default 25)")
    parser.add_argument("--span", type=float, metavar="S",
                        help="the slice covers [−S, S]² (default 1 for random, the trajectory's extent for pca)")
    parser.add_argument("--seed", type=seed_value, default=0, help="seed of the random directions (default 0)")
    parser.add_argument("--max-points", type=int, default=1024, metavar="N", help="examples the loss averages over (default 1024)")
    parser.add_argument("--memory-mb", type=int, default=256, metavar="MB", help="memory budget of one vmapped chunk (default 256)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--cells", choices=("half", "shade"), default="half", help="half-blocks in colour, or shade characters")
    parser.add_argument("-o", "--output", metavar="FILE", help="also write the map: .svg or .png")
    parser.add_argument("--spec-timeout", type=timeout_seconds, default=None, metavar="SECONDS",
                        help="stop the spec's import, build_model, make_data, or the grid's evaluation of its "
                             "loss when one runs longer than this (default 60)")
    from gradviz.commands.chart_options import add_chart_options

    add_chart_options(parser, animated=False)
    parser.set_defaults(func=run)


def compute(args: argparse.Namespace):
    """Load the subject and compute its landscape from the options."""
    from gradviz.landscape.compute import MAX_GRID, compute_landscape
    from gradviz.landscape.load import LandscapeError, load_subject

    if not 3 <= args.grid <= MAX_GRID:
        raise LandscapeError(f"--grid must lie in 3..{MAX_GRID}, got {args.grid}")
    if not 1 <= args.max_points <= 10_000_000:
        raise LandscapeError(f"--max-points must be positive, got {args.max_points}")
    if not 1 <= args.memory_mb <= 1_000_000:
        raise LandscapeError(f"--memory-mb must be positive, got {args.memory_mb}")
    device = args.device
    if device not in ("cpu", "cuda", "auto") and not device.startswith("cuda:"):
        raise LandscapeError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LandscapeError(f"--device {device}: no CUDA GPU is available here")
    from gradviz.sources.spec_run import running_spec

    bound_user_code(args)
    subject = load_subject(args.source, None, args.max_points, device)
    method = args.directions or ("pca" if len(subject.trajectory) >= 3 else "random")
    with running_spec(args.source, "the grid's evaluation of the loss"):
        return compute_landscape(subject, method, args.grid, args.span, args.seed, args.memory_mb << 20)


def run(args: argparse.Namespace) -> int:
    """The map on a terminal, the numbers and a shaded map otherwise; SVG with -o."""
    from gradviz.landscape.view import landscape_map, landscape_summary, landscape_svg

    from pathlib import Path

    from gradviz.draw.chart_file import chart_format, write_chart
    from gradviz.errors import ExportError

    if args.output and chart_format(Path(args.output), "the map") == ".gif":
        raise ExportError(f"{args.output}: the landscape is one picture: write it as .svg or .png")
    land = compute(args)
    if land.note:
        print(f"gradviz: note: {land.note}", file=sys.stderr)
    if args.output:
        path = write_chart(Path(args.output), [landscape_svg(land)], args.theme, scale=args.scale, what="the map")
        print(f"wrote {path}", file=sys.stderr)
    return print_map(lambda columns, rows: landscape_map(land, columns, rows, args.cells),
                     lambda: landscape_summary(land))
