"""The command line: one subcommand per module in gradviz.commands, errors as one line."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from gradviz import __version__
from gradviz.commands import add_commands
from gradviz.errors import GradvizError
from gradviz.files.write import refuse_empty_paths, remember_start_dir
from gradviz.streams import finish_output, is_output_error, output_failed, prepare_streams


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand of the registry (gradviz.commands.COMMANDS)."""
    parser = argparse.ArgumentParser(
        prog="gradviz",
        description="See automatic differentiation move: trace, step through, export and train.",
    )
    parser.add_argument("--version", action="version", version=f"gradviz {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="on an unexpected failure, show Python's traceback instead of one line "
                             "(also GRADVIZ_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run gradviz; user errors print one line and return 2, never a traceback.

    Run as the program (argv None) after a spec's or script's code ran here, the process
    ends itself once the output is out: a thread the spec left running (not a daemon)
    would otherwise keep the interpreter from exiting, and an atexit hook could change
    the exit status."""
    code = _run(argv)
    if argv is None:
        from gradviz.sources.spec_run import user_code_ran

        if user_code_ran():
            _flush()
            os._exit(code)
    return code


def _flush() -> None:
    """Flush stdout and stderr before os._exit, which skips the interpreter's own flush."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _run(argv: list[str] | None) -> int:
    """main without the ending: parse, run the command, turn errors into one line and a code."""
    try:
        prepare_streams()
    except GradvizError as exc:
        _say(exc.render())
        return exc.exit_code
    remember_start_dir()  # before any user code can chdir: relative outputs land where the person meant
    parser = build_parser()
    argv, script_args = split_script_args(sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(argv)
    args.script_args = script_args
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("GRADVIZ_DEBUG", "") not in ("", "0")
    try:
        with warnings.catch_warnings():  # the filters stay; a warning shown is one line (below)
            warnings.showwarning = _warning_line
            refuse_empty_paths(args)
            code = int(args.func(args) or 0)
            finish_output()
            return code
    except GradvizError as exc:
        _say(exc.render())
        return exc.exit_code
    except KeyboardInterrupt:
        _say("gradviz: interrupted")
        return 130
    except BrokenPipeError:  # `gradviz trace … | head`: the reader has what it wanted
        output_failed(BrokenPipeError())
        return 0
    except MemoryError:
        _say("gradviz: error: out of memory; try smaller shapes, a smaller --batch-size or a lower --max-memory")
        return 2
    except OSError as exc:
        if is_output_error(exc):
            _say(output_failed(exc).render())
            return 2
        if debug:
            raise
        _say(f"gradviz: error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return 2
    except Exception as exc:  # the boundary: whatever broke, one line (the traceback with --debug)
        if debug:
            raise
        _say(unexpected_line(exc))
        return 2


def unexpected_line(exc: BaseException) -> str:
    """One line for a failure gradviz did not foresee: what broke, and how to see where."""
    text = " ".join(str(exc).split())[:300] or "no message"
    return f"gradviz: error: unexpected {type(exc).__name__}: {text} (gradviz --debug … shows the traceback)"


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning (numpy's overflow, torch's notes…) as one line, never a source excerpt."""
    text = " ".join(str(message).split())[:300]
    _say(f"gradviz: warning: {text}")


def split_script_args(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """`gradviz trace script.py [options] -- ARGS…`: gradviz's own arguments, and the script's
    (None without a `--` after a .py file: a `--` before an expression keeps its meaning)."""
    if "--" in argv:
        cut = argv.index("--")
        if any(arg.endswith(".py") for arg in argv[:cut]):
            return argv[:cut], argv[cut + 1:]
    return argv, None


def _say(line: str) -> None:
    """One line on stderr, if stderr can still take it."""
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError, AttributeError):
        pass
