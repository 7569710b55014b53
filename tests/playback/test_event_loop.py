"""The hot paths never block the event loop.

The app runs on one asyncio loop in debug mode with a slow-callback threshold. Every
blocking thing the playback paths could touch is made slow on purpose (each database
statement, each storage read, each key unwrap sleeps longer than the threshold), and the
caches of immutable things start empty, so a playlist template or a content key must be
loaded. Done in the threadpool, that is invisible to the loop; done on the loop, asyncio
reports the step as slow and the test fails. A probe at the end checks that the detector
itself catches a blocking call.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import event

from api.app import create_app
from core.db import get_engine
from core.storage import get_store
from drm import keys
from drm.playlists import templates
from tests.playback.conftest import Viewing
from tests.playback.test_playback_api import path_of, started

SLOW = 0.4  # each blocking call
# What asyncio reports as a slow step: well above a hot request's own CPU work (under a
# millisecond) even on a busy machine, well below one blocking call.
THRESHOLD = 0.25


@pytest.fixture
def slow_io(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def sleep_first(call: Callable[..., Any]) -> Callable[..., Any]:
        def slowly(*args: Any, **kwargs: Any) -> Any:
            time.sleep(SLOW)
            return call(*args, **kwargs)

        return slowly

    def statement(*_: Any) -> None:
        time.sleep(SLOW)

    store = get_store()
    monkeypatch.setattr(store, "get_bytes", sleep_first(store.get_bytes))
    monkeypatch.setattr(store, "open_read", sleep_first(store.open_read))
    wrapper = keys.wrapper()
    monkeypatch.setattr(wrapper, "unwrap", sleep_first(wrapper.unwrap))
    engine = get_engine()
    event.listen(engine, "before_cursor_execute", statement)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", statement)


def test_hot_paths_do_no_blocking_io_on_the_event_loop(
    viewing: Viewing, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    body = started(viewing)
    request.getfixturevalue("slow_io")  # from here on, every blocking call is slow
    grant = body["token"]
    headers = viewing.grant_headers(grant)
    master_url = path_of(body["master_playlist_url"])
    templates.clear()
    keys.reset()
    statuses: list[tuple[str, int]] = []

    async def drive() -> None:
        loop = asyncio.get_running_loop()
        loop.slow_callback_duration = 60.0  # not during the warm-up
        transport = httpx.ASGITransport(app=create_app(), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            # Once per process, not per request: the first calls build the middleware stack,
            # import what error answers need, and start the threadpool (anyio imports its
            # asyncio backend on first use, ~0.3 s here).
            await c.get("/healthz")
            assert (await c.get(master_url)).status_code == 401
            await run_in_threadpool(lambda: None)
            loop.slow_callback_duration = THRESHOLD

            async def get(url: str) -> httpx.Response:
                response = await c.get(url, headers=headers)
                statuses.append((url.split("?")[0], response.status_code))
                return response

            for _cold_then_warm in range(2):
                master = (await get(master_url)).text
                children = [line for line in master.splitlines() if line.startswith("/v1/")]
                children += re.findall(r'URI="(/v1/[^"]+)"', master)
                for child in children:
                    playlist = (await get(child)).text
                    media = [line for line in playlist.splitlines() if line.startswith("/v1/")]
                    keys_in = re.findall(r'#EXT-X-KEY:[^\n]*URI="(/v1/[^"]+)"', playlist)
                    for url in [*media[:2], *keys_in[:1]]:
                        await get(url)
            # A decision (database) through the same loop: it runs in the threadpool.
            beat = await c.post(
                path_of(body["heartbeat_url"]),
                json={"seq": 1, "position_seconds": 1.0, "watched_seconds": 1.0},
                headers=headers,
            )
            statuses.append(("heartbeat", beat.status_code))

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        asyncio.run(drive(), debug=True)
    assert len(statuses) > 20
    assert {status for _, status in statuses} == {200}, statuses
    slow_steps = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    assert slow_steps == [], slow_steps

    # The detector works: a blocking call on the loop is reported.
    async def blocking() -> None:
        time.sleep(THRESHOLD * 2)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        asyncio.run(blocking(), debug=True)
    assert any("took" in r.getMessage() for r in caplog.records)
