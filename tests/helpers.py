"""Typed helpers that create real rows through the services (no factories, no mocks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from accounts import service as accounts
from accounts.models import Role, Studio, User
from catalog import service as catalog
from catalog.models import TerritoryMode, Title
from core.db import unit_of_work, utcnow

ROOT = Path(__file__).resolve().parent.parent


def create_studio(name: str = "Studio One") -> Studio:
    with unit_of_work() as session:
        return accounts.create_studio(session, name)


def create_user(email: str, role: Role = Role.viewer, studio_id: str | None = None) -> User:
    with unit_of_work() as session:
        return accounts.create_user(session, email, "correct horse battery", role, studio_id)


def auth_header(user: User, device_id: str = "device-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {accounts.issue_access_token(user, device_id)}"}


def create_title(studio_id: str, slug: str = "the-film", title: str = "The Film") -> Title:
    with unit_of_work() as session:
        return catalog.create_title(
            session, studio_id=studio_id, slug=slug, original_title=title, original_language="en"
        )


def create_licensed_title(
    studio_id: str,
    slug: str = "the-film",
    prices: dict[str, tuple[int, str]] | None = None,
    starts: datetime | None = None,
    ends: datetime | None = None,
) -> Title:
    """A title on sale now: one window over exactly the priced countries (default US $12.99
    and CA $15.99), from a day ago to 120 days ahead."""
    prices = prices if prices is not None else {"US": (1299, "USD"), "CA": (1599, "CAD")}
    now = utcnow()
    with unit_of_work() as session:
        title = catalog.create_title(
            session,
            studio_id=studio_id,
            slug=slug,
            original_title=slug.replace("-", " ").title(),
            original_language="en",
        )
        catalog.add_window(
            session,
            title,
            territory_mode=TerritoryMode.listed,
            countries=list(prices),
            starts_at=starts or now - timedelta(days=1),
            ends_at=ends or now + timedelta(days=120),
            prices=prices,
        )
        return title


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@contextmanager
def worker_pool(concurrency: int = 2, beat: bool = False) -> Iterator[subprocess.Popen[bytes]]:
    """Real Celery worker processes on the configured broker, stopped (and reaped) after."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "pocketcinema.worker",
        "worker",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "WARNING",
        "-Q",
        "default,transcode,package",
        "--without-mingle",
        "--without-gossip",
    ]
    if beat:
        argv += ["--beat", "--schedule", os.path.join(os.environ["POCKETCINEMA_DATA_DIR"], "beat")]
    process = subprocess.Popen(argv, cwd=ROOT, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
