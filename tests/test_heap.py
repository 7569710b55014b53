"""The API process freezes the heap it starts with (core/heap.py) and serves with the
one-write protocol (api/http_server.py)."""

from __future__ import annotations

import gc

import pytest
import uvicorn

from api.http_server import OneWriteHttpProtocol
from core import heap
from core.heap import freeze_startup_heap
from pocketcinema import cli
from tests.conftest import free_port


def _walked_by_a_full_collection(obj: object) -> bool:
    # gc.get_objects() lists generations 0-2: what a full collection walks.
    return any(o is obj for o in gc.get_objects())


def test_a_full_collection_no_longer_walks_the_start_up_heap() -> None:
    kept = [{"n": n, "items": [n]} for n in range(50_000)]  # a start-up's worth of objects
    try:
        assert _walked_by_a_full_collection(kept[-1])
        frozen = freeze_startup_heap()
        assert frozen >= 2 * len(kept)
        assert not _walked_by_a_full_collection(kept[-1])
        assert not _walked_by_a_full_collection(kept[0]["items"])
        made_later: list[object] = [[]]
        assert _walked_by_a_full_collection(made_later)  # what requests create still is
    finally:
        gc.unfreeze()


def test_the_api_command_freezes_the_built_heap_and_serves_with_the_one_write_protocol(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[object] = []

    def freeze() -> int:
        events.append("freeze")
        return 0

    monkeypatch.setattr(heap, "freeze_startup_heap", freeze)

    def run(server: uvicorn.Server, sockets: object = None) -> None:
        events.append(("serve", server.config.http))

    monkeypatch.setattr(uvicorn.Server, "run", run)
    cli._run_api("127.0.0.1", free_port())
    assert events == ["freeze", ("serve", OneWriteHttpProtocol)]
