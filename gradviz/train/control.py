"""Pause, resume and stop: from the monitor's control file and from signals.

The monitor writes run_dir/control.json; the trainer looks at its modification time at
most every POLL_SECONDS (a stat call, no reading, no device work). SIGINT and SIGTERM
set a flag that the loop checks between steps, so a Ctrl-C finishes the current step,
saves a checkpoint and exits cleanly; a second Ctrl-C aborts at once.

Under torchrun every rank must take the same decision at the same step, or the next
all-reduce hangs: the decision is shared with an all-reduce (MAX) over a CPU group at
logged steps only.
"""

from __future__ import annotations

import math
import signal
import time
from typing import Any

from gradviz.rundir.control import read_control
from gradviz.rundir.paths import RunPaths

POLL_SECONDS = 0.2
NONE, RESUME, PAUSE, STOP = 0, 1, 2, 3
_CODES = {"resume": RESUME, "pause": PAUSE, "stop": STOP}


class Controller:
    """Tells the loop whether to go on, pause or stop."""

    def __init__(self, paths: RunPaths, is_main: bool, group: Any = None, distributed: bool = False):
        self.paths = paths
        self.is_main = is_main
        self.group = group
        self.distributed = distributed
        self.interrupted = False
        self._seen_seq = 0
        self._seen_mtime = 0.0
        # time.monotonic() from which a poll is due: 0 after a signal; never on its own when distributed
        # (the ranks poll together, on logged steps). A loop may compare against it inline, without a call.
        self.next_poll = math.inf if distributed else 0.0

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM ask for a clean stop; a second SIGINT aborts."""

        def handle(signum: int, frame: Any) -> None:
            if self.interrupted and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.interrupted = True
            if not self.distributed:  # at the end of the current step (distributed: the next logged one)
                self.next_poll = 0.0

        signal.signal(signal.SIGINT, handle)
        signal.signal(signal.SIGTERM, handle)

    def due(self, logged_step: bool) -> bool:
        """Whether to poll now: on a timer alone, or only on logged steps when distributed."""
        if self.distributed:
            return logged_step
        if self.interrupted:
            return True
        now = time.monotonic()
        if now < self.next_poll:
            return False
        self.next_poll = now + POLL_SECONDS
        return True

    def poll(self, news: int = 0) -> int:
        """The command to act on now: NONE, RESUME, PAUSE or STOP (agreed by all ranks).

        `news` rides along in the same all-reduce: afterwards `self.news` is its maximum over
        ranks (the trainer's 'a logged window went non-finite at step N', known to rank 0 only).
        """
        code = STOP if self.interrupted else self._read_command() if self.is_main else NONE
        self.news = news
        if self.distributed:
            import torch
            import torch.distributed as dist

            flag = torch.tensor([code, news], dtype=torch.int64)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.group)
            code, self.news = int(flag[0]), int(flag[1])
        return code

    def wait_while_paused(self, on_tick: Any = None) -> int:
        """Block until resume or stop arrives; returns RESUME or STOP."""
        while True:
            time.sleep(POLL_SECONDS / 2)
            if on_tick is not None:
                on_tick()
            code = self.poll()
            if code in (RESUME, STOP):
                return code

    def _read_command(self) -> int:
        try:
            mtime = self.paths.control.stat().st_mtime
        except FileNotFoundError:
            return NONE
        if mtime == self._seen_mtime:
            return NONE
        self._seen_mtime = mtime
        seq, command = read_control(self.paths)
        if seq <= self._seen_seq:
            return NONE
        self._seen_seq = seq
        return _CODES.get(str(command), NONE)
