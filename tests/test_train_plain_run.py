"""The trainer's run of unlogged steps (Trainer._plain_steps): it stops exactly at the next logged
step, obeys a stop or a signal that comes between logged steps, and leaves the heartbeat at the
step reached."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

from gradviz.rundir.heartbeat import HEARTBEAT_BYTES, Heartbeat, read_heartbeat
from gradviz.rundir.paths import RunPaths
from gradviz.train.loop import Trainer
from train_support import LINEAR_SPEC, records, status, train_here, write_spec


def _logged(step: int, log_every: int, total: int, epoch_end: bool, validating: bool) -> bool:
    """The loop's own rule for a logged step (Trainer._run)."""
    return step % log_every == 0 or step == 1 or step == total or (epoch_end and validating)


def test_the_next_logged_index_is_the_first_step_the_loops_rule_logs():
    rng = random.Random(0)
    for _ in range(3000):
        log_every = rng.choice([1, 2, 3, 7, 25, 100])
        last_index = rng.randrange(0, 40)
        index = rng.randrange(0, last_index + 1)
        step = rng.randrange(0, 300)
        total = rng.choice([0, step + rng.randrange(1, 80)])
        validating = rng.random() < 0.5
        fake = SimpleNamespace(step=step, total_steps=total, config=SimpleNamespace(log_every=log_every))
        expected = next((i for i in range(index, last_index + 1)
                         if _logged(step + 1 + i - index, log_every, total, i == last_index, validating)),
                        last_index + 1)
        assert Trainer._next_logged(fake, index, last_index, validating) == expected, \
            (step, log_every, total, index, last_index, validating)


def test_a_stop_between_logged_steps_is_obeyed_and_the_heartbeat_holds_the_step_reached(tmp_path: Path):
    # The model's 301st call (step 300) writes a stop into control.json; nothing is logged between step 1
    # and the run's end, so the stop is read in the middle of a run of unlogged steps, at the next poll.
    body = LINEAR_SPEC.replace("def loss(output, target):\n", """_calls = [0]

def loss(output, target):
    _calls[0] += 1
    if _calls[0] == 301:
        from pathlib import Path
        from gradviz.rundir.control import write_control
        from gradviz.rundir.paths import RunPaths
        write_control(RunPaths(Path(RUN_DIR)), "stop")
""") + f"\nRUN_DIR = {str(tmp_path / 'run')!r}\n"
    spec = write_spec(tmp_path, body)
    result = train_here(tmp_path / "run", spec, log_every=10**6, epochs=10**4, val_fraction=0.0)
    assert result.state == "stopped" and 300 <= result.steps < 8 * 10**4
    assert status(tmp_path / "run")["step"] == result.steps
    assert read_heartbeat(RunPaths(tmp_path / "run"))["step"] == result.steps
    assert [r["step"] for r in records(tmp_path / "run")] == [1]  # a stop is not a logged step


def test_the_heartbeat_reads_back_what_was_stored_and_nothing_from_a_foreign_file(tmp_path: Path):
    paths = RunPaths(tmp_path)
    beat = Heartbeat(paths.heartbeat)
    assert read_heartbeat(paths) == {"step": 0, "epoch": 0}
    beat.beat(2**40 + 3, 17)
    assert read_heartbeat(paths) == {"step": 2**40 + 3, "epoch": 17}
    beat.slots[0] = 5  # what the loop of unlogged steps stores, step by step
    assert read_heartbeat(paths) == {"step": 5, "epoch": 17}
    beat.close()
    beat.beat(6, 17)  # a beat after close stores nowhere, and does not raise
    assert read_heartbeat(paths) == {"step": 5, "epoch": 17}  # the last beat outlives the process's map
    paths.heartbeat.write_bytes(b"41 2".ljust(31) + b"\n")  # an older gradviz's text heartbeat
    assert read_heartbeat(paths) is None
    paths.heartbeat.write_bytes(b"\xff" * HEARTBEAT_BYTES)  # negative numbers: not a heartbeat
    assert read_heartbeat(paths) is None
