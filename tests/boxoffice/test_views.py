"""View recording as the playback routes use it: idempotent, bounded, one qualified view
per ticket."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from accounts.models import User
from boxoffice import views
from boxoffice.models import QualifiedView, ViewStart
from catalog.models import Title
from core.db import unit_of_work, utcnow
from tests.boxoffice.support import pay, pending_ticket
from tests.conftest import Configure
from tests.helpers import create_licensed_title, create_studio, create_user
from tickets.models import Ticket

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def film() -> Title:
    return create_licensed_title(create_studio().id, slug="feature")


@pytest.fixture
def viewer() -> User:
    return create_user("viewer@example.com")


@pytest.fixture
def ticket(viewer: User, film: Title) -> Ticket:
    t = pending_ticket(viewer.id, film.id)
    pay(t, utcnow() - timedelta(hours=1))
    return t


def start(ticket: Ticket, session_id: str, at: datetime) -> bool:
    with unit_of_work() as session:
        return views.record_view_started(
            session,
            playback_session_id=session_id,
            ticket_id=ticket.id,
            viewer_id=ticket.viewer_id,
            title_id=ticket.title_id,
            territory=ticket.territory,
            at=at,
        )


def beat(
    ticket: Ticket,
    session_id: str,
    seq: int,
    watched: float,
    at: datetime,
    runtime: float | None = 7200.0,
) -> bool:
    with unit_of_work() as session:
        return views.record_heartbeat(
            session,
            playback_session_id=session_id,
            ticket_id=ticket.id,
            viewer_id=ticket.viewer_id,
            title_id=ticket.title_id,
            territory=ticket.territory,
            seq=seq,
            watched_seconds=watched,
            position_seconds=watched * seq,
            at=at,
            runtime_seconds=runtime,
        )


def watched(ticket: Ticket) -> float:
    with unit_of_work() as session:
        return views.watched_seconds(session, ticket.id)


def qualified(ticket: Ticket) -> list[QualifiedView]:
    with unit_of_work() as session:
        rows = list(
            session.scalars(select(QualifiedView).where(QualifiedView.ticket_id == ticket.id))
        )
        session.expunge_all()
        return rows


def test_a_view_starts_once_per_playback_session(ticket: Ticket) -> None:
    t0 = utcnow()
    assert start(ticket, "ps-1", t0) is True
    assert start(ticket, "ps-1", t0 + timedelta(seconds=5)) is False  # key fetched again
    assert start(ticket, "ps-2", t0 + timedelta(minutes=1)) is True  # another device
    with unit_of_work() as session:
        starts = session.scalars(select(ViewStart.started_at).order_by(ViewStart.started_at)).all()
    assert starts == [t0, t0 + timedelta(minutes=1)]


def test_ten_minutes_of_heartbeats_qualify_the_ticket_once(ticket: Ticket) -> None:
    t0 = utcnow()
    start(ticket, "ps-1", t0)
    for seq in range(1, 20):  # 30 s heartbeats: 9.5 minutes
        assert beat(ticket, "ps-1", seq, 30.0, t0 + timedelta(seconds=30 * seq))
    assert watched(ticket) == pytest.approx(570.0)
    assert qualified(ticket) == []
    crossing = t0 + timedelta(seconds=600)
    assert beat(ticket, "ps-1", 20, 30.0, crossing)
    [view] = qualified(ticket)
    assert view.qualified_at == crossing
    assert view.threshold_seconds == 600.0
    # Watching on, and on another device, never makes a second qualified view.
    start(ticket, "ps-2", crossing + timedelta(minutes=1))
    for seq in range(1, 30):
        beat(ticket, "ps-2", seq, 30.0, crossing + timedelta(minutes=1, seconds=30 * seq))
        beat(ticket, "ps-1", 20 + seq, 30.0, crossing + timedelta(seconds=30 * seq))
    assert len(qualified(ticket)) == 1


def test_a_repeated_heartbeat_counts_once(ticket: Ticket) -> None:
    t0 = utcnow()
    start(ticket, "ps-1", t0)
    assert beat(ticket, "ps-1", 1, 30.0, t0 + timedelta(seconds=30)) is True
    assert beat(ticket, "ps-1", 1, 30.0, t0 + timedelta(seconds=31)) is False
    assert watched(ticket) == pytest.approx(30.0)


def test_a_forged_heartbeat_cannot_qualify_a_view(ticket: Ticket) -> None:
    t0 = utcnow()
    start(ticket, "ps-1", t0)
    assert beat(ticket, "ps-1", 1, 1e9, t0 + timedelta(seconds=30))
    # A burst of heartbeats in the same second adds nothing beyond the wall time + slack.
    for seq in range(2, 50):
        beat(ticket, "ps-1", seq, 600.0, t0 + timedelta(seconds=30))
    assert watched(ticket) == pytest.approx(30.0 + 15.0)
    assert qualified(ticket) == []
    assert beat(ticket, "ps-1", 50, float("nan"), t0 + timedelta(seconds=60))
    assert beat(ticket, "ps-1", 51, -100.0, t0 + timedelta(seconds=60))
    assert watched(ticket) == pytest.approx(45.0)


def test_a_short_film_qualifies_at_a_quarter_of_its_runtime(ticket: Ticket) -> None:
    t0 = utcnow()
    start(ticket, "ps-1", t0)
    for seq in range(1, 10):  # 20-minute short: 5 minutes qualify, here after 4.5 min
        beat(ticket, "ps-1", seq, 30.0, t0 + timedelta(seconds=30 * seq), runtime=1200.0)
    assert qualified(ticket) == []
    beat(ticket, "ps-1", 10, 30.0, t0 + timedelta(seconds=300), runtime=1200.0)
    [view] = qualified(ticket)
    assert view.threshold_seconds == 300.0


def test_the_runtime_comes_from_the_catalog_when_not_given(ticket: Ticket, film: Title) -> None:
    with unit_of_work() as session:
        session.get_one(Title, film.id).runtime_seconds = 800
    t0 = utcnow()
    start(ticket, "ps-1", t0)
    for seq in range(1, 8):  # 25 % of 800 s = 200 s: qualified after 7 x 30 s
        beat(ticket, "ps-1", seq, 30.0, t0 + timedelta(seconds=30 * seq), runtime=None)
    [view] = qualified(ticket)
    assert view.threshold_seconds == 200.0


def test_the_threshold_is_configurable(ticket: Ticket, configure: Configure) -> None:
    configure(view_qualify_seconds="60")
    t0 = utcnow()
    start(ticket, "ps-1", t0)
    beat(ticket, "ps-1", 1, 30.0, t0 + timedelta(seconds=30))
    beat(ticket, "ps-1", 2, 30.0, t0 + timedelta(seconds=60))
    assert len(qualified(ticket)) == 1


def _two_devices(ticket: Ticket, sessions: tuple[str, str], t0: datetime) -> list[BaseException]:
    """Each device sends 15 heartbeats of 30 s; every pair is released at the same instant."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def device(session_id: str) -> None:
        try:
            for seq in range(1, 16):
                barrier.wait(timeout=10)
                beat(ticket, session_id, seq, 30.0, t0 + timedelta(seconds=30 * seq))
        except BaseException as exc:  # pragma: no cover - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=device, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.postgres
def test_concurrent_heartbeats_from_two_devices_make_exactly_one_qualified_view(
    viewer: User, film: Title
) -> None:
    """Two devices on one ticket cross the 10-minute threshold together (each alone would
    reach only 7.5 minutes); repeated on fresh tickets to give the race many chances."""
    for round_ in range(8):
        ticket = pending_ticket(viewer.id, film.id)
        pay(ticket, utcnow() - timedelta(hours=1))
        t0 = utcnow() - timedelta(minutes=30)
        sessions = (f"ps-{round_}-a", f"ps-{round_}-b")
        for session_id in sessions:
            start(ticket, session_id, t0)
        assert _two_devices(ticket, sessions, t0) == []
        assert watched(ticket) == pytest.approx(900.0)
        with unit_of_work() as session:
            count = session.scalar(
                select(func.count())
                .select_from(QualifiedView)
                .where(QualifiedView.ticket_id == ticket.id)
            )
        assert count == 1
