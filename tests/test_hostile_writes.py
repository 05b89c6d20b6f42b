"""Every command that writes a file, under faults: the write is whole or not at all.

With a file-size limit hit mid-write an existing file stays as it was (no torn prefix,
no temporary file left behind); `-o ''` is an error, never 'wrote nothing, exit 0'; a
script that changes directory does not move where a relative output lands; a drawing
whose coordinates are not finite is refused before it is written.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_hostile_files import good_run  # noqa: F401  (a fixture: a finished run directory)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
GOOD = b"<svg>an earlier, good picture</svg>\n"
LIMIT = 1024  # bytes: above GOOD, below every picture these commands write

# command line with {out} where the file goes; every command of gradviz that writes a file
WRITERS = {
    "descent": ["descent", "x**2 + 10*y**2", "--steps", "5", "-o", "{out}.svg"],
    "batches": ["batches", "--n", "16", "--epochs", "1", "-o", "{out}.svg"],
    "landscape": ["landscape", str(SAMPLES / "two_layer_mlp.py"), "--grid", "5", "-o", "{out}.svg"],
    "methods": ["methods", "exp(x1/x2) * x2", "--at", "x1=1.5,x2=0.5", "--svg", "{out}.svg"],
    "export-svg": ["export", "exp(x1/x2) * x2", "--at", "x1=1.5,x2=0.5", "-o", "{out}.svg"],
    "export-dot": ["export", "exp(x1/x2) * x2", "--at", "x1=1.5,x2=0.5", "-o", "{out}.dot"],
    "export-layers": ["export", str(SAMPLES / "two_layer_mlp.py"), "--layers", "-o", "{out}.html"],
    "export-run": ["export", "{run}", "-o", "{out}.svg"],
}


def gradviz(argv: list[str], cwd: Path, file_limit: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", "PYTHONDONTWRITEBYTECODE": "1"}

    def limit() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return subprocess.run([sys.executable, "-m", "gradviz", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, preexec_fn=limit)


def argv_for(name: str, out: str, run: Path) -> list[str]:
    return [a.format(out=out, run=run) for a in WRITERS[name]]


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 1 and lines[0].startswith("gradviz: error:"), result.stderr
    return lines[0]


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_write_cut_short_by_a_file_size_limit_leaves_the_existing_file_whole(name, tmp_path, good_run):
    suffix = WRITERS[name][-1].rpartition(".")[2]
    target = tmp_path / f"picture.{suffix}"
    target.write_bytes(GOOD)
    result = gradviz(argv_for(name, "picture", good_run), tmp_path, file_limit=LIMIT)
    assert target.read_bytes() == GOOD, "a failed write harmed the existing file"
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "cannot write picture" in one_error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name], "a temporary file was left behind"


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_an_empty_output_path_is_an_error(name, tmp_path, good_run):
    argv = argv_for(name, "X", good_run)
    argv[-1] = ""
    result = gradviz(argv, tmp_path)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "'': give a file name" in one_error_line(result)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_write_replaces_the_file_whole_and_keeps_its_mode(name, tmp_path, good_run):
    suffix = WRITERS[name][-1].rpartition(".")[2]
    target = tmp_path / f"picture.{suffix}"
    target.write_bytes(GOOD)
    target.chmod(0o640)
    result = gradviz(argv_for(name, "picture", good_run), tmp_path)
    assert result.returncode == 0, result.stderr
    written = target.read_bytes()
    assert written != GOOD and len(written) > LIMIT
    assert (target.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


CHDIR_SCRIPT = """
import os
import torch
os.makedirs("elsewhere", exist_ok=True)
os.chdir("elsewhere")
torch.manual_seed(0)
layer = torch.nn.Linear(2, 1)
x = torch.tensor([[1.5, -0.5]])
total = torch.sigmoid(layer(x)).sum()
total.backward()
"""


@pytest.mark.parametrize("argv", [["export", "script.py", "-o", "rel.svg"],
                                  ["export", "script.py", "--layers", "-o", "rel.svg"]])
def test_a_script_that_changes_directory_does_not_move_the_output(argv, tmp_path):
    (tmp_path / "script.py").write_text(CHDIR_SCRIPT)
    result = gradviz(argv, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rel.svg").is_file(), "the output did not land where gradviz started"
    assert not (tmp_path / "elsewhere" / "rel.svg").exists()


@pytest.mark.parametrize("window", ["x=-1e308:1e308,y=-1e308:1e308", "x=0:1e-320,y=0:1", "x=1e15:1.0000000000001e15,y=0:1"])
def test_a_window_too_extreme_to_draw_is_refused_before_writing(window, tmp_path):
    result = gradviz(["descent", "x**2 + y**2", "--window", window, "--steps", "5", "-o", "w.svg"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "to draw" in one_error_line(result)
    assert not (tmp_path / "w.svg").exists()


def test_an_svg_with_a_coordinate_not_finite_is_never_written(tmp_path):
    """The last guard, whatever made the number: the map writer refuses NaN/Inf geometry."""
    from gradviz.descent.svg import write_svg
    from gradviz.errors import GradvizError

    good = '<svg width="10" height="10"><line x1="0" y1="0" x2="5" y2="5"/><text x="1" y="2">loss = nan</text></svg>'
    write_svg(good, tmp_path / "ok.svg")  # 'nan' as text on the picture is a value shown, not a coordinate
    assert (tmp_path / "ok.svg").read_text() == good
    for bad in ('<line x1="nan" y1="0"/>', '<polyline points="1,2 inf,3"/>', '<path d="M 0 0 L -inf 2"/>'):
        with pytest.raises(GradvizError, match="not finite"):
            write_svg(f"<svg>{bad}</svg>", tmp_path / "bad.svg")
        assert not (tmp_path / "bad.svg").exists()


def test_a_link_is_written_through_and_a_fifo_without_reader_is_an_error(tmp_path):
    (tmp_path / "link.svg").symlink_to("real.svg")
    result = gradviz(["descent", "x**2 + y**2", "--steps", "3", "-o", "link.svg"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "link.svg").is_symlink() and (tmp_path / "real.svg").read_text().startswith("<svg")
    os.mkfifo(tmp_path / "pipe.svg")  # nothing reads it: opening it to write would block forever
    result = gradviz(["descent", "x**2 + y**2", "--steps", "3", "-o", "pipe.svg"], tmp_path)
    assert result.returncode == 2 and "nothing reads from it" in one_error_line(result)
