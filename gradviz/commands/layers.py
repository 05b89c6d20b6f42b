"""`trace --layers` and `export --layers`: the backprop-by-layers view, printed or written.

Not a command of its own: the two commands that already read a SOURCE share this glue.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gradviz.core.layers import Backprop, backprop_by_layers, no_layers_message
from gradviz.core.trace import Trace
from gradviz.errors import ExportError, GradvizError

def layers_of(trace: Trace) -> Backprop:
    """The trace's backprop by layers; GradvizError when it has no layer or no reverse pass."""
    if not trace.adjoints:
        raise GradvizError("--layers needs the reverse pass (leave --mode at all or reverse)")
    backprop = backprop_by_layers(trace)
    message = no_layers_message(backprop)
    if message is not None:
        raise GradvizError(f"--layers: {message}")
    return backprop


def add_delta_option(parser: argparse.ArgumentParser) -> None:
    """`--delta lecture|pre-activation`: which δ the layers view writes its chain with."""
    from gradviz.views.layers import DELTAS

    parser.add_argument("--delta", choices=DELTAS, default="lecture",
                        help="with --layers: δk = ∂J/∂lay_k after the activation, as on the slides (lecture, default), "
                             "or δk = ∂J/∂z_k before it (pre-activation)")


def print_layers(trace: Trace, delta: str = "lecture") -> int:
    """Print the layers view; 1 when a value or adjoint is NaN/Inf (named, as `trace` does)
    or a matrix-form quantity differs from the trace (else 0)."""
    from rich.console import Console

    from gradviz.views.layers import layers_report
    from gradviz.streams import printed_stdout
    from gradviz.views.trace_report import nonfinite_note

    backprop = layers_of(trace)
    console = Console(file=printed_stdout())
    console.print(layers_report(trace, backprop, console.width, delta))
    note = nonfinite_note(trace)
    if note is not None:
        console.print(note)
        return 1
    return 0 if backprop.ok else 1


def export_layers(args: argparse.Namespace) -> int:
    """Write the layers view to args.file (.svg, .html, .txt)."""
    from gradviz.commands.common import load_trace
    from gradviz.views.layers import LAYER_FORMATS, write_layers

    if args.file is None:
        raise ExportError("say where to write the layers view: -o FILE (.svg, .html or .txt)")
    path = Path(args.file)
    if path.suffix not in LAYER_FORMATS:
        raise ExportError(f"{path}: the layers view is written as {', '.join(LAYER_FORMATS)}, not {path.suffix or 'no extension'}")
    trace = load_trace(args, ("reverse",))
    backprop = layers_of(trace)
    try:
        write_layers(trace, backprop, path, title=f"gradviz layers · {args.source}", delta=args.delta,
                     theme=args.theme)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror}") from None
    print(f"wrote {path}")
    return 0
