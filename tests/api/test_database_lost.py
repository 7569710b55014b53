"""A database restart while the API runs: with no pre-ping on checkout, the first statement
on a stale pooled connection finds it dead. Work that runs through ``transact()`` runs
again on a fresh connection; anything else that meets the dead connection answers a
retryable 503 problem, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.db import get_engine
from tests.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.postgres


def _drop_every_connection() -> None:
    """What a server restart or an idle timeout does to the pooled connections."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (get_engine().url.database,),
        )


@pytest.fixture
def api(db: None) -> Iterator[TestClient]:
    app = create_app()

    def one_statement() -> dict[str, int]:
        # A read outside transact(): nothing runs it again when its connection is dead.
        with get_engine().connect() as connection:
            return {"one": int(connection.exec_driver_sql("SELECT 1").scalar_one())}

    app.add_api_route("/probe-database", one_statement, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as client:
        try:
            yield client
        finally:
            get_engine().dispose()  # no dead connection left for the next test's teardown


def test_a_statement_on_a_connection_the_server_dropped_is_told_to_retry(
    api: TestClient,
) -> None:
    assert api.get("/probe-database").json() == {"one": 1}  # the pool now holds a connection
    _drop_every_connection()
    lost = api.get("/probe-database")
    assert lost.status_code == 503, lost.text
    assert lost.headers["content-type"].startswith("application/problem+json")
    assert lost.json()["code"] == "database_busy"
    assert lost.headers["retry-after"] == "1"
    assert api.get("/probe-database").json() == {"one": 1}


def test_catalog_reads_run_again_on_a_fresh_connection(api: TestClient) -> None:
    assert api.get("/v1/titles").status_code == 200
    _drop_every_connection()
    assert api.get("/v1/titles").status_code == 200
