"""The change feed and the caches built on it (core/changes.py), on the profile's database:
SQLite's data_version in the embedded profile, LISTEN/NOTIFY on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert
from sqlalchemy.orm import Session

from core import changes
from core.changes import WatchedCache
from core.db import get_engine, unit_of_work

ROOT = Path(__file__).resolve().parents[2]


class Counted:
    """A loader that says how often it was called."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


@pytest.fixture(autouse=True)
def feed_ready(db: None) -> None:
    """On PostgreSQL caches are bypassed until this process's LISTEN is in place."""
    deadline = time.monotonic() + 10
    while not changes.feed().reliable() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert changes.feed().reliable()


@pytest.fixture
def probe_table(db: None) -> Iterator[Table]:
    """A table of our own to write to: SQLite notices only real writes."""
    probe = Table(f"probe_{uuid.uuid4().hex[:8]}", MetaData(), Column("n", Integer))
    probe.create(get_engine())
    # SQLite probes data_version at most every SQLITE_POLL_SECONDS: let it see the CREATE
    # now, so that it cannot drop a test's first entry later.
    time.sleep(changes.SQLITE_POLL_SECONDS * 5)
    changes.feed().reliable()
    yield probe
    probe.drop(get_engine())


def write(session: Session, probe: Table) -> None:
    session.execute(insert(probe).values(n=1))


def topic() -> str:
    return f"probe-{uuid.uuid4().hex[:8]}"


def test_an_entry_is_served_from_memory_until_its_row_changes(probe_table: Table) -> None:
    cache: WatchedCache[int] = WatchedCache([name := topic()])
    load = Counted()
    assert cache.get("k", load) == 1
    assert cache.get("k", load) == 1
    with unit_of_work() as session:
        write(session, probe_table)
        changes.publish(session, name, ["k"])
    assert cache.get("k", load) == 2  # dropped at COMMIT, in this process
    assert cache.get("k", load) == 2  # and kept again


@pytest.mark.postgres
def test_on_postgresql_a_notice_drops_only_its_ids(probe_table: Table) -> None:
    cache: WatchedCache[int] = WatchedCache([name := topic()])
    load = Counted()
    cache.get("k", load)
    with unit_of_work() as session:
        write(session, probe_table)
        changes.publish(session, name, ["another-row"])
    time.sleep(0.2)  # the cross-process notice has arrived too
    assert cache.get("k", load) == 1


def test_a_rolled_back_change_drops_nothing(probe_table: Table) -> None:
    cache: WatchedCache[int] = WatchedCache([name := topic()])
    load = Counted()
    cache.get("k", load)

    def failing_request() -> None:
        with unit_of_work() as session:
            write(session, probe_table)
            changes.publish(session, name, ["k"])
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        failing_request()
    time.sleep(0.2)  # time for a notice to arrive, if one had been sent
    assert cache.get("k", load) == 1


def test_a_load_that_raced_a_change_is_not_kept(db: None) -> None:
    cache: WatchedCache[int] = WatchedCache([name := topic()])
    load = Counted()

    def racing() -> int:
        # While we read, another request commits a change to this very row.
        changes.feed().announce(name, frozenset({"k"}))
        return load()

    assert cache.get("k", racing) == 1
    assert cache.get("k", load) == 2  # the raced value was served once, never kept


def test_entries_expire_after_max_age(db: None) -> None:
    cache: WatchedCache[int] = WatchedCache([topic()], max_age=0.05)
    load = Counted()
    cache.get("k", load)
    time.sleep(0.1)
    assert cache.get("k", load) == 2


def test_a_commit_in_another_process_drops_the_entry(probe_table: Table) -> None:
    cache: WatchedCache[int] = WatchedCache([name := topic()])
    load = Counted()
    cache.get("k", load)
    code = """
        import sys
        from sqlalchemy import Column, Integer, MetaData, Table, insert
        from core import changes
        from core.db import unit_of_work
        table, topic = sys.argv[1:]
        probe = Table(table, MetaData(), Column("n", Integer))
        with unit_of_work() as session:
            session.execute(insert(probe).values(n=1))
            changes.publish(session, topic, ["k"])
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), probe_table.name, name],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert cache.get("k", load) == 2


@pytest.mark.postgres
def test_a_notice_too_long_for_postgresql_drops_the_whole_topic(db: None) -> None:
    cache: WatchedCache[int] = WatchedCache([name := topic()])
    load = Counted()
    cache.get("unrelated", load)
    many = [uuid.uuid4().hex for _ in range(1000)]  # 33 kB of ids: over NOTIFY's 8 kB
    with unit_of_work() as session:
        changes.publish(session, name, many)
    # This process heard it at commit (with the ids); wait for the cross-process notice.
    deadline = time.monotonic() + 5
    while cache.get("unrelated", load) == 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert load.calls == 2


@pytest.mark.postgres
def test_a_listener_that_stops_hearing_its_pings_is_not_trusted(db: None) -> None:
    feed = changes.feed()
    assert feed.reliable()
    feed._heard_at -= changes.STALE_AFTER_SECONDS  # as if the last ping were long ago
    assert not feed.reliable()
    deadline = time.monotonic() + 5
    while not feed.reliable() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed.reliable()  # the next ping came back


def test_a_forked_child_starts_with_empty_caches_and_a_feed_of_its_own(db: None) -> None:
    cache: WatchedCache[int] = WatchedCache([topic()])
    cache.get("k", Counted())
    parent_feed = changes.feed()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status, never return into pytest
        ok = changes._feed is None and not cache._items and cache._subscribed_to is None
        ok = ok and changes.feed() is not parent_feed
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache._items  # the parent's cache is untouched
