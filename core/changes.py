"""The change feed: tells every API process, at once, that rows a hot path caches were
changed (by any process), so the cache can serve until the moment it would be wrong.

Writers call :func:`publish` inside their transaction with a *topic* (``"ticket"``,
``"playback_session"``, ``"licensing"``) and the ids that changed. Then:

* this process's subscribers hear it right after COMMIT (never for a rollback);
* on PostgreSQL the same call runs ``pg_notify`` *inside* the transaction, so the notice is
  delivered to every listening process exactly when the change becomes visible, and never
  if it rolls back. Each process keeps one ``LISTEN`` connection in a background thread;
* on SQLite other processes cannot be notified, but every commit made by another
  connection changes ``PRAGMA data_version``. :meth:`ChangeFeed.reliable` reads it (a few
  microseconds; at most every ``SQLITE_POLL_SECONDS``, so one request's three cache reads
  share one probe) before a cache is trusted, and a change clears every cache: the embedded
  default is one host with little traffic, so "something changed" is precise enough.

A cache built on the feed (:class:`WatchedCache`) serves entries only while the feed is
*reliable*: with the PostgreSQL listener disconnected it reads the database every time, and
when the listener (re)connects every entry is dropped (notices sent while it was away are
lost). A load that raced a change is not stored (generation check), and entries also expire
after ``max_age`` as a bound for writes that bypass the application (an operator's psql).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core import db

log = logging.getLogger(__name__)

CHANNEL = "pocketcinema_changes"
APPLICATION_NAME = "pocketcinema-change-feed"  # how operators find it in pg_stat_activity
_PENDING = "pocketcinema_changes_pending"
_PAYLOAD_LIMIT = 7000  # PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more
EVERYTHING = "*"
SQLITE_POLL_SECONDS = 0.001
# The listener proves every PING_SECONDS that notices reach it (a NOTIFY to a channel of its
# own, so no process hears another's pings); without a proof for STALE_AFTER_SECONDS the
# caches are bypassed. This also catches a connection that LISTENs but can never hear, as
# behind PgBouncer in transaction mode. TCP keepalives end a silently dead socket.
PING_SECONDS = 1.0
STALE_AFTER_SECONDS = 3.0
_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 1,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}

Listener = Callable[[frozenset[str] | None], None]  # ids changed, or None for "anything"


class ChangeFeed:
    """One per process and database (see :func:`feed`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._subscribers: dict[str, list[Listener]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()  # SQLite: one probe connection per thread
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self._connected = False
        self._heard_at = 0.0  # monotonic time of the last ping this listener heard back
        self.connections = 0  # successful LISTENs so far (a reconnect makes it grow)

    # --- readers ------------------------------------------------------------------------

    def subscribe(self, topic: str, listener: Listener) -> None:
        with self._lock:
            self._subscribers.setdefault(topic, []).append(listener)

    def reliable(self) -> bool:
        """May a cache serve from memory right now? Also where SQLite's cross-process
        changes are noticed, so call it before every cache read."""
        if self.dialect == "sqlite":
            try:
                self._poll_sqlite()
            except sqlite3.Error as exc:  # the probe failed: do not trust memory this time
                log.warning("change feed: data_version probe failed (%s)", exc)
                self._local.conn = None
                return False
            return True
        if self.dialect == "postgresql":
            self._ensure_listener()
            return self._connected and time.monotonic() - self._heard_at < STALE_AFTER_SECONDS
        return False

    def announce(self, topic: str | None, ids: frozenset[str] | None) -> None:
        """Tell this process's subscribers (of ``topic``, or of every topic)."""
        with self._lock:
            if topic is None:
                listeners = [f for fs in self._subscribers.values() for f in fs]
            else:
                listeners = list(self._subscribers.get(topic, ()))
        for listener in listeners:
            listener(ids)

    def close(self) -> None:
        self._stop.set()
        self._connected = False
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- SQLite: PRAGMA data_version ------------------------------------------------------

    def _poll_sqlite(self) -> None:
        now = time.monotonic()
        local = self._local
        if now < getattr(local, "next_poll", 0.0):
            return
        local.next_poll = now + SQLITE_POLL_SECONDS
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            database = self.engine.url.database
            if not database or database == ":memory:":
                return  # one connection per process: nobody else can change it
            conn = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
            self._local.conn = conn
            self._local.version = conn.execute("PRAGMA data_version").fetchone()[0]
            self.announce(None, None)  # entries cached before this probe existed are suspect
            return
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._local.version:
            self._local.version = version
            self.announce(None, None)

    # --- PostgreSQL: LISTEN in a background thread --------------------------------------------

    def _ensure_listener(self) -> None:
        if self._listener is None or not self._listener.is_alive():
            with self._lock:
                if self._listener is None or not self._listener.is_alive():
                    self._stop.clear()
                    self._listener = threading.Thread(
                        target=self._listen, name="change-feed", daemon=True
                    )
                    self._listener.start()

    def _listen(self) -> None:
        import psycopg

        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        ping = f"{CHANNEL}_ping_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    dsn,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=APPLICATION_NAME,
                    **_KEEPALIVES,
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    conn.execute(f"LISTEN {ping}")
                    # Notices sent while we were away are lost: start from an empty cache.
                    self.announce(None, None)
                    self.connections += 1
                    self._connected = True
                    backoff = 0.5
                    while not self._stop.is_set():
                        conn.execute("SELECT pg_notify(%s, '')", (ping,))
                        for note in conn.notifies(timeout=PING_SECONDS):
                            if note.channel == ping:
                                self._heard_at = time.monotonic()
                            else:
                                self._deliver(note.payload)
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning("change feed: listener lost (%s); caches bypassed", exc)
            finally:
                self._connected = False
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def _deliver(self, payload: str) -> None:
        topic, _, ids = payload.partition(":")
        if ids == EVERYTHING:
            self.announce(topic, None)
        else:
            self.announce(topic, frozenset(ids.split(",")))


def _payload(topic: str, ids: set[str] | None) -> str:
    payload = f"{topic}:{','.join(sorted(ids))}" if ids is not None else ""
    return payload if 0 < len(payload) < _PAYLOAD_LIMIT else f"{topic}:{EVERYTHING}"


_feed: ChangeFeed | None = None
_feed_lock = threading.Lock()


def feed() -> ChangeFeed:
    """This process's feed for the current engine (rebuilt when the engine is)."""
    global _feed
    current = _feed
    if current is not None and current.engine is db._engine:
        return current  # the hot path: three times per key request
    engine = db.get_engine()
    with _feed_lock:
        if _feed is None or _feed.engine is not engine:
            if _feed is not None:
                _feed.close()
            # Caches notice the new feed (WatchedCache._subscribe) and start empty.
            _feed = ChangeFeed(engine)
        return _feed


def publish(session: Session, topic: str, ids: Iterable[str] | None) -> None:
    """Record that rows of ``topic`` changed in this transaction (see the module doc);
    ``None`` means "any of them"."""
    changed = None if ids is None else {i for i in ids if i}
    if changed is not None and not changed:
        return
    pending: dict[str, set[str] | None] = session.info.setdefault(_PENDING, {})
    already = pending.get(topic, set())
    pending[topic] = None if changed is None or already is None else already | changed
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": _payload(topic, changed)},
        )


@event.listens_for(Session, "after_commit")
def _announce_after_commit(session: Session) -> None:
    pending: dict[str, set[str] | None] | None = session.info.pop(_PENDING, None)
    if pending and _feed is not None:
        for topic, ids in pending.items():
            _feed.announce(topic, None if ids is None else frozenset(ids))


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, previous_transaction: Any) -> None:
    # A savepoint rolling back leaves the outer transaction's changes pending.
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)


