"""A small in-process cache with a time-to-live, for hot read paths (key and playlist
requests) whose inputs change rarely. Each API process has its own copy, so a TTL bounds how
long a change made elsewhere can go unseen; callers document that bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._items: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            if len(self._items) >= self.max_entries:
                # Drop expired entries first; if still full, start over (rare, and safe).
                self._items = {k: v for k, v in self._items.items() if v[0] > now}
                if len(self._items) >= self.max_entries:
                    self._items.clear()
            self._items[key] = (now + self.ttl, value)
        return value

    def forget(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
