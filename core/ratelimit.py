"""Rate limits in a store every API process shares: the ``limits`` library, moving windows.

``rate_limit_storage_url`` names the store: ``memory://`` (the embedded default: one API
process, nothing to install) or ``redis://host:6379/N`` (production: every API process and
host counts into the same windows). Limits are written as the library parses them, e.g.
``"10/minute;100/hour"``: every window must have room.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from core.settings import get_settings


@lru_cache(maxsize=4)
def _limiter(url: str) -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(storage_from_string(url))


def limiter() -> MovingWindowRateLimiter:
    return _limiter(get_settings().rate_limit_url)


def reset_counters() -> None:
    """Forget every count (tests; an operator lifting a limit after an incident)."""
    limiter().storage.reset()


@dataclass(frozen=True)
class Throttle:
    """A named limit over keys (an address, an account, nothing for a global limit)."""

    name: str
    rule: str

    @property
    def items(self) -> list[RateLimitItem]:
        return _parse(self.rule)

    def retry_after(self, *key: str) -> int:
        """0 when another hit fits in every window; else seconds until one does."""
        now = time.time()
        wait = 0.0
        for item in self.items:
            if not limiter().test(item, self.name, *key):
                reset = limiter().get_window_stats(item, self.name, *key).reset_time
                wait = max(wait, reset - now, 1.0)
        return math.ceil(wait)

    def hit(self, *key: str) -> None:
        for item in self.items:
            limiter().hit(item, self.name, *key)

    def clear(self, *key: str) -> None:
        for item in self.items:
            limiter().clear(item, self.name, *key)


@lru_cache(maxsize=64)
def _parse(rule: str) -> list[RateLimitItem]:
    return parse_many(rule)