V = TypeVar("V")


_caches: weakref.WeakSet[WatchedCache[Any]] = weakref.WeakSet()
_inherited: list[object] = []  # a parent's SQLite handles: kept, never used, never closed


def _after_fork_in_child() -> None:
    """A forked child starts with a feed of its own: the parent's listener thread did not
    come along, its locks may have been held at the fork, and SQLite handles must not be
    used (nor closed) across a fork."""
    global _feed, _feed_lock
    if _feed is not None:
        _inherited.append(getattr(_feed._local, "conn", None))
        _feed = None
    _feed_lock = threading.Lock()
    for cache in list(_caches):
        cache._lock = threading.Lock()
        cache._items = {}
        cache._subscribed_to = None


os.register_at_fork(after_in_child=_after_fork_in_child)


class WatchedCache(Generic[V]):
    """Values by row id, dropped when the change feed says the row (or, for ``None``, any
    row of its topics) changed."""

    def __init__(
        self,
        topics: Iterable[str],
        *,
        max_age: float = 60.0,
        max_entries: int = 100_000,
    ) -> None:
        self.topics = tuple(topics)
        self.max_age = max_age
        self.max_entries = max_entries
        self._items: dict[str, tuple[float, V]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._subscribed_to: ChangeFeed | None = None
        _caches.add(self)

    def get(self, key: str, load: Callable[[], V]) -> V:
        current = feed()
        if self._subscribed_to is not current:
            self._subscribe(current)
        if not current.reliable():
            return load()
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        value = load()
        with self._lock:
            # A change announced while we were loading may not be in what we read.
            if generation == self._generation:
                if len(self._items) >= self.max_entries:
                    self._items.clear()
                self._items[key] = (now + self.max_age, value)
        return value

    def forget(self, key: str) -> None:
        with self._lock:
            self._generation += 1
            self._items.pop(key, None)

    def _changed(self, ids: frozenset[str] | None) -> None:
        with self._lock:
            self._generation += 1
            if ids is None:
                self._items.clear()
            else:
                for key in ids:
                    self._items.pop(key, None)

    def _subscribe(self, current: ChangeFeed) -> None:
        with self._lock:
            if self._subscribed_to is current:
                return
            # Listen first: a notice that arrives from now on is heard, and only then may
            # other threads start storing entries for this feed.
            for topic in self.topics:
                current.subscribe(topic, self._changed)
            self._items.clear()
            self._generation += 1
            self._subscribed_to = current
