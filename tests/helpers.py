"""Typed helpers that create real rows through the services (no factories, no mocks)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from accounts import service as accounts
from accounts.models import Role, Studio, User
from catalog import service as catalog
from catalog.models import ReleaseStatus, TerritoryMode, Title
from core.db import unit_of_work, utcnow

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


def create_studio(name: str = "Studio One") -> Studio:
    with unit_of_work() as session:
        return accounts.create_studio(session, name)


def create_user(email: str, role: Role = Role.viewer, studio_id: str | None = None) -> User:
    with unit_of_work() as session:
        return accounts.create_user(session, email, "correct horse battery", role, studio_id)


def run_account_jobs() -> list[str]:
    """Run every open account job (mails to send, resets to start) in-process, oldest first,
    until none is left: what the worker pool does after the request commits. Returns the
    outcomes."""
    from sqlalchemy import select

    from accounts import lifecycle, mails, tasks
    from core import jobs
    from core.outbox import OutboxJob

    names = (mails.MAIL_JOB, lifecycle.RESET_JOB)
    assert all(name in jobs.REGISTRY for name in names), tasks  # imported: registered
    outcomes: list[str] = []
    while True:
        with unit_of_work() as session:
            due = [
                (j.task, j.id, dict(j.args))
                for j in session.scalars(
                    select(OutboxJob)
                    .where(
                        OutboxJob.task.in_(names),
                        OutboxJob.finished_at.is_(None),
                        OutboxJob.failed_at.is_(None),
                        OutboxJob.available_at <= utcnow(),
                    )
                    .order_by(OutboxJob.created_at)
                )
            ]
        if not due:
            return outcomes
        outcomes += [jobs.run_job(task, job_id, args)[0] for task, job_id, args in due]


def mailbox(to: str) -> list[EmailMessage]:
    """Mails written to the embedded outbox directory for ``to``, oldest first."""
    from core.settings import get_settings

    directory = get_settings().mail_dir
    found = []
    for path in directory.glob("*.eml") if directory.is_dir() else []:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if message["To"] == to:
            found.append((path.stat().st_mtime_ns, message))
    return [message for _, message in sorted(found, key=lambda item: item[0])]


def code_in(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(r"\b(\d{6})\b", body.get_content())
    assert found, f"no code in {message['Subject']!r}"
    return found.group(1)


def mailed_code(to: str) -> str:
    """The code of the newest mail to ``to`` (after running the pending mail jobs)."""
    run_account_jobs()
    mails = mailbox(to.strip().lower())
    assert mails, f"no mail to {to}"
    return code_in(mails[-1])


def sign_up(
    client: TestClient, email: str, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    """Sign up through the API, read the code from the mail, confirm the address: the
    account's first tokens (as an app gets them). ``extra`` goes into the sign-up body
    (``device_id``, ``display_name``)."""
    response = client.post("/v1/auth/signup", json={"email": email, "password": password, **extra})
    assert response.status_code == 202, response.text
    device = {"device_id": extra["device_id"]} if "device_id" in extra else {}
    verified = client.post(
        "/v1/account/email/verify",
        json={"email": email, "code": mailed_code(email), **device},
    )
    assert verified.status_code == 200, verified.text
    return dict(verified.json())


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
    playable: bool = True,
) -> Title:
    """A title on sale now: one window over exactly the priced countries (default US $12.99
    and CA $15.99), from a day ago to 120 days ahead. ``playable`` gives it a ready release
    record (no media: enough to be sold; tests that play media make a real one instead)."""
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
        if playable:
            release = catalog.create_release(
                session, title_id=title.id, studio_id=studio_id, label="Main feature"
            )
            catalog.set_status(release, ReleaseStatus.ready)
        return title


# Addresses that the shipped offline data (iptocc) places in these countries.
IP_IN = {"US": "8.8.8.8", "CA": "24.48.0.1", "FR": "5.39.0.1", "JP": "1.0.16.1", "CN": "1.0.1.1"}


@contextmanager
def client_from(peer: str) -> Iterator[TestClient]:
    """An API client whose TCP peer address is ``peer`` (Starlette's default is
    "testclient", which is no address at all)."""
    from api.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False, client=(peer, 50000)) as c:
        yield c


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def child_pids(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc: the parent pid is field 4 of stat; the
    command name may contain spaces, so split after its closing parenthesis)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


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


def asgi_request(
    app: Any,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    receive: Callable[[], Awaitable[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """One request straight into an ASGI app, as a server would make it (its messages
    coming from ``receive``); what the app sent back."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return sent


@contextmanager
def served_on_loopback(app: Any, port: int | None = None, http: Any = None) -> Iterator[int]:
    """``app`` under uvicorn in a thread on a loopback port, served as ``pocketcinema api``
    serves (:func:`api.http_server.server_config`; ``http`` replaces the protocol), until the
    block ends; yields the port."""
    import threading

    import uvicorn

    from api.http_server import server_config
    from tests.conftest import free_port

    config = server_config(app, "127.0.0.1", port or free_port(), http=http)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield config.port
    finally:
        server.should_exit = True
        thread.join(timeout=15)
