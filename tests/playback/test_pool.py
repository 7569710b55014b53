"""Decisions under more requests than database connections and threadpool threads: every one
is answered (no pool deadlock), and a pool that stays busy past its timeout answers 503
problem+json instead of hanging. PostgreSQL: the pool is a production concern (SQLite's
transaction serialises writers anyway)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from core.db import dispose_engine, get_engine
from tests.conftest import Configure
from tests.playback.conftest import Viewing

pytestmark = pytest.mark.postgres


def _beat(viewing: Viewing, sid: str, grant: str, seq: int) -> int:
    answer = viewing.client.post(
        f"/v1/playback/sessions/{sid}/heartbeat",
        json={"seq": seq, "position_seconds": 2.0, "watched_seconds": 0.0},
        headers=viewing.grant_headers(grant),
    )
    status: int = answer.status_code
    return status


def test_more_heartbeats_in_flight_than_connections_and_threads_all_answer(
    viewing: Viewing, configure: Configure
) -> None:
    # 1 + 20 overflow connections, 40 threadpool threads, 80 requests at once. When a
    # request held its connection between threadpool hops, this deadlocked until the pool
    # timed out; each decision now holds one only inside its one threadpool call.
    configure(database_pool_size="1", database_pool_timeout_seconds="20")
    dispose_engine()
    started = viewing.start().json()
    sid, grant = started["session_id"], started["token"]
    with ThreadPoolExecutor(max_workers=80) as pool:
        statuses = list(pool.map(lambda n: _beat(viewing, sid, grant, n), range(1, 81)))
    assert statuses == [200] * 80
    dispose_engine()


def test_a_pool_busy_past_its_timeout_answers_503_and_recovers(
    viewing: Viewing, configure: Configure
) -> None:
    configure(database_pool_size="1", database_pool_timeout_seconds="0.5")
    dispose_engine()
    started = viewing.start().json()
    sid, grant = started["session_id"], started["token"]
    held = [get_engine().connect() for _ in range(21)]  # the whole pool: 1 + 20 overflow
    try:
        busy = viewing.client.post(
            f"/v1/playback/sessions/{sid}/heartbeat",
            json={"seq": 1, "position_seconds": 2.0, "watched_seconds": 0.0},
            headers=viewing.grant_headers(grant),
        )
    finally:
        for connection in held:
            connection.close()
    assert busy.status_code == 503
    assert busy.headers["content-type"] == "application/problem+json"
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["code"] == "database_busy"
    assert _beat(viewing, sid, grant, 1) == 200  # nothing was half-written: seq 1 counts now
    dispose_engine()
