"""Test configuration: real databases, a real broker and a real S3-compatible server.

Two profiles, chosen with ``POCKETCINEMA_TEST_PROFILE``:

* ``embedded`` (default): SQLite file, kombu's SQLite broker, local media directory;
* ``services``: PostgreSQL (a fresh database per run), Redis, and an S3-compatible server
  (moto in server mode, over HTTP on loopback).

On a laptop without PostgreSQL or Redis the services profile skips what needs them; in CI
(``CI=true``) an unreachable service fails the run instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from sqlalchemy import text

PROFILE = os.environ.get("POCKETCINEMA_TEST_PROFILE", "embedded")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_ADMIN_URL = os.environ.get("POCKETCINEMA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("POCKETCINEMA_TEST_REDIS", "redis://127.0.0.1:6379")

# Fake AWS credentials for the loopback S3/KMS server; never real ones in tests.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(_proxy, None)


def service_unavailable(what: str) -> None:
    message = f"{what} is unreachable"
    if IN_CI:
        pytest.fail(f"{message}: CI requires it (see .ci/run)", pytrace=False)
    pytest.skip(message)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Services:
    data_dir: Path
    database_url: str
    broker_url: str
    storage: str
    s3_endpoint: str | None


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3-compatible server over real HTTP on loopback."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _create_pg_database() -> str:
    import psycopg

    if not port_open("127.0.0.1", 5432):
        service_unavailable("PostgreSQL at 127.0.0.1:5432")
    name = f"pc_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def services(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    from core.db import dispose_engine
    from core.settings import reset_settings_cache
    from core.storage import S3Store, reset_store
    from pocketcinema import migrate

    data_dir = tmp_path_factory.mktemp("var")
    pg_url: str | None = None
    s3_endpoint: str | None = None
    if PROFILE == "services":
        pg_url = _create_pg_database()
        # Only this profile stores media in S3; the embedded one starts moto only for the
        # few tests that ask for ``s3_server`` themselves.
        endpoint: str = request.getfixturevalue("s3_server")
        s3_endpoint = endpoint
        if not port_open("127.0.0.1", 6379):
            service_unavailable("Redis at 127.0.0.1:6379")
        redis_db = 1 + (os.getpid() % 14)
        env = {
            "POCKETCINEMA_DATABASE_URL": pg_url,
            "POCKETCINEMA_BROKER_URL": f"{REDIS_URL}/{redis_db}",
            # Sign-in and sign-up limits count in Redis, as in production.
            "POCKETCINEMA_RATE_LIMIT_STORAGE_URL": f"{REDIS_URL}/{redis_db}",
            "POCKETCINEMA_STORAGE_BACKEND": "s3",
            "POCKETCINEMA_S3_ENDPOINT_URL": endpoint,
            "POCKETCINEMA_S3_BUCKET": f"pc-test-{uuid.uuid4().hex[:8]}",
        }
    elif PROFILE == "embedded":
        env = {}
    else:
        raise pytest.UsageError(f"unknown POCKETCINEMA_TEST_PROFILE {PROFILE!r}")
    env |= {
        "POCKETCINEMA_MODE": "test",
        "POCKETCINEMA_DATA_DIR": str(data_dir),
        "POCKETCINEMA_LOG_JSON": "false",
        "POCKETCINEMA_LOG_LEVEL": "WARNING",
        "POCKETCINEMA_OUTBOX_REPUBLISH_AFTER_SECONDS": "2",
    }
    os.environ.update(env)
    reset_settings_cache()
    dispose_engine()
    reset_store()
    from core.settings import get_settings
    from core.storage import get_store

    settings = get_settings()
    if PROFILE == "services":
        import redis

        redis.Redis.from_url(settings.broker_url).flushdb()
        store = get_store()
        assert isinstance(store, S3Store)
        store.ensure_bucket()
    migrate.upgrade()
    try:
        yield Services(
            data_dir=data_dir,
            database_url=settings.database_url,
            broker_url=settings.broker_url,
            storage=settings.storage_backend.value,
            s3_endpoint=s3_endpoint,
        )
    finally:
        dispose_engine()
        if pg_url:
            _drop_pg_database(pg_url)


def empty_tables() -> None:
    """Every table emptied: the one teardown of every fixture that leaves rows behind."""
    from core.db import get_engine
    from pocketcinema.models import Base

    engine = get_engine()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


def purge_broker_if_published() -> None:
    """Drop the broker's messages when the test published jobs: their rows are about to be
    emptied, and a worker pool started by a later test would otherwise work through every
    stale message (each a poll of the SQLite transport) before reaching its own."""
    from sqlalchemy import func, select

    from core.db import unit_of_work
    from core.outbox import OutboxJob
    from core.queue import configured_app

    with unit_of_work() as session:
        published = session.scalar(select(func.count()).where(OutboxJob.published_at.is_not(None)))
    if not published:
        return
    with configured_app().connection_for_write() as connection:
        for queue in ("default", "transcode", "package"):
            try:
                connection.default_channel.queue_purge(queue)  # type: ignore[attr-defined]
            except Exception:  # noqa: S112 - a queue never declared has nothing to purge
                continue


class Configure(Protocol):
    def __call__(self, **values: str | None) -> None: ...


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """Set POCKETCINEMA_* variables for one test (None unsets one); settings are re-read now
    and again after the test, when the variables are back as they were."""
    from core.settings import reset_settings_cache

    def apply(**values: str | None) -> None:
        for name, value in values.items():
            key = f"POCKETCINEMA_{name.upper()}"
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        reset_settings_cache()

    yield apply
    monkeypatch.undo()
    reset_settings_cache()


@pytest.fixture
def db(services: Services) -> Iterator[None]:
    """A migrated database that is empty again after the test (tables truncated), and rate
    limit counters that start from zero again."""
    yield
    import shutil

    from core.ratelimit import reset_counters
    from core.settings import get_settings

    reset_counters()
    purge_broker_if_published()
    empty_tables()
    shutil.rmtree(get_settings().mail_dir, ignore_errors=True)  # the embedded mailbox


@pytest.fixture
def client(db: None) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests that prove PostgreSQL-specific behaviour (row locks under real concurrency) run in
    # the services profile, the demo's tour of the embedded default only in the embedded one;
    # each profile leaves the other's out instead of skipping them. FFmpeg-heavy tests of how
    # odd masters are handled check the media, not the backend, and would cost minutes twice:
    # they run once (the release-flow tests drive the pipeline over PostgreSQL, Redis and S3).
    left_out = ("postgres",) if PROFILE != "services" else ("embedded_only", "backend_agnostic")
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        leave = any(item.get_closest_marker(marker) for marker in left_out)
        (dropped if leave else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
