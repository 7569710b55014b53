"""GET routes read through read-only sessions, and list pages cost a fixed number of queries."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import event, insert, select, text
from sqlalchemy.exc import DBAPIError

from accounts.models import Role, Studio
from api.app import create_app
from api.deps import get_db, get_read_db
from core.db import get_engine, read_only, unit_of_work, utcnow
from tests.helpers import auth_header, create_studio, create_user


def _routes() -> list[APIRoute]:
    """Every APIRoute of the app (routers are included, so walk into them)."""
    found: list[APIRoute] = []
    pending: list[Any] = list(create_app().routes)
    while pending:
        route = pending.pop()
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            pending.extend(route.original_router.routes)
    return found


def _calls(route: APIRoute) -> set[Callable[..., Any]]:
    calls: set[Callable[..., Any]] = set()
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call is not None:
            calls.add(dependency.call)
        pending.extend(dependency.dependencies)
    return calls


def test_every_get_route_reads_without_a_write_transaction() -> None:
    gets = [r for r in _routes() if r.methods == {"GET"} or r.methods == {"GET", "HEAD"}]
    assert len(gets) >= 15
    writers = [r.path for r in gets if get_db in _calls(r)]
    assert writers == [], f"GET routes on the writing session: {writers}"
    assert any(get_read_db in _calls(r) for r in gets)


def test_a_read_session_refuses_writes(db: None) -> None:
    with read_only() as session:
        session.add(Studio(name="Sneaky"))
        with pytest.raises(RuntimeError, match="read-only session"):
            session.flush()
    if get_engine().dialect.name == "postgresql":
        # The server refuses too: the transaction itself is READ ONLY.
        with read_only() as session, pytest.raises(DBAPIError, match="read-only transaction"):
            session.execute(insert(Studio).values(id="x", name="Sneaky", created_at=utcnow()))


# SQLite's write lock is the embedded profile's; PostgreSQL readers never wait for writers.
@pytest.mark.embedded_only
def test_sqlite_reads_do_not_queue_behind_a_writer(db: None) -> None:
    engine = get_engine()
    assert engine.dialect.name == "sqlite"
    create_studio("Before")
    with engine.connect() as writer:
        # A writer holds SQLite's one write lock (BEGIN IMMEDIATE) with a row not yet committed.
        writer.execute(insert(Studio).values(id="w", name="Uncommitted", created_at=utcnow()))
        seen: list[list[str]] = []

        def read() -> None:
            with read_only() as session:
                seen.append(list(session.scalars(select(Studio.name))))

        reader = threading.Thread(target=read)
        reader.start()
        # A session that began IMMEDIATE would wait out the 30 s busy timeout and fail; the
        # read session began deferred, so it is done while the lock is still held.
        reader.join(timeout=20)
        assert not reader.is_alive()
        assert seen == [["Before"]]
        writer.rollback()


@contextmanager
def counted() -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE", "PRAGMA")):
            statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _fill(client: TestClient, headers: dict[str, str], start: int, stop: int) -> None:
    now = utcnow()
    for n in range(start, stop):
        title = client.post(
            "/v1/studio/titles",
            headers=headers,
            json={"slug": f"film-{n}", "original_title": f"Film {n}", "original_language": "en"},
        )
        assert title.status_code == 201, title.text
        title_id = title.json()["id"]
        window = client.post(
            f"/v1/studio/titles/{title_id}/windows",
            headers=headers,
            json={
                "territory_mode": "listed",
                "countries": ["US", "CA"],
                "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(days=30)).isoformat(),
                "prices": [{"country": "US", "amount_minor": 999, "currency": "USD"}],
            },
        )
        assert window.status_code == 201, window.text
        loc = client.put(
            f"/v1/studio/titles/{title_id}/localizations/fr", headers=headers, json={"name": "F"}
        )
        assert loc.status_code == 200, loc.text
        release = client.post(f"/v1/studio/titles/{title_id}/releases", headers=headers, json={})
        assert release.status_code == 201, release.text
        upload = client.post(
            f"/v1/studio/releases/{release.json()['id']}/uploads",
            headers=headers,
            json={"kind": "master", "filename": "m.mov", "size_bytes": 1024},
        )
        assert upload.status_code == 201, upload.text
        collection = client.post(
            "/v1/studio/collections",
            headers=headers,
            json={"slug": f"section-{n}", "name": f"Section {n}"},
        )
        assert collection.status_code == 201, collection.text
        member = client.put(
            f"/v1/studio/collections/{collection.json()['id']}/titles/{title_id}", headers=headers
        )
        assert member.status_code == 200, member.text


@pytest.mark.parametrize(
    "path", ["/v1/studio/titles", "/v1/studio/releases", "/v1/studio/collections"]
)
def test_studio_listings_cost_the_same_queries_for_1_and_20_items(
    client: TestClient, path: str
) -> None:
    studio = create_studio("Many Films")
    headers = auth_header(create_user("ops@many.example", Role.studio, studio.id))
    costs: dict[int, int] = {}
    for have, upto in ((0, 1), (1, 20)):
        _fill(client, headers, have, upto)
        with counted() as statements:
            page = client.get(path, headers=headers, params={"limit": 50})
        assert page.status_code == 200, page.text
        body = page.json()
        items = body["items"] if isinstance(body, dict) else body
        assert len(items) == upto
        costs[upto] = len(statements)
    assert costs[1] == costs[20], costs
    with unit_of_work() as session:  # the fill really wrote what the pages counted
        assert session.scalar(text("SELECT count(*) FROM title")) == 20
