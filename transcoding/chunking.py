"""Cutting a long master into chunks that separate workers encode in parallel.

Chunk starts are whole multiples of the segment duration (itself a whole number of GOPs),
so every chunk starts on a keyframe of the output, chunk outputs concatenate with
``-c copy`` and the packager cuts the same segments it would have cut from one encode.
On one 2-core box chunking gains nothing; it pays when the pool has hosts
(docs/publishing.md has the scaling model and the measurements).
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

    The film's segments are shared out evenly: chunk lengths differ by at most one segment,
    longer chunks first. Equal-length chunks with the remainder in a short or long last
    chunk leave most of the pool idle in the last wave: a 2-hour film on 64 workers in
    equal 60 s chunks is 120 chunks, 1.9 waves, so the second wave runs on 56 workers while
    8 wait, and the film takes 120 s of encoding per worker where 112.5 s would do.
    """
    if duration <= 0:
        raise ValueError("duration must be positive")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    seg = segment_seconds
    min_segments = max(1, math.ceil(min_chunk_seconds / seg - 1e-9))
    max_segments = max(min_segments, math.floor(max_chunk_seconds / seg + 1e-9))
    # Whole segments before the end; a partial last segment rides with the last chunk.
    whole = max(1, math.floor(duration / seg + 1e-9))
    if whole < 2 * min_segments or (workers == 1 and whole <= max_segments):
        return [Chunk(index=0, start=0.0, duration=None)]
    fewest = math.ceil(whole / max_segments)  # no chunk longer than the maximum
    most = whole // min_segments  # no chunk shorter than the minimum
    count = max(1, min(most, max(fewest, workers * chunks_per_worker)))
    base, longer = divmod(whole, count)
    chunks: list[Chunk] = []
    start = 0
    for index in range(count):
        segments = base + (1 if index < longer else 0)
        last = index == count - 1
        chunks.append(Chunk(index, start * seg, None if last else segments * seg))
        start += segments
    return chunks


def chunk_lengths(chunks: list[Chunk], duration: float) -> list[float]:
    """Every chunk's length in seconds, the last one's included."""
    return [c.duration if c.duration is not None else duration - c.start for c in chunks]


def pool_makespan(costs: list[float], workers: int) -> float:
    """When the last of ``costs`` (one per chunk, in dispatch order) finishes on ``workers``
    identical workers that each take the next queued chunk as soon as they are free: what
    a queue with prefetch 1 does. The encode part of the publishing model."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    free_at = [0.0] * min(workers, max(1, len(costs)))
    for cost in costs:
        soonest = min(range(len(free_at)), key=free_at.__getitem__)
        free_at[soonest] += cost
    return max(free_at)
