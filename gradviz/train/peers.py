"""Who is in a torchrun job, and which peer was lost when a collective fails.

At start every rank shares (node, host, pid) once. When a collective then fails because
another process went away, gloo says only "Connection reset by peer"; a surviving rank
names the lost one instead: a rank on this host whose process is gone, or else the
ranks of the other nodes (this node's are all alive).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from gradviz.processes import process_alive

# What gloo and NCCL say when the process at the other end of a collective is gone.
PEER_LOST = ("connection reset by peer", "connection closed by peer", "broken pipe", "remote process exited",
             "connection refused", "communicator was aborted", "socket closed", "econnreset")


@dataclass(frozen=True)
class Peer:
    """One process of the job."""

    rank: int
    node: int
    host: str
    pid: int


def gather_peers(node: int, group: Any = None) -> list[Peer]:
    """Every rank's (node, host, pid), in rank order: one all_gather_object at start."""
    import torch.distributed as dist

    mine = (node, socket.gethostname(), os.getpid())
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine, group=group)
    return [Peer(rank, *entry) for rank, entry in enumerate(everyone)]


def is_peer_lost(exc: BaseException) -> bool:
    """Whether an error is a collective failing because another process went away."""
    text = str(exc).lower()
    return any(marker in text for marker in PEER_LOST)


def lost_peer_message(peers: list[Peer], me: int, step: int | None) -> str:
    """One line naming the lost rank(s) and their node: 'rank 1 on node 1 (host) stopped answering …'."""
    mine = peers[me]
    dead_here = [p for p in peers if p.host == mine.host and p.rank != me and not process_alive(p.pid)]
    lost = dead_here or [p for p in peers if p.node != mine.node]
    at = f" at step {step}" if step else ""
    if not lost:
        return f"another process of the job stopped answering during a collective{at}"
    ranks = ", ".join(str(p.rank) for p in lost)
    nodes = sorted({p.node for p in lost})
    where = ", ".join(f"node {n} ({next(p.host for p in lost if p.node == n)})" for n in nodes)
    noun = "rank" if len(lost) == 1 else "ranks"
    how = "its process is gone" if dead_here else "killed, crashed, or its node went away"
    return (f"{noun} {ranks} on {where} stopped answering during a collective{at} ({how}); "
            f"rank {me} on node {mine.node} stopped too")
