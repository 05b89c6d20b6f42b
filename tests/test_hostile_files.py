"""Bad files in a run directory, for every command that reads one: never code run, never a
block, never a traceback; one line and exit 2.

The canary: a pickle that, if any load path unpickled it with code allowed, would create a
file. Each case runs as its own process under a time limit (a FIFO read would block forever).
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train_support import LINEAR_SPEC, run_worker, write_spec

ROOT = Path(__file__).resolve().parent.parent
LIMIT_SECONDS = 60


class Canary:
    """Unpickled with code allowed, it touches the file its path names."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    """A finished run of a tiny spec, with snapshots and a saved (finite) step to replay."""
    from gradviz.sources.spec import build_model, load_spec, make_data
    from gradviz.train.nan_origin import save_step

    folder = tmp_path_factory.mktemp("good")
    spec = write_spec(folder, LINEAR_SPEC)
    assert run_worker(folder / "run", spec, seed=0, epochs=1, snapshots=3) == 0
    loaded = load_spec(spec)
    model = build_model(loaded)
    x, y = make_data(loaded, 0)
    save_step(folder / "run", 1, 0, 0, spec, None, model.state_dict(), x[:8], y[:8])
    return folder / "run"


def plant(run: Path, name: str, kind: str, canary: Path) -> None:
    """Replace run/name by a bad file of this kind."""
    path = run / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    if kind == "canary":
        torch.save({"model": Canary(canary), "step": 1}, path)
    elif kind == "plain-pickle":  # pickle.dump, not torch.save: the other format torch.load reads
        path.write_bytes(pickle.dumps(Canary(canary)))
    elif kind == "fifo":
        os.mkfifo(path)  # no writer: a reader that opens it blocks forever
    elif kind == "garbage":
        path.write_bytes(b"\x00garbage, not what this file should hold\xff" * 10)
    elif kind == "list":
        torch.save([1, 2, 3], path)
    elif kind == "mismatched":
        torch.save({"step": 1, "epoch": 0, "seed": 0, "spec": str(run.parent / "spec.py"), "dropout": None,
                    "model": {"no.such.weight": torch.zeros(2)}, "x": torch.zeros(8, 3), "y": torch.zeros(8, 1)}, path)
    else:
        raise AssertionError(kind)


COMMANDS = {
    "step": ["step", "{run}"],
    "landscape": ["landscape", "{run}", "--grid", "3"],
    "monitor": ["monitor", "{run}", "--no-tui"],
    "export": ["export", "{run}", "-o", "{out}"],
}
# (command, file in the run directory, kinds of bad file)
CASES = [
    ("step", "nan_step.pt", ("canary", "plain-pickle", "fifo", "garbage", "list", "mismatched")),
    ("landscape", "final.pt", ("canary", "plain-pickle", "fifo", "garbage")),
    ("landscape", "snapshots/step_00000001.pt", ("canary", "fifo")),
    ("landscape", "config.json", ("fifo", "garbage")),
    ("monitor", "metrics.jsonl", ("fifo",)),
    ("monitor", "config.json", ("fifo",)),
    ("monitor", "histograms.jsonl", ("fifo",)),
    ("export", "metrics.jsonl", ("fifo",)),
]


def run_gradviz(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "gradviz", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=LIMIT_SECONDS, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("command, name, kind", [(c, n, k) for c, n, kinds in CASES for k in kinds])
def test_a_bad_run_file_is_refused_in_one_line_and_runs_no_code(good_run, tmp_path, command, name, kind):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    shutil.copy(good_run.parent / "spec.py", tmp_path / "spec.py")
    canary = tmp_path / "CANARY"
    plant(run, name, kind, canary)
    argv = [a.format(run=run, out=tmp_path / "out.svg") for a in COMMANDS[command]]
    result = run_gradviz(argv, tmp_path)
    assert not canary.exists(), "a load path ran code from the file"
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 1 and lines[0].startswith("gradviz: error:"), result.stderr
    assert Path(name).name in lines[0] or name.split("/")[0] in lines[0], lines[0]
    assert "weights_only=False" not in result.stderr and "weights_only" not in result.stderr


def test_the_canary_does_run_code_when_unpickled_unguarded(tmp_path):
    """The canary itself works: without the guard, loading it creates the file."""
    canary = tmp_path / "CANARY"
    plant(tmp_path, "x.pt", "canary", canary)
    torch.load(tmp_path / "x.pt", weights_only=False)
    assert canary.exists()


def test_the_replayed_step_of_a_good_file_still_loads(good_run):
    from gradviz.train.nan_origin import trace_saved

    trace = trace_saved(good_run)
    assert trace.graph.nodes and trace.adjoints


# -- records skipped are counted and named ------------------------------------------------
BAD_LINES = {
    "a 5 MB line": "x" * (5 * 2**20),
    "not JSON": "{torn",
    "a list": "[1, 2]",
    "wrong types": '{"step": "abc", "loss": [1], "grad_norm": {}}',
}


@pytest.mark.parametrize("log", ["metrics.jsonl", "histograms.jsonl"])
def test_monitor_names_every_line_it_skipped(good_run, tmp_path, log):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    path = run / log
    before = len(path.read_text().splitlines()) if path.exists() else 0
    with open(path, "a") as handle:
        for line in BAD_LINES.values():
            handle.write(line + "\n")
    result = run_gradviz(["monitor", str(run), "--no-tui"], tmp_path)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("gradviz: note:")]
    named = ", ".join(str(before + i) for i in range(1, len(BAD_LINES) + 1))
    assert notes == [f"gradviz: note: {log}: skipped {len(BAD_LINES)} lines (lines {named}) that are not a record "
                     "gradviz can read (not a JSON object, over 4 MB, or fields of the wrong types)"], result.stderr
    assert "steps" in result.stdout  # the good records are still shown
