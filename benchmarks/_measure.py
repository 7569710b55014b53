"""What the benchmarks that run FFmpeg measure besides wall time."""

from __future__ import annotations

import resource


def children_cpu() -> float:
    """CPU-seconds (user + system) of every finished child process so far: FFmpeg's share
    of a step is the difference across it, whatever else the box was doing."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
