"""Routing one channel (the rows between two ranks) like a VLSI channel router.

Every edge crossing the channel is a hop from column a (top) to column b (bottom); a
bending hop runs down column a to a track, along it, and down column b. Tracks follow
the left-edge algorithm under vertical constraints: a hop entering at column c turns
above the hop leaving at c, or their vertical runs would overlap. Constraints can form
cycles (two hops swapping columns); one hop of each then changes track through a free
column (a dogleg). Two hops thus share a cell only where one crosses the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


@dataclass(eq=False, slots=True)
class Hop:
    """One edge's passage through one channel, from column a (top) to column b (bottom)."""

    edge: int
    channel: int
    top: object  # what the hop leaves: route.py's box, label or passage
    bottom: object
    a: int = 0
    b: int = 0
    track: int = -1
    dogleg: int | None = None  # a free column where the hop changes track
    track2: int = -1


@dataclass(eq=False)
class _Segment:
    """A horizontal run waiting for a track; it must lie below every segment in `above`."""

    hop: Hop
    second: bool
    left: int
    right: int
    above: list["_Segment"] = field(default_factory=list)


def fit_ports(desired: Sequence[int], lo: int, hi: int) -> list[int]:
    """Ports in order, as near their desired columns as fits in [lo, hi], two columns apart."""
    n = len(desired)
    if n == 0:
        return []
    step = 2 if n == 1 or 2 * (n - 1) <= hi - lo else max(1, (hi - lo) // (n - 1))
    placed: list[int] = []
    for want in desired:
        floor = placed[-1] + step if placed else lo
        placed.append(max(want, floor, lo))
    ceiling = hi
    for i in range(n - 1, -1, -1):
        placed[i] = min(placed[i], ceiling)
        ceiling = placed[i] - step
    return placed


def _break_cycles(hops: list[Hop], used: set[int]) -> None:
    """Give one hop of every vertical-constraint cycle a dogleg through a column not in `used`."""
    top_at = {hop.a: hop for hop in hops}
    state: dict[Hop, int] = {}
    for start in hops:
        walk: list[Hop] = []
        hop: Hop | None = start
        while hop is not None and hop not in state:
            state[hop] = 1
            walk.append(hop)
            above = top_at.get(hop.b)
            hop = above if above is not hop else None
        if hop is not None and state.get(hop) == 1:
            victim = hop
            middle = (victim.a + victim.b) // 2
            offset = 0
            while True:
                for col in (middle + offset, middle - offset):
                    if col >= 0 and col not in used:
                        victim.dogleg = col
                        break
                if victim.dogleg is not None:
                    break
                offset += 1
            used.add(victim.dogleg)
        for seen in walk:
            state[seen] = 2


def route_channel(hops: list[Hop]) -> int:
    """Assign tracks to the channel's bending hops; return how many tracks it needs."""
    bending = [hop for hop in hops if hop.a != hop.b]
    _break_cycles(bending, {hop.a for hop in hops} | {hop.b for hop in hops})
    segments: list[_Segment] = []
    first_of: dict[Hop, _Segment] = {}
    last_of: dict[Hop, _Segment] = {}
    for hop in bending:
        if hop.dogleg is None:
            seg = _Segment(hop, False, min(hop.a, hop.b), max(hop.a, hop.b))
            first_of[hop] = last_of[hop] = seg
            segments.append(seg)
        else:
            one = _Segment(hop, False, min(hop.a, hop.dogleg), max(hop.a, hop.dogleg))
            two = _Segment(hop, True, min(hop.dogleg, hop.b), max(hop.dogleg, hop.b), [one])
            first_of[hop], last_of[hop] = one, two
            segments += [one, two]
    # a hop entering at column c must turn above the hop leaving at column c.
    entering = {hop.a: first_of[hop] for hop in bending}
    for hop in bending:
        above = entering.get(hop.b)
        if above is not None and above.hop is not hop:
            last_of[hop].above.append(above)
    placed: dict[_Segment, int] = {}
    pending = sorted(segments, key=lambda seg: (seg.left, seg.right))
    track = 0
    while pending:
        reach = -1
        rest: list[_Segment] = []
        progress = False
        for seg in pending:
            ready = all(placed.get(up, track) < track for up in seg.above)
            if ready and seg.left > reach:
                placed[seg] = track
                reach = seg.right
                progress = True
            else:
                rest.append(seg)
        if not progress:
            raise RuntimeError("channel routing found a constraint cycle it could not break")
        pending = rest
        track += 1
    for seg, t in placed.items():
        if seg.second:
            seg.hop.track2 = t
        else:
            seg.hop.track = t
    return track
