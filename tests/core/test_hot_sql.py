"""Hot statements (core.hot_sql) behave as SQLAlchemy's own execution of the same statement:
the same values and types back (JSON, time zones, enums), constraint errors as SQLAlchemy's
exceptions, listeners told, and on the session's transaction. Runs on SQLite and, in the
services profile, on PostgreSQL."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, bindparam, event, func, insert, select
from sqlalchemy.exc import IntegrityError

from boxoffice.models import TicketWatch
from core.db import get_engine, unit_of_work
from core.hot_sql import HotStatement

pytestmark = pytest.mark.usefixtures("db")
TABLE: Table = TicketWatch.__table__  # type: ignore[assignment]


def _insert(_dialect: str) -> Any:
    return insert(TABLE).values(
        {TABLE.c[n]: bindparam(n) for n in ("ticket_id", "title_id", "territory", "watched_seconds", "intervals", "updated_at", "latest_at")}
    )  # fmt: skip


def _select(_dialect: str) -> Any:
    return select(TABLE).where(TABLE.c.ticket_id == bindparam("ticket_id"))


INSERT, SELECT = HotStatement(_insert), HotStatement(_select)
AT = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)


def _row(ticket_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "title_id": "t" * 32,
        "territory": "US",
        "watched_seconds": 12.5,
        "intervals": [[0, 5000], [9000, 12500]],
        "updated_at": AT,
        "latest_at": None,
    } | changes


def test_values_and_types_come_back_as_through_sqlalchemy() -> None:
    with unit_of_work() as session:
        INSERT.execute(session.connection(), _row("a" * 32, latest_at=AT + timedelta(seconds=3)))
        INSERT.execute(session.connection(), _row("b" * 32))
    with unit_of_work() as session:
        for ticket_id in ("a" * 32, "b" * 32):
            hot = SELECT.one(session.connection(), {"ticket_id": ticket_id})
            reference = session.connection().execute(_select(""), {"ticket_id": ticket_id}).one()
            assert tuple(hot) == tuple(reference)
            assert [type(v) for v in hot] == [type(v) for v in reference]
            assert hot.intervals == [[0, 5000], [9000, 12500]]  # JSON, by attribute
            assert hot.updated_at == AT
            assert hot.updated_at.tzinfo is not None
        assert SELECT.first(session.connection(), {"ticket_id": "none"}) is None
        with pytest.raises(LookupError):
            SELECT.one(session.connection(), {"ticket_id": "none"})


def test_it_runs_in_the_sessions_transaction() -> None:
    seen_inside: list[Any] = []

    def write_then_fail() -> None:
        with unit_of_work() as session:
            INSERT.execute(session.connection(), _row("c" * 32))
            seen_inside.append(SELECT.first(session.connection(), {"ticket_id": "c" * 32}))
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert seen_inside[0] is not None
    with unit_of_work() as session:
        assert SELECT.first(session.connection(), {"ticket_id": "c" * 32}) is None


def test_a_missing_parameter_and_a_constraint_fail_as_sqlalchemy_would() -> None:
    with unit_of_work() as session:
        INSERT.execute(session.connection(), _row("d" * 32))
    with pytest.raises(KeyError), unit_of_work() as session:
        SELECT.first(session.connection(), {})
    with pytest.raises(IntegrityError), unit_of_work() as session:
        INSERT.execute(session.connection(), _row("d" * 32))  # the same primary key
    with unit_of_work() as session:  # the pool's connection is still good
        assert SELECT.one(session.connection(), {"ticket_id": "d" * 32}).territory == "US"


def test_cursor_listeners_see_hot_statements() -> None:
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split()[0])

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", listen)
    try:
        with unit_of_work() as session:
            SELECT.first(session.connection(), {"ticket_id": "e" * 32})
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert "SELECT" in seen


def test_threads_racing_to_first_use_compile_it_once() -> None:
    """Racing first requests (eight decision groups start together) share one compiled form."""
    builds: list[str] = []
    start = threading.Barrier(6)

    def build(dialect: str) -> Any:
        builds.append(dialect)
        time.sleep(0.05)  # every racer arrives while it compiles
        return _select(dialect)

    statement = HotStatement(build)

    def ask(_: int) -> Any:
        start.wait()
        with unit_of_work() as session:
            return statement.first(session.connection(), {"ticket_id": "none"})

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(ask, range(6))) == [None] * 6
    assert builds == [get_engine().dialect.name]


def test_what_it_cannot_do_is_refused_when_compiled_not_sent_as_null() -> None:
    """A column default computed in Python (``updated_at``) would be sent as NULL, and one
    name used with two types would get one processor: both refused at first use."""
    no_updated_at = HotStatement(
        lambda _: insert(TABLE).values(
            {TABLE.c[n]: bindparam(n) for n in ("ticket_id", "title_id", "territory", "watched_seconds")}
        )
    )  # fmt: skip
    mixed = HotStatement(
        lambda _: select(TABLE.c.ticket_id).where(
            TABLE.c.updated_at < bindparam("at"), func.length(bindparam("at")) > 0
        )
    )
    with unit_of_work() as session:
        with pytest.raises(ValueError, match="updated_at"):
            no_updated_at.execute(session.connection(), _row("f" * 32))
        with pytest.raises(ValueError, match="different types"):
            mixed.first(session.connection(), {"at": AT})
