"""What every command that reads a SOURCE shares: its options and how it becomes a Trace."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from gradviz.core.trace import Trace
from gradviz.errors import GradvizError

MODES = ("values", "forward", "tangent", "reverse", "all")
KEEPS = ("full", "summaries")  # --keep (sources.model.KEEPS)
NEEDS_FULL = "this command needs every value and adjoint in full, which a summaries-only trace drops"
# The lecture's names on the command line; the passes inside are named by what they compute:
# 'values' is the forward evaluation, forward mode is the tangent pass ('tangent' stays an alias).
PASS_OF_MODE = {"values": "forward", "forward": "tangent", "tangent": "tangent", "reverse": "reverse", "all": "all"}
MAX_FILE_BYTES = 1024 * 1024  # an @FILE: 10,000 statements of an expression take about 100 kB


def seed_value(text: str) -> int:
    """--seed: a whole number from 0 to 2**32 − 1 (what numpy and torch generators take)."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError(f"{seed} is out of range 0..{2**32 - 1}")
    return seed


def memory_size(text: str) -> int:
    """--max-memory: a size like 2G, 500M or 1.5GB (powers of 1024), or bytes."""
    from gradviz.core.budget import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 2G, 500M or 1.5GB") from None


def work_size(text: str) -> int:
    """--max-work: a positive number of multiply-adds, like 5e10."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number like 5e10")
    return int(value)


MAX_SPEC_TIMEOUT = 1e6  # seconds (11½ days): the alarm timer takes no more, and no spec needs more


def timeout_seconds(text: str) -> float:
    """--spec-timeout: a finite number of seconds above 0 and at most MAX_SPEC_TIMEOUT."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    # nan, 0 and negatives would silently switch the bound off; inf overflows the timer.
    if not 0 < value <= MAX_SPEC_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0 and at most {MAX_SPEC_TIMEOUT:g}")
    return value


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """SOURCE plus --at/--shape/--seed/--dtype/--wrt and the model options."""
    parser.add_argument("source", metavar="SOURCE",
                        help="an expression ('exp(x1/x2) * x2'), @FILE with one, a model spec FILE.py, "
                             "or a PyTorch script FILE.py (traced at its backward() call)")
    parser.add_argument("--at", action="append", default=[], metavar="NAME=VALUE",
                        help="input values: x1=0.5,x2=1 or 'W=[[1,2],[3,4]]' (repeatable)")
    parser.add_argument("--shape", action="append", default=[], metavar="NAME=SHAPE",
                        help="inputs drawn at random (seeded) with this shape: W1=2x16 (repeatable)")
    parser.add_argument("--seed", type=seed_value, default=0, help="seed for --shape values, dropout masks and model batches")
    parser.add_argument("--dtype", choices=("float32", "float64"), default=None,
                        help="number type of the trace (default: float64 for expressions, the model's own for specs)")
    parser.add_argument("--wrt", metavar="INPUT", help="the input the tangent (forward-mode) pass follows; default: the first")
    parser.add_argument("--batch-size", type=int, default=8, help="model specs: rows of the batch traced")
    parser.add_argument("--level", choices=("module", "aten"), default="module",
                        help="model specs: one node per module call, or finer aten ops")
    parser.add_argument("--keep", choices=KEEPS, default="full",
                        help="model specs: 'summaries' keeps each value's, adjoint's and edge term's statistics "
                             "(shape, dtype, mean, std, min, max, norm, zeros, NaN/Inf) and drops the tensor during "
                             "the capture, for models whose tensors do not fit (trace only; default: full)")
    parser.add_argument("--eval", action="store_true",
                        help="model specs: trace in evaluation mode (dropout off) instead of training mode")
    parser.add_argument("--max-memory", type=memory_size, default=None, metavar="SIZE",
                        help="expressions: refuse a trace that would need more memory than this, before "
                             "computing anything (e.g. 4G; default 1/16 of this machine's memory)")
    parser.add_argument("--max-work", type=work_size, default=None, metavar="N",
                        help="expressions: refuse a trace whose matrix products take more multiply-adds (default 2e10)")
    parser.add_argument("--spec-timeout", type=timeout_seconds, default=None, metavar="SECONDS",
                        help="model specs: stop a spec whose import, build_model, make_data or check forward "
                             f"runs longer than this, each (above 0, at most {MAX_SPEC_TIMEOUT:g}; default 60)")
    parser.add_argument("--backward", type=int, default=1, metavar="N",
                        help="scripts: trace the graph behind the N-th backward() call (default 1)")
    parser.add_argument("--merge-repeats", action="store_true",
                        help="scripts: merge identical repeated operations on the same tensors into one node")
    parser.add_argument("--run-to-end", action="store_true",
                        help="scripts: run the rest of the script after the traced backward() (default: stop there); "
                             "arguments after -- go to the script: gradviz trace train.py -- --epochs 1")


