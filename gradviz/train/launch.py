"""Start the trainer in its own process (or under torchrun) and hand back a handle.

Imports neither torch nor textual: the command line and the stepper launch training
and open the monitor at once, while the worker pays for importing torch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gradviz.errors import TrainingError
from gradviz.train.config import TrainConfig, write_config
from gradviz.rundir.control import write_control
from gradviz.rundir.paths import RunPaths
from gradviz.rundir.status import record_exit, write_status


@dataclass
class TrainingHandle:
    """A running trainer: its process (group), its run directory and how to steer it."""

    process: subprocess.Popen
    paths: RunPaths

    @property
    def run_dir(self) -> Path:
        return self.paths.root

    def alive(self) -> bool:
        """Whether the trainer process has not exited yet."""
        return self.process.poll() is None

    def check_exit(self) -> int | None:
        """Reap the trainer if it has exited (no zombie is left counting as alive) and, when
        it died without saying how the run ended, write that into status.json; its exit
        status, or None while it runs."""
        returncode = self.process.poll()
        if returncode is not None:
            try:
                record_exit(self.paths, returncode)
            except OSError:
                pass  # the run directory went away; the state reads as lost
        return returncode

    def pause(self) -> None:
        """Ask the trainer to pause after its current step."""
        write_control(self.paths, "pause")

    def resume(self) -> None:
        """Ask a paused trainer to go on."""
        write_control(self.paths, "resume")

    def stop(self) -> None:
        """Ask the trainer to stop cleanly (it saves a checkpoint)."""
        write_control(self.paths, "stop")

    def interrupt(self) -> None:
        """Send SIGINT to the trainer's process group: a clean stop, as Ctrl-C in a terminal."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGINT)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the trainer to exit; returns its exit status."""
        return self.process.wait(timeout)

    def kill(self) -> None:
        """End the trainer's process group at once (SIGKILL); for tests and last resorts."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def default_run_dir(spec_path: str, root: str = "runs") -> Path:
    """runs/<spec name>-<date-time>, with a suffix when that name is taken."""
    stem = Path(spec_path).stem
    base = Path(root) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def worker_command(config: TrainConfig, config_path: Path) -> list[str]:
    """The command line of the trainer: the worker module, alone or under torchrun."""
    worker = ["-m", "gradviz.train.worker", "--config", str(config_path)]
    if not config.distributed:
        return [sys.executable, *worker]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(config.nproc_per_node)]
    if config.nnodes == 1:
        torchrun.append("--standalone")  # picks a free port itself: no clash between runs
    else:
        torchrun += ["--nnodes", str(config.nnodes), "--node-rank", str(config.node_rank),
                     "--master-addr", config.master_addr, "--master-port", str(config.master_port)]
    return [*torchrun, *worker]


def start_training(config: TrainConfig) -> TrainingHandle:
    """Create the run directory, write config.json and start the trainer process."""
    paths = RunPaths(Path(config.run_dir))
    if paths.metrics.exists() or paths.status.exists():
        raise TrainingError(f"{paths.root} already holds a run; choose another --run-dir")
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        write_config(config, paths.config)
        log = open(paths.worker_log, "ab")
    except OSError as exc:
        raise TrainingError(f"cannot create the run directory {paths.root}: {exc.strerror}") from None
    env = dict(os.environ)
    # The worker must import this same gradviz, installed or not.
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding gradviz/
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, config.nproc_per_node))))
    with log:
        # A session of its own: the trainer outlives a monitor that detaches from it, and
        # a Ctrl-C reaches it only through interrupt(), once, as a clean stop.
        process = subprocess.Popen(worker_command(config, paths.config), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
    write_status(paths, "starting", launcher_pid=process.pid)
    return TrainingHandle(process, paths)
