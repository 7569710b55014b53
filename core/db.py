"""Database engine, sessions and the declarative base.

One transaction belongs to one request or one job: :func:`unit_of_work` commits when the
block succeeds and rolls back otherwise. Services only ``flush()``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from threading import Lock
from typing import Any, TypeVar, cast

from sqlalchemy import (
    DateTime,
    Engine,
    MetaData,
    Select,
    String,
    Table,
    TypeDecorator,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from core.settings import Settings, get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite stores naive text, so we re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 - SQLAlchemy's API


class IdMixin:
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a worker writes; busy_timeout turns lock contention into
    # waiting instead of "database is locked" errors under concurrent requests.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the write lock at BEGIN, so two of them queue up instead of one failing
    # when it upgrades a stale read snapshot (SQLite's classic error under concurrency).
    # Read-only sessions (see read_only()) begin deferred and never block anyone in WAL mode.
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(settings: Settings) -> Engine:
    url = settings.database_url
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///"):
            from pathlib import Path

            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=20,
        pool_timeout=settings.database_pool_timeout_seconds,
        # No ping before each checkout: it was one more round trip on every request (on the
        # busiest path, heartbeats, one in eight). A connection the server dropped fails on
        # its first statement instead; SQLAlchemy then discards every pooled connection
        # older than the failure, and transact() runs the failed transaction once more.
        pool_pre_ping=False,
        pool_recycle=settings.database_pool_recycle_seconds,
    )


READ_ONLY = "pocketcinema_read_only"

_engine: Engine | None = None
_sessionmaker: sessionmaker[Session] | None = None
_read_sessionmaker: sessionmaker[Session] | None = None
_lock = Lock()


def get_engine() -> Engine:
    global _engine, _sessionmaker, _read_sessionmaker
    if _engine is None:
        with _lock:
            if _engine is None:
                engine = make_engine(get_settings())
                _sessionmaker = sessionmaker(engine, expire_on_commit=False)
                read_options: dict[str, Any] = {READ_ONLY: True}
                if engine.dialect.name == "postgresql":
                    # Each read transaction begins READ ONLY: the server itself refuses a
                    # write, and such transactions never take row locks.
                    read_options["postgresql_readonly"] = True
                _read_sessionmaker = sessionmaker(
                    engine.execution_options(**read_options), expire_on_commit=False
                )
                _engine = engine
    return _engine


def session_factory() -> sessionmaker[Session]:
    get_engine()
    if _sessionmaker is None:  # pragma: no cover - get_engine() always sets it
        raise RuntimeError("database not initialised")
    return _sessionmaker


def read_session_factory() -> sessionmaker[Session]:
    get_engine()
    if _read_sessionmaker is None:  # pragma: no cover - get_engine() always sets it
        raise RuntimeError("database not initialised")
    return _read_sessionmaker


def _refuse_writes(session: Session, *_: Any) -> None:
    if session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise RuntimeError("a read-only session tried to write; use unit_of_work()")


event.listen(Session, "before_flush", _refuse_writes)


def dispose_engine() -> None:
    """Drop the pooled connections (after fork, or when tests change the database)."""
    global _engine, _sessionmaker, _read_sessionmaker
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None
        _sessionmaker = None
        _read_sessionmaker = None


def ping_database() -> None:
    """One round trip to the database (readiness checks)."""
    with get_engine().connect() as conn:
        conn.exec_driver_sql("SELECT 1")


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error, always close."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


T = TypeVar("T")


def _dropped(exc: BaseException) -> bool:
    """The connection was found dead (server restart, idle connection dropped)."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def transact(work: Callable[[Session], T]) -> T:
    """``work`` in one transaction: commit on success, roll back on any error, close.

    If the connection turns out to be dead *before* the commit, nothing of the transaction
    can have been kept (the server rolls back what a lost connection had not committed), so
    the whole transaction runs once more on a fresh connection: that is what makes a ping
    before each checkout unnecessary. A failure during the commit itself is never repeated
    (whether it committed is unknown); the caller sees the error."""
    for attempt in range(2):
        session = session_factory()()
        try:
            result = work(session)
        except BaseException as exc:
            session.rollback()
            session.close()
            if attempt == 0 and _dropped(exc):
                continue
            raise
        try:
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        return result
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


Outcome = tuple[bool, Any]  # (True, the work's result) or (False, the exception it raised)


def transact_together(works: Sequence[Callable[[Session], Any]]) -> list[Outcome]:
    """Independent units of work in *one* transaction (group commit: one BEGIN, one COMMIT,
    one connection for all), each outcome in order.

    Each work must be what it would be alone: it decides and writes only through the
    session, and a refusal that must be kept is returned, not raised. If any work raises,
    the group's transaction is rolled back (nothing of any work is kept) and every work
    runs again alone in its own transaction, so one failure never drops nor repeats
    another's effects. A failed commit is answered to every work as its error (whether it
    committed is unknown: never repeated); so is a pool that had no connection to give."""
    if len(works) == 1:
        return [_alone(works[0])]
    session = session_factory()()
    try:
        values = [work(session) for work in works]
    except PoolTimeout as exc:
        session.close()
        return [(False, exc)] * len(works)
    except Exception:
        session.rollback()
        session.close()
        return [_alone(work) for work in works]
    try:
        session.commit()
    except Exception as exc:
        session.rollback()
        return [(False, exc)] * len(works)
    finally:
        session.close()
    return [(True, value) for value in values]


def _alone(work: Callable[[Session], Any]) -> Outcome:
    try:
        return (True, transact(work))
    except Exception as exc:
        return (False, exc)


@contextmanager
def read_only() -> Iterator[Session]:
    """A session for reads only: on SQLite it begins deferred, so it never waits for or
    blocks the write lock (hot paths: playlists, keys, catalog pages). Flushing changes
    through it is refused."""
    session = read_session_factory()()
    session.info[READ_ONLY] = True
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def insert_or_ignore(
    session: Session,
    model: type[Base],
    values: dict[str, Any],
    conflict: Sequence[str] | None = None,
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when this call wrote the row.

    On PostgreSQL a conflicting row that another transaction has written but not yet
    committed makes this statement *wait* for that transaction; afterwards the loser sees
    the committed row. That is what turns a race into "exactly one wins" without a
    check-then-insert window.
    """
    table = cast(Table, model.__table__)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # No conflict target means "any unique constraint", which PostgreSQL and SQLite both allow.
    target = list(conflict) if conflict else None
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=target)
    result = session.execute(stmt.returning(table.c.id))
    return result.first() is not None


Row = TypeVar("Row")


def page_of(
    session: Session, stmt: Select[Row], order: Sequence[Any], offset: int, limit: int
) -> tuple[list[Row], int]:
    """One page of ``stmt``'s rows in ``order`` (which must end with a unique column, so pages
    never overlap), and how many rows ``stmt`` has in all: the look-ups' paging."""
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(*order).offset(offset).limit(limit))
    return list(rows), int(total)