@dataclass(frozen=True)
class Source:
    """What SOURCE names: an expression (with defaults from its file) or a model spec path."""

    kind: str  # 'expression' or 'spec'
    text: str
    at: tuple[str, ...] = ()
    shape: tuple[str, ...] = ()


def read_source(source: str) -> Source:
    """Read SOURCE. An @FILE holds an expression; its '# at: …' and '# shape: …' comment
    lines give default --at/--shape values, so a sample runs without flags."""
    if source.endswith(".py") and not source.startswith("@"):
        from gradviz.sources.script import is_spec_file

        return Source("spec" if is_spec_file(source) else "script", source)
    if not source.startswith("@"):
        return Source("expression", source)
    text = read_expression_file(Path(source[1:]))
    body, defaults = [], {"at": [], "shape": []}
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            key, sep, value = stripped.lstrip("#").partition(":")
            if sep and key.strip() in defaults:
                defaults[key.strip()].append(value.strip())
        else:
            body.append(line)
    return Source("expression", "\n".join(body).strip(), tuple(defaults["at"]), tuple(defaults["shape"]))


def read_expression_file(path: Path) -> str:
    """An @FILE's text: a regular UTF-8 file of at most MAX_FILE_BYTES (a FIFO, a device or
    a directory is refused before it is opened: reading one could block or never end)."""
    from gradviz.files.read import read_text

    return read_text(path, "expression file", MAX_FILE_BYTES)


def _bindings(source: Source, args: argparse.Namespace) -> tuple[dict, dict]:
    """--at/--shape from the command line, over the file's defaults (name by name)."""
    from gradviz.sources.bindings import parse_at, parse_shapes

    at, shapes = parse_at(args.at), parse_shapes(args.shape)
    given = set(at) | set(shapes)
    default_at = {k: v for k, v in parse_at(source.at).items() if k not in given}
    default_shapes = {k: v for k, v in parse_shapes(source.shape).items() if k not in given}
    return {**default_at, **at}, {**default_shapes, **shapes}


def names_a_folder(source: str) -> bool:
    """Whether the source argument is an existing folder (a run directory). An expression
    too long to be a path is not one: Path.is_dir raises for it instead of saying no."""
    try:
        return Path(source).is_dir()
    except OSError:
        return False


def bound_user_code(args: argparse.Namespace) -> None:
    """Every command that runs a spec's or script's code: --spec-timeout (default 60 s) bounds
    each phase, and C code that ignores the alarm is ended with one line."""
    from gradviz.sources.spec_run import DEFAULT_TIMEOUT, set_spec_timeout

    timeout = getattr(args, "spec_timeout", None)
    set_spec_timeout(DEFAULT_TIMEOUT if timeout is None else timeout, hard=True)


