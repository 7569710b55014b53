"""Covered content: the part of a film a ticket's viewers actually played, as a rule on plain
values (no database). :mod:`boxoffice.views` applies it under the ticket's row lock and
stores the result; docs/boxoffice.md states it in words.

A heartbeat says "the playhead is at ``position``, and I played ``watched`` seconds since my
previous heartbeat". It credits the content range ``[position - length, position]`` where
``length`` is the least of

* what the player reports (``watched``; negative or NaN is 0),
* ``max_credit_ms`` (one forged heartbeat cannot claim a whole film),
* the wall time since the session's previous heartbeat, or since its view start for the first
  one (a burst of heartbeats in one second covers nothing; a session without a recorded view
  start covers nothing),

clipped to ``[0, runtime]``. The ticket's covered content is the *union* of those ranges over
all its sessions and devices, so a restart or a second screen that plays the same minutes adds
nothing, and it never exceeds the wall time since the ticket's first view start: a heartbeat
whose new content would overrun that is cut at the point where the union reaches it. Heartbeats
from outside the session's territory cover nothing.

Everything is in integer milliseconds, so unions and bounds are exact on every backend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

Interval = tuple[int, int]  # [start_ms, end_ms), start < end

# A ticket's union is stored as one JSON list; seeking around a film makes a few dozen pieces.
# Past this many, a heartbeat that would open a new piece covers nothing (it may still extend
# or join existing ones), so forged scattered positions cannot bloat the row.
MAX_PIECES = 512

_MS = timedelta(milliseconds=1)


def to_ms(seconds: float) -> int:
    """Seconds reported by a player -> whole milliseconds (NaN, negative -> 0; +inf -> huge)."""
    if not seconds > 0:  # also NaN
        return 0
    if math.isinf(seconds):
        return 2**62
    return math.floor(seconds * 1000)


def elapsed_ms(since: datetime, until: datetime) -> int:
    """Whole milliseconds from ``since`` to ``until``; 0 if ``until`` is earlier (clock skew)."""
    return max((until - since) // _MS, 0)


def total_ms(intervals: Sequence[Interval]) -> int:
    return sum(end - start for start, end in intervals)


def union(intervals: Sequence[Interval], extra: Interval) -> list[Interval]:
    """Normalized (sorted, disjoint, non-touching) union of a normalized list and one more."""
    start, end = extra
    out: list[Interval] = []
    placed = False
    for a, b in intervals:
        if b < start:
            out.append((a, b))
        elif end < a:
            if not placed:
                out.append((start, end))
                placed = True
            out.append((a, b))
        else:
            start, end = min(a, start), max(b, end)
    if not placed:
        out.append((start, end))
    return out


def cut_for_room(intervals: Sequence[Interval], candidate: Interval, room_ms: int) -> Interval:
    """The prefix ``[start, cut)`` of ``candidate`` whose not-yet-covered part is at most
    ``room_ms`` long (the whole candidate if it fits)."""
    start, end = candidate
    position = start
    left = room_ms
    for a, b in intervals:
        if b <= position:
            continue
        if a >= end:
            break
        gap = min(a, end) - position  # uncovered stretch before this piece
        if gap > 0:
            if gap >= left:
                return (start, position + left)
            left -= gap
        position = max(position, b)
        if position >= end:
            return (start, end)
    if end - position > left:
        return (start, position + left)
    return (start, end)


@dataclass(frozen=True)
class Coverage:
    """A ticket's covered content and the clock it is bounded by."""

    intervals: tuple[Interval, ...] = ()
    clock_started_at: datetime | None = None  # the ticket's first view start
    latest_at: datetime | None = None  # the latest heartbeat time seen

    @cached_property
    def covered_ms(self) -> int:
        return total_ms(self.intervals)

    def wall_ms(self, at: datetime) -> int:
        """Wall time since the ticket's first view start, at the latest heartbeat time seen
        (so a heartbeat whose clock runs behind another server's cannot shrink it)."""
        if self.clock_started_at is None:
            return 0
        latest = at if self.latest_at is None else max(at, self.latest_at)
        return elapsed_ms(self.clock_started_at, latest)


@dataclass(frozen=True)
class Beat:
    """One heartbeat as the rule needs it."""

    at: datetime
    position_seconds: float
    watched_seconds: float
    # The session's previous heartbeat time, or its view start for its first heartbeat; None
    # when the session has neither (no key was ever delivered to it).
    session_since: datetime | None
    outside_territory: bool = False


@dataclass(frozen=True)
class Credit:
    """What one heartbeat covered (``None``: nothing) and the ticket's coverage after it."""

    interval: Interval | None
    coverage: Coverage


def credit_heartbeat(
    coverage: Coverage,
    beat: Beat,
    *,
    runtime_ms: int | None,
    max_credit_ms: int,
    max_pieces: int = MAX_PIECES,
) -> Credit:
    """Apply one heartbeat to a ticket's coverage (see the module docstring for the rule)."""
    started = coverage.clock_started_at
    latest = beat.at if coverage.latest_at is None else max(beat.at, coverage.latest_at)
    clock = Coverage(coverage.intervals, started, latest)
    if beat.outside_territory or beat.session_since is None or started is None:
        return Credit(None, clock)
    length = min(
        to_ms(beat.watched_seconds), max_credit_ms, elapsed_ms(beat.session_since, beat.at)
    )
    end = to_ms(beat.position_seconds)
    start = max(end - length, 0)
    if runtime_ms is not None:
        end = min(end, runtime_ms)
    if end <= start:
        return Credit(None, clock)
    room = clock.wall_ms(beat.at) - clock.covered_ms
    if room <= 0:
        return Credit(None, clock)
    interval = cut_for_room(clock.intervals, (start, end), room)
    if interval[1] <= interval[0]:
        return Credit(None, clock)
    merged = union(clock.intervals, interval)
    if len(merged) > max(max_pieces, len(clock.intervals)):
        return Credit(None, clock)
    return Credit(interval, Coverage(tuple(merged), started, latest))
