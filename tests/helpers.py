"""Typed helpers that create real rows through the services (no factories, no mocks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from accounts import service as accounts
from accounts.models import Role, Studio, User
from catalog import service as catalog
from catalog.models import Title
from core.db import unit_of_work

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