def load_trace(args: argparse.Namespace, modes: tuple[str, ...] = ("tangent", "reverse"),
               summaries: str | None = NEEDS_FULL) -> Trace:
    """The Trace of args.source, whichever kind of source it is.

    `summaries` is None where the command can show a --keep summaries trace, else the
    reason it cannot (it is refused before anything runs).
    """
    source = read_source(args.source)
    if getattr(args, "script_args", None) is not None and source.kind != "script":
        raise GradvizError(f"arguments after -- go to a script; {args.source} is "
                           f"{'a model spec' if source.kind == 'spec' else 'an expression'}")
    keep = getattr(args, "keep", "full")
    if keep == "summaries":
        if source.kind != "spec":
            raise GradvizError(f"--keep summaries is for model specs; {args.source} is {'a script' if source.kind == 'script' else 'an expression'}, "
                               "whose trace keeps every number")
        if summaries is not None:
            raise GradvizError(f"--keep summaries: {summaries}; run it without --keep summaries")
    if source.kind == "spec":
        bound_user_code(args)
        from gradviz.sources.model import trace_spec

        return trace_spec(source.text, batch_size=args.batch_size, seed=args.seed, level=args.level,
                          dtype=args.dtype, training=not getattr(args, "eval", False), keep=keep)
    if source.kind == "script":
        import sys

        from gradviz.sources.script import trace_script
        from gradviz.sources.spec_run import running_spec

        bound_user_code(args)
        with running_spec(source.text, "the script"):  # time-bounded; exits, forks, streams, cwd kept
            return trace_script(source.text, args.backward, args.merge_repeats, getattr(args, "script_args", None),
                                stdout=sys.stderr if getattr(args, "json", False) else None,
                                run_to_end=getattr(args, "run_to_end", False))
    from gradviz.sources.expr import trace_expression

    at, shapes = _bindings(source, args)
    trace = trace_expression(source.text, at, shapes, args.seed, args.dtype or "float64", modes,
                             getattr(args, "max_memory", None), getattr(args, "max_work", None))
    check_wrt(trace, args)
    return trace


def check_wrt(trace: Trace, args: argparse.Namespace) -> str | None:
    """The input --wrt names (validated), or the first input."""
    labels = trace.input_labels
    if args.wrt is None:
        return labels[0] if labels else None
    if args.wrt not in labels:
        raise GradvizError(f"--wrt {args.wrt}: no such input (inputs: {', '.join(labels) or 'none'})")
    return args.wrt


def positive_int(text: str) -> int:
    """A whole number of at least 1 (--depth, --hops)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def add_fold_options(parser: argparse.ArgumentParser) -> None:
    """--depth/--focus/--hops: which part of a big graph a picture shows (draw/fold.py)."""
    parser.add_argument("--depth", type=positive_int, metavar="N",
                        help="fold modules deeper than N levels into one box each (default: the most that fits)")
    parser.add_argument("--focus", metavar="NODE",
                        help="draw only the neighbourhood of NODE (a label from the trace table)")
    parser.add_argument("--hops", type=positive_int, default=2, metavar="K",
                        help="with --focus: how many edges away from NODE to draw (default 2)")


def fold_choice(trace: Trace, args: argparse.Namespace):
    """The FoldChoice that --depth/--focus/--hops ask for (draw/fold.py)."""
    from gradviz.draw.fold import FoldChoice

    focus = None
    if getattr(args, "focus", None) is not None:
        node = trace.graph.find(args.focus)
        if node is None:
            raise GradvizError(f"--focus {args.focus}: no such node (labels are in the trace table)")
        focus = node.id
    return FoldChoice(depth=getattr(args, "depth", None), focus=focus, hops=getattr(args, "hops", 2))


def fold_from_args(trace: Trace, args: argparse.Namespace, budget: int | None = None, terminal: bool = True):
    """The Fold to draw for --depth/--focus/--hops (by default the most open that fits: in a
    terminal a big model opens folded, an export keeps up to `budget` boxes open)."""
    from gradviz.draw.fold import BOX_BUDGET, TERMINAL_MODULE_BUDGET

    module_budget = TERMINAL_MODULE_BUDGET if terminal else None
    return fold_choice(trace, args).plan(trace.graph, budget or BOX_BUDGET, module_budget)


def print_map(draw, summary) -> int:
    """A map sized to the terminal when stdout is one (`draw(columns, rows)`, a rich
    renderable), else the plain text `summary()` for a pipe or a file; returns exit 0."""
    import shutil
    import sys

    if not sys.stdout.isatty():
        sys.stdout.write(summary())
        return 0
    from rich.console import Console

    size = shutil.get_terminal_size()
    Console().print(draw(size.columns, max(16, size.lines - 2)))
    return 0
