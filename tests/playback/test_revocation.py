"""Revocations made by *another process* reach this API process's hot-path caches.

Keys and playlists are authorized from per-process caches of tickets, sessions and
licensing terms (tickets/snapshots.py, catalog/availability.py), kept current by the change
feed (core/changes.py): PostgreSQL LISTEN/NOTIFY in the services profile, SQLite's
``PRAGMA data_version`` in the embedded one. Each test warms the cache with a successful key
fetch, lets a separate Python process (a real second process on the same database, as
another API replica or a worker would be) revoke something through the domain code, and
expects the very next fetch here to be refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.playback.conftest import Viewing, refund_event
from tests.playback.test_playback_api import bearer, path_of, started

ROOT = Path(__file__).resolve().parents[2]


def in_another_process(code: str, *args: str) -> None:
    """Run ``code`` in a fresh interpreter on this test's database; ``args`` in sys.argv[1:]."""
    prelude = "import sys\nimport pocketcinema.models\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code), *args],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def warm(viewing: Viewing) -> tuple[dict[str, Any], str]:
    body = started(viewing)
    key_uri = f"/v1/playback/sessions/{body['session_id']}/keys/{viewing.key_id}"
    for _ in range(2):  # the second one is served from the caches
        assert viewing.client.get(key_uri, headers=bearer(body["token"])).status_code == 200
    return body, key_uri


def test_a_refund_processed_elsewhere_refuses_the_next_key(viewing: Viewing) -> None:
    body, key_uri = warm(viewing)
    payload, signature = refund_event(viewing)
    in_another_process(
        """
        from core.db import unit_of_work
        from tickets import fulfilment
        with unit_of_work() as session:
            fulfilment.receive(session, "sandbox", sys.argv[1].encode(), sys.argv[2])
        """,
        payload.decode(),
        signature,
    )
    key = viewing.client.get(key_uri, headers=bearer(body["token"]))
    assert (key.status_code, key.json()["code"]) == (403, "ticket_refunded")
    master = viewing.client.get(path_of(body["master_playlist_url"]), headers=bearer(body["token"]))
    assert master.json()["code"] == "ticket_refunded"


def test_a_window_closed_elsewhere_refuses_the_next_key(viewing: Viewing) -> None:
    body, key_uri = warm(viewing)
    in_another_process(
        """
        from sqlalchemy import select
        from catalog import service
        from catalog.models import LicenceWindow
        from core.db import unit_of_work, utcnow
        with unit_of_work() as session:
            window = session.scalars(
                select(LicenceWindow).where(LicenceWindow.title_id == sys.argv[1])
            ).one()
            service.update_window(session, window, ends_at=utcnow())
        """,
        viewing.title_id,
    )
    key = viewing.client.get(key_uri, headers=bearer(body["token"]))
    assert (key.status_code, key.json()["code"]) == (403, "outside_licence_window")


def test_a_session_stopped_elsewhere_refuses_the_next_key(viewing: Viewing) -> None:
    body, key_uri = warm(viewing)
    in_another_process(
        """
        from core.db import unit_of_work, utcnow
        from tickets import repository
        with unit_of_work() as session:
            repository.end_session(session, sys.argv[1], utcnow(), "stopped")
        """,
        body["session_id"],
    )
    key = viewing.client.get(key_uri, headers=bearer(body["token"]))
    assert (key.status_code, key.json()["code"]) == (410, "session_ended")


def test_a_heartbeat_elsewhere_is_never_refused_from_a_stale_cache(
    viewing: Viewing, configure: Any
) -> None:
    """Heartbeats are not published (too frequent): a cached session can only look *older*
    than it is, and a refusal is checked against the database before it is sent."""
    from datetime import timedelta

    from core.db import unit_of_work, utcnow
    from tickets.models import PlaybackSession

    body = started(viewing)
    key_uri = f"/v1/playback/sessions/{body['session_id']}/keys/{viewing.key_id}"

    def heard_from(seconds_ago: int) -> None:
        with unit_of_work() as session:
            row = session.get_one(PlaybackSession, body["session_id"])
            row.last_heartbeat_at = utcnow() - timedelta(seconds=seconds_ago)

    heard_from(50)
    configure(playback_session_timeout_seconds="45")
    refused = viewing.client.get(key_uri, headers=bearer(body["token"]))  # the control
    assert (refused.status_code, refused.json()["code"]) == (410, "session_ended")
    configure(playback_session_timeout_seconds="120")
    for _ in range(2):  # cached: last heard from 50 s ago, alive under the 120 s default
        assert viewing.client.get(key_uri, headers=bearer(body["token"])).status_code == 200
    configure(playback_session_timeout_seconds="30")  # the cached copy now looks timed out
    in_another_process(  # but another API process has just taken a heartbeat
        """
        from core.db import unit_of_work, utcnow
        from tickets.models import PlaybackSession
        with unit_of_work() as session:
            session.get_one(PlaybackSession, sys.argv[1]).last_heartbeat_at = utcnow()
        """,
        body["session_id"],
    )
    assert viewing.client.get(key_uri, headers=bearer(body["token"])).status_code == 200


@pytest.mark.postgres
def test_while_the_listener_is_down_nothing_is_served_from_memory(viewing: Viewing) -> None:
    """Cut this process's LISTEN connection, then revoke with plain SQL (no notice at all):
    with the feed down the caches are bypassed, and when it reconnects they start empty."""
    from sqlalchemy import text

    from core import changes
    from core.db import get_engine

    body, key_uri = warm(viewing)
    feed = changes.feed()
    assert feed.reliable()
    listens = feed.connections
    with get_engine().begin() as conn:
        cut = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": changes.APPLICATION_NAME},
        ).all()
        assert cut, "no listener connection found"
    # The listener notices the cut when its socket closes (here at once; a silent network
    # loss when its pings stop coming back, within 3 s). Then nothing is served from memory.
    deadline = time.monotonic() + 10
    while feed.reliable() and feed.connections == listens and time.monotonic() < deadline:
        time.sleep(0.01)
    with get_engine().begin() as conn:
        conn.execute(
            text("UPDATE ticket SET state = 'refunded' WHERE id = :id"),
            {"id": viewing.ticket_id},
        )
    key = viewing.client.get(key_uri, headers=bearer(body["token"]))
    assert (key.status_code, key.json()["code"]) == (403, "ticket_refunded")
    deadline = time.monotonic() + 10
    while not feed.reliable() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed.reliable(), "the listener did not reconnect"
    assert feed.connections > listens
