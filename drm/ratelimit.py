"""Per-session limit on key requests, in process memory.

A player fetches a key once per key period (once per film without rotation, a few more
after seeks or quality switches); a client hammering the key route is a download tool or a
leaked session. A token bucket per session allows bursts of ``per_minute`` and refills at
``per_minute``/60 per second. The state is per API process: with N processes a session can
get at most N times the limit, which is still a bound (a shared Redis bucket would be the
next step if that ever matters).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from core.errors import TooManyRequests
from core.ratelimit import limiter

_MAX_TRACKED = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class KeyRateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, session_id: str, per_minute: int, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        rate = per_minute / 60.0
        with self._lock:
            bucket = self._buckets.get(session_id)
            if bucket is None:
                if len(self._buckets) >= _MAX_TRACKED:
                    self._evict(now, rate, per_minute)
                bucket = self._buckets[session_id] = _Bucket(float(per_minute), now)
            else:
                bucket.tokens = min(per_minute, bucket.tokens + (now - bucket.updated) * rate)
                bucket.updated = now
            if bucket.tokens < 1.0:
                retry = max(1, int((1.0 - bucket.tokens) / rate) + 1)
                raise TooManyRequests(
                    "too many key requests for this playback session",
                    code="key_rate_limited",
                    retry_after_seconds=retry,
                )
            bucket.tokens -= 1.0

    def _evict(self, now: float, rate: float, capacity: int) -> None:
        # Buckets that would be full again carry no information: drop them first.
        full = [
            sid
            for sid, b in self._buckets.items()
            if b.tokens + (now - b.updated) * rate >= capacity
        ]
        for sid in full or list(self._buckets)[: _MAX_TRACKED // 10]:
            del self._buckets[sid]

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


key_limiter = KeyRateLimiter()


def first_sighting(name: str, digest: str, seconds: int) -> bool:
    """True the first time ``digest`` is seen under ``name`` within ``seconds``, in the
    store every API process shares (core.ratelimit: memory, or Redis in production), so a
    replayed license challenge is caught whichever process it reaches."""
    return int(limiter().storage.incr(f"{name}/{digest}", seconds)) == 1
