"""Cutting a long master into chunks that separate workers encode in parallel.

Chunk starts are whole multiples of the segment duration (itself a whole number of GOPs),
so every chunk starts on a keyframe of the output, chunk outputs concatenate with
``-c copy`` and the packager cuts the same segments it would have cut from one encode.
On one 2-core box chunking gains nothing (FINDINGS.md); it pays when the pool has hosts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    index: int
    start: float  # seconds into the master
    duration: float | None  # None: to the end of the master (the last chunk)

    @property
    def is_last(self) -> bool:
        return self.duration is None


def plan_chunks(
    duration: float,
    workers: int,
    *,
    segment_seconds: float = 6.0,
    min_chunk_seconds: float = 12.0,
    max_chunk_seconds: float = 300.0,
    chunks_per_worker: int = 2,
) -> list[Chunk]:
    """Chunks covering ``[0, duration)`` for a pool of ``workers``.

    Aims at ``chunks_per_worker`` chunks per worker (so a slow host or a retried chunk does
    not leave the rest of the pool idle at the end), never shorter than
    ``min_chunk_seconds`` (process start-up and the decoder's lead-in cost a few seconds
    each) nor longer than ``max_chunk_seconds`` (a retry repeats at most that much work).
    A film shorter than two minimum chunks is one chunk.
    """
    if duration <= 0:
        raise ValueError("duration must be positive")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    seg = segment_seconds
    min_len = math.ceil(min_chunk_seconds / seg - 1e-9) * seg
    max_len = max(min_len, math.floor(max_chunk_seconds / seg + 1e-9) * seg)
    if duration < 2 * min_len or (workers == 1 and duration <= max_len):
        return [Chunk(index=0, start=0.0, duration=None)]
    target = duration / (workers * chunks_per_worker)
    length = min(max_len, max(min_len, math.ceil(target / seg - 1e-9) * seg))
    count = max(1, math.ceil(duration / length - 1e-9))
    # A last chunk shorter than half a chunk is folded into the one before: starting a
    # process for a few seconds of video costs more than it saves.
    if count > 1 and duration - (count - 1) * length < length / 2:
        count -= 1
    chunks = [Chunk(index=i, start=i * length, duration=length) for i in range(count - 1)]
    chunks.append(Chunk(index=count - 1, start=(count - 1) * length, duration=None))
    return chunks
