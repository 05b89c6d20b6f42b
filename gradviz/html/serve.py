"""`gradviz step SOURCE --serve`: the terminal stepper itself, served to browsers by textual-serve.

Each browser that connects gets its own stepper process (textual-serve runs the command
once per connection, with Textual's web driver). textual-serve serves its own script,
style sheet and fonts from its package; its page also links a Google Fonts style sheet,
which this server's copy of the page leaves out (it uses the packaged Roboto Mono font
instead), so a lecture hall with no internet still gets the whole page.
"""

from __future__ import annotations

import argparse
import atexit
import shlex
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from gradviz.errors import GradvizError

TEXTUAL_SERVE = "textual-serve==1.1.3"
WEB_DRIVER = "textual.drivers.web_driver:WebDriver"  # what textual-serve sets TEXTUAL_DRIVER to
_FONTS_LINK = ('<link\n      rel="stylesheet"\n'
               '      href="https://fonts.googleapis.com/css?family=Roboto%20Mono"\n    />')
_LOCAL_FONT = """<style>
      @font-face { font-family: "Roboto Mono"; font-style: normal;
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype"); }
      @font-face { font-family: "Roboto Mono"; font-style: italic;
        src: url("{{ config.static.url }}fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype"); }
    </style>"""


def served_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The `gradviz step …` command line each connection runs: these arguments without --serve."""
    words = [sys.executable, "-m", "gradviz", "step"]
    for action in parser._actions:  # argparse keeps no public list of a parser's arguments
        if action.dest in ("help", "serve", "port", "host", "func") or not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        if not action.option_strings:
            words.append(str(value))
        elif isinstance(action, argparse._StoreTrueAction):
            words += [action.option_strings[-1]] if value else []
        elif isinstance(action, argparse._AppendAction):
            for item in value or []:
                words += [action.option_strings[-1], str(item)]
        elif value is not None and value != action.default:
            words += [action.option_strings[-1], str(value)]
    return shlex.join(words)


def offline_templates() -> Path:
    """textual-serve's page template without its one link to the internet, in a temporary folder."""
    import textual_serve

    original = (Path(textual_serve.__file__).parent / "templates" / "app_index.html").read_text(encoding="utf-8")
    if _FONTS_LINK not in original:  # a textual-serve whose page changed: say so rather than serve a CDN link
        raise GradvizError(f"--serve: this textual-serve's page template is not the one gradviz knows "
                           f"(install {TEXTUAL_SERVE})")
    folder = Path(tempfile.mkdtemp(prefix="gradviz-serve-"))
    atexit.register(shutil.rmtree, folder, True)
    (folder / "app_index.html").write_text(original.replace(_FONTS_LINK, _LOCAL_FONT), encoding="utf-8")
    return folder


def check_port(host: str, port: int) -> None:
    """One line now, rather than textual-serve's banner followed by a bind error."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise GradvizError(f"--serve: cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve_stepper(command: str, host: str, port: int, title: str) -> int:
    """Serve `command` (a `gradviz step` line) on http://host:port until Ctrl+C."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise GradvizError(f"--serve needs textual-serve: pip install {TEXTUAL_SERVE}") from None
    if not 1 <= port <= 65535:
        raise GradvizError(f"--port {port} is out of range: 1 to 65535")
    check_port(host, port)
    server = Server(command, host=host, port=port, title=title, templates_path=offline_templates())
    try:
        server.serve()
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise GradvizError(f"--serve: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return 0
