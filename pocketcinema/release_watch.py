"""Follow a release's transcoding through the public API until it is ready or failed.

The API has no event stream for releases, so this polls ``GET /v1/studio/releases/{id}``
(status, progress of the current phase, estimated seconds left, and on failure a stable
code with a reason a studio can act on). A dropped connection is retried, not fatal: the
release goes on transcoding whether anyone watches or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from pocketcinema.studio_api import ApiProblem, StudioApi

FINAL = frozenset({"ready", "failed"})


def watch_release(
    api: StudioApi,
    release_id: str,
    *,
    interval: float = 2.0,
    timeout: float | None = None,
    on_update: Callable[[dict[str, Any]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The release once it is ready or failed; ``on_update`` sees every poll's answer.
    Raises TimeoutError after ``timeout`` seconds, :class:`ApiProblem` on a refusal (an
    unknown release, a lost sign-in)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            release = api.release(release_id)
        except httpx.TransportError:
            release = None  # the API restarting, a dropped connection: ask again
        except ApiProblem as exc:
            if exc.status < 500:
                raise
            release = None
        if release is not None:
            if on_update:
                on_update(release)
            if release["status"] in FINAL:
                return release
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"release {release_id} was not ready or failed in time")
        sleep(interval)
