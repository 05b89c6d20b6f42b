"""Plain PyTorch scripts: run one, and trace the graph behind its N-th `backward()` call.

`gradviz trace snippet.py` runs the script as `python snippet.py` would (as __main__,
its folder first on sys.path, its own output kept), records every torch operation
until the chosen `backward()` call, lets that call run (so the script's own prints of
`x1.grad` are unchanged), captures the Trace on the same graph, and then stops the
script there (a training script would otherwise run all its epochs first), or with
`run_to_end` lets the rest run without recording: the values shown stay those of the
traced backward (a tensor the rest changes in place is copied just before it changes).
**Running a script executes its code.**

A .py file that defines the spec names (build_model, loss, make_data) is a spec; any
other .py file is a script.
"""

from __future__ import annotations

import ast
import contextlib
import sys
import traceback
from pathlib import Path
from typing import Any

from gradviz.core.trace import Trace
from gradviz.errors import SpecError

SPEC_NAMES = ("build_model", "loss", "make_data")


def is_spec_file(path: str | Path) -> bool:
    """Whether a .py file defines the spec names at top level (read with ast, never run)."""
    try:
        tree = ast.parse(Path(path).read_text(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return True  # let the spec loader report the unreadable file in its own words
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    return any(name in defined for name in SPEC_NAMES)


class ScriptError(SpecError):
    """The script failed, or never called backward() as often as asked."""


class StopAfterBackward(BaseException):
    """Raised out of the traced backward() to end the script there (a BaseException, so the
    script's own `except Exception` does not swallow it)."""


class StopAgain:
    """Re-raises StopAfterBackward at the first line the script runs once a bare `except:` (or
    `except BaseException:`) has swallowed it: a line of the script's file reached with no
    exception being handled. The handler's own body, finally blocks and `with` exits still
    run (they run with the stop in hand). A trace function that raises is switched off by
    Python, so this stops the script once; a second swallow is only reported."""

    def __init__(self, path: Path):
        self.filename = str(path)
        self.caught_at: int | None = None  # the script's line where the swallowed stop was raised again
        self.armed = False
        self.previous: Any = None

    def arm(self) -> None:
        """Watch every frame of the script now on the stack: the stop unwinds through these
        alone, so a handler that swallows it is in one of them (code they call later, a
        `__del__` run while the stop unwinds, is not watched)."""
        self.previous, self.armed = sys.gettrace(), True
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == self.filename:
                frame.f_trace = self._line
                frame.f_trace_lines = True
            frame = frame.f_back
        sys.settrace(self._call)

    def disarm(self) -> None:
        """Give tracing back to whatever had it (a debugger, coverage)."""
        if self.armed:
            sys.settrace(self.previous)
            self.armed = False

    @staticmethod
    def _call(frame: Any, event: str, arg: Any) -> None:
        return None  # tracing on, for the frames arm() watches; no new frame is watched

    def _line(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line" and sys.exc_info()[0] is None:
            self.caught_at = frame.f_lineno
            raise StopAfterBackward
        return self._line


def trace_script(path: str | Path, backward: int = 1, merge_repeats: bool = False,
                 argv: list[str] | None = None, stdout: Any = None, run_to_end: bool = False) -> Trace:
    """Run the script at `path` (with `argv` as its arguments) and return the Trace of its
    `backward`-th backward() call; the script stops right after that call unless `run_to_end`.

    The script's standard output goes to `stdout` when given (the JSON writer sends it
    to stderr so that its own output stays valid JSON).
    """
    import torch

    from gradviz.sources.model.fallback import FallbackFailed
    from gradviz.sources.recorded import CodeRecorder, ValueGuard, install_module_hooks

    path = Path(path)
    if backward < 1:
        raise ScriptError(f"--backward {backward}: backward() calls count from 1")
    try:
        code = compile(path.read_text(), str(path), "exec")
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read the script: {exc.strerror}") from None
    except SyntaxError as exc:
        raise ScriptError(f"{path}: line {exc.lineno}: SyntaxError: {exc.msg}") from None
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path), "__builtins__": __builtins__}
    caught: dict[str, Any] = {}
    frames: list[dict[str, Any]] = []

    class ScriptRecorder(CodeRecorder):
        calls_seen = 0

        def on_backward(self, func, args, kwargs):
            self.calls_seen += 1
            if self.calls_seen < backward or not args or not isinstance(args[0], torch.Tensor):
                return func(*args, **kwargs)
            self.done = True
            caller = sys._getframe(1)
            while caller is not None and caller.f_code.co_filename != str(path):
                caller = caller.f_back
            if caller is not None:
                frames.append(caller.f_locals)
            loss = args[0]
            # The script's own backward runs first and keeps the graph for the capture's.
            result = func(*args, **{**kwargs, "retain_graph": True})
            try:
                caught["trace"] = self.trace(loss, _variable_name(loss, frames + [namespace]) or "loss",
                                             {"script": str(path), "name": path.stem, "backward": backward,
                                              "merge_repeats": merge_repeats})
            except FallbackFailed as exc:
                caught["error"] = str(exc)
                return result
            # Guarded either way: code the stop still runs (finally blocks, context exits) must not change them.
            self.guard = ValueGuard(caught["trace"].values)
            if not run_to_end:
                stop_again.arm()
                raise StopAfterBackward
            return result

    recorder = ScriptRecorder(merge_repeats, lambda: frames + [namespace])
    stop_again = StopAgain(path)
    from gradviz.sources.spec_run import mark_user_code

    mark_user_code()
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [str(path), *(argv or [])]
    sys.path.insert(0, str(path.resolve().parent))
    remove = install_module_hooks(recorder)
    redirect = contextlib.redirect_stdout(stdout) if stdout is not None else contextlib.nullcontext()
    try:
        with redirect, recorder:
            try:
                exec(code, namespace)  # noqa: S102 - running the user's script is what was asked for
            finally:
                stop_again.disarm()
        if "trace" in caught and not run_to_end:  # a handler swallowed the stop twice: say what ran
            print(f"gradviz: the script caught the stop after its backward() call {backward} (a bare except: or "
                  "except BaseException:) and ran on to its end; the values shown are those of that backward()",
                  file=sys.stderr)
    except StopAfterBackward:
        caught_at = "" if stop_again.caught_at is None else (
            f" (the script caught the stop, with a bare except: or except BaseException:, and was stopped "
            f"again at line {stop_again.caught_at})")
        print(f"gradviz: stopped the script right after its backward() call {backward}{caught_at} "
              "(--run-to-end runs the rest)", file=sys.stderr)
    except SystemExit as exc:
        if "trace" not in caught and exc.code not in (None, 0):
            raise ScriptError(f"{path}: the script exited with status {exc.code} before its backward() call") from None
    except FallbackFailed as exc:
        raise ScriptError(f"{path}: recording failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the script's own error, reported in its terms
        if "trace" not in caught:
            raise ScriptError(f"{path}:{_line(exc, path)} {type(exc).__name__}: {_first_line(exc)}") from None
        print(f"gradviz: the script raised after the traced backward(): {type(exc).__name__}: {_first_line(exc)}",
              file=sys.stderr)
    finally:
        remove()
        sys.argv = old_argv
        sys.path[:] = old_path
    if "error" in caught:
        raise ScriptError(f"{path}: backward() call {backward}: {caught['error']}")
    if recorder.guard is not None and recorder.guard.changed_unseen():
        print(f"gradviz: {recorder.guard.changed_unseen()} tensors of the trace were changed in place after the "
              "traced backward() by code gradviz could not see: their values are shown as changed", file=sys.stderr)
    if "trace" not in caught:
        calls = recorder.calls_seen
        raise ScriptError(f"{path}: the script called backward() {calls} time{'s' if calls != 1 else ''}; "
                          f"there is no call {backward} to trace" if calls else
                          f"{path}: the script never called backward(), so there is no graph to trace")
    return caught["trace"]


def _variable_name(tensor: Any, namespaces: list[dict[str, Any]]) -> str | None:
    """The name a namespace binds to this very tensor (`f`, `loss`), if any."""
    for namespace in namespaces:
        for name, value in namespace.items():
            if value is tensor and not name.startswith("_"):
                return name
    return None


def _line(exc: BaseException, path: Path) -> str:
    """' line N:' of the deepest traceback frame in the script, or ''."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == str(path):
            line = frame.lineno
    return f" line {line}:" if line is not None else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"
