"""View recording as the playback routes use it: idempotent, bounded, one qualified view
per ticket."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from accounts.models import User
from boxoffice import views
from boxoffice.models import QualifiedView, ViewHeartbeat, ViewStart
from catalog.models import Title
from core.db import get_engine, unit_of_work, utcnow
from tests.boxoffice.coverage_model import Event, Model, Start, histories, runs, second
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
    *,
    position: float | None = None,
    outside: bool = False,
) -> bool:
    """One heartbeat in its own transaction, as the heartbeat route sends it; the playhead
    is where ``seq`` heartbeats of ``watched`` seconds from the start would leave it."""
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
            position_seconds=watched * seq if position is None else position,
            at=at,
            runtime_seconds=runtime,
            outside_territory=outside,
        )


def watched(ticket: Ticket) -> float:
    with unit_of_work() as session:
        return views.watched_seconds(session, ticket.id)


def covered(ticket: Ticket) -> list[tuple[int, int]]:
    with unit_of_work() as session:
        return views.coverage_of(session, ticket.id)


def from_facts(ticket: Ticket) -> int:
    with unit_of_work() as session:
        return views.covered_from_facts(session, ticket.id)


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


def test_ten_minutes_of_covered_content_qualify_the_ticket_once(ticket: Ticket) -> None:
    t0 = utcnow()
    start(ticket, "ps-1", t0)
    for seq in range(1, 20):  # 30 s heartbeats: 9.5 minutes
        assert beat(ticket, "ps-1", seq, 30.0, t0 + timedelta(seconds=30 * seq))
    assert watched(ticket) == 570.0
    assert covered(ticket) == [(0, 570_000)]
    assert qualified(ticket) == []
    crossing = t0 + timedelta(seconds=600)
    assert beat(ticket, "ps-1", 20, 30.0, crossing)
    [view] = qualified(ticket)
    assert view.qualified_at == crossing
    assert (view.threshold_seconds, view.watched_seconds) == (600.0, 600.0)
    # Watching on, and on another device, never makes a second qualified view.
    start(ticket, "ps-2", crossing + timedelta(minutes=1))
    for seq in range(1, 30):
        beat(ticket, "ps-2", seq, 30.0, crossing + timedelta(minutes=1, seconds=30 * seq))
        beat(ticket, "ps-1", 20 + seq, 30.0, crossing + timedelta(seconds=30 * seq))
    assert len(qualified(ticket)) == 1
    # ps-2 replayed minutes ps-1 had covered: the union is ps-1's 24.5 minutes.
    assert covered(ticket) == [(0, 1_470_000)]
    assert from_facts(ticket) == 1_470_000


def test_a_repeated_heartbeat_counts_once(ticket: Ticket) -> None:
    t0 = utcnow()
    start(ticket, "ps-1", t0)
    assert beat(ticket, "ps-1", 1, 30.0, t0 + timedelta(seconds=30)) is True
    assert beat(ticket, "ps-1", 1, 30.0, t0 + timedelta(seconds=31)) is False
    assert watched(ticket) == 30.0


def test_a_forged_heartbeat_cannot_qualify_a_view(ticket: Ticket) -> None:
    t0 = utcnow()
    start(ticket, "ps-1", t0)
    assert beat(ticket, "ps-1", 1, 1e9, t0 + timedelta(seconds=30), position=600.0)
    assert covered(ticket) == [(570_000, 600_000)]  # 30 s of wall time: 30 s of content
    # A burst of heartbeats in the same second covers nothing more, wherever it claims.
    for seq in range(2, 50):
        beat(ticket, "ps-1", seq, 600.0, t0 + timedelta(seconds=30), position=600.0 * seq)
    assert watched(ticket) == 30.0
    later = t0 + timedelta(seconds=60)
    assert beat(ticket, "ps-1", 50, float("nan"), later, position=700.0)
    assert beat(ticket, "ps-1", 51, -100.0, later, position=800.0)
    assert beat(ticket, "ps-1", 52, 30.0, later + timedelta(seconds=30), position=1e12)
    assert beat(ticket, "ps-1", 53, 30.0, later + timedelta(seconds=60), position=float("nan"))
    assert watched(ticket) == 30.0
    assert qualified(ticket) == []


def test_forty_restarts_in_two_seconds_do_not_make_a_view(ticket: Ticket) -> None:
    """The issue's farm: 40 restarts of a session, one heartbeat each claiming 5 minutes,
    made a 2-hour film a qualified view in 2 seconds."""
    t0 = utcnow()
    for n in range(40):
        at = t0 + timedelta(milliseconds=50 * n)
        start(ticket, f"ps-{n}", at)
        beat(ticket, f"ps-{n}", 1, 300.0, at + timedelta(milliseconds=50), position=300.0 * n)
    assert watched(ticket) <= 2.0
    assert from_facts(ticket) == round(watched(ticket) * 1000)
    assert qualified(ticket) == []


def test_heartbeats_from_outside_the_territory_cover_nothing(ticket: Ticket) -> None:
    t0 = utcnow()
    start(ticket, "ps-1", t0)
    for seq in range(1, 41):  # 20 minutes of heartbeats sent from another country
        assert beat(ticket, "ps-1", seq, 30.0, t0 + timedelta(seconds=30 * seq), outside=True)
    assert watched(ticket) == 0.0
    assert qualified(ticket) == []
    with unit_of_work() as session:
        flags = set(session.scalars(select(ViewHeartbeat.outside_territory)))
    assert flags == {True}


def test_a_45_second_film_needs_its_threshold_share_watched(ticket: Ticket) -> None:
    """A film under a minute used to qualify on its first heartbeat; 25 % of 45 s is
    11.25 s of content, and that takes 11.25 s of playing."""
    t0 = utcnow()
    start(ticket, "ps-1", t0)
    assert beat(ticket, "ps-1", 1, 45.0, t0 + timedelta(seconds=1), runtime=45.0, position=45.0)
    assert qualified(ticket) == []
    for seq in range(2, 13):  # one-second heartbeats playing from the start
        at = t0 + timedelta(seconds=seq)
        beat(ticket, "ps-1", seq, 1.0, at, runtime=45.0, position=seq - 1.0)
        if seq < 12:
            assert qualified(ticket) == [], seq
    [view] = qualified(ticket)
    assert view.threshold_seconds == 11.25
    assert view.qualified_at == t0 + timedelta(seconds=12)
    assert covered(ticket) == [(0, 11_000), (44_000, 45_000)]


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


def _two_devices(ticket: Ticket, t0: datetime, tag: str) -> list[BaseException]:
    """Two devices, 15 heartbeats of 30 s each, every pair released at the same instant:
    device a plays minutes 0-7.5, device b minutes 7.5-15 (each alone stays under 10)."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def device(session_id: str, offset: float) -> None:
        try:
            for seq in range(1, 16):
                barrier.wait(timeout=30)
                at = t0 + timedelta(seconds=30 * seq)
                beat(ticket, session_id, seq, 30.0, at, position=offset + 30.0 * seq)
        except BaseException as exc:  # pragma: no cover - reported by the caller
            errors.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=device, args=(f"{tag}-a", 0.0)),
        threading.Thread(target=device, args=(f"{tag}-b", 450.0)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_heartbeats_from_two_devices_make_one_qualified_view_and_their_union(
    viewer: User, film: Title
) -> None:
    """The ticket's clock started 20 minutes earlier (a first session that played nothing), so
    wall time is no limit: the covered content must be exactly the union of what both devices
    played, and the crossing must record exactly one qualified view. Repeated on fresh tickets
    to give the race many chances (PostgreSQL: row locks; SQLite: the write lock)."""
    for round_ in range(6):
        ticket = pending_ticket(viewer.id, film.id)
        pay(ticket, utcnow() - timedelta(hours=1))
        t0 = utcnow() - timedelta(minutes=30)
        start(ticket, f"ps-{round_}-first", t0 - timedelta(minutes=20))
        for device in "ab":
            start(ticket, f"ps-{round_}-{device}", t0)
        assert _two_devices(ticket, t0, f"ps-{round_}") == []
        assert covered(ticket) == [(0, 900_000)]
        assert watched(ticket) == 900.0
        assert from_facts(ticket) == 900_000
        with unit_of_work() as session:
            count = session.scalar(
                select(func.count())
                .select_from(QualifiedView)
                .where(QualifiedView.ticket_id == ticket.id)
            )
        assert count == 1


def test_a_heartbeat_costs_the_same_statements_however_long_the_history(
    ticket: Ticket, configure: object
) -> None:
    """The union is merged on write: a ticket with 300 separate covered pieces and 301
    sessions costs a heartbeat exactly the statements of a ticket with one of each."""
    configure(view_qualify_seconds="100000")  # type: ignore[operator]  # same path for both
    t0 = utcnow() - timedelta(hours=3)
    start(ticket, "ps-0", t0)
    for n in range(1, 301):  # a session per piece, each covering 5 s at 20 s intervals
        start(ticket, f"ps-{n}", t0 + timedelta(seconds=10 * n))
        beat(ticket, f"ps-{n}", 1, 5.0, t0 + timedelta(seconds=10 * n + 5), position=20.0 * n)
    assert len(covered(ticket)) == 300
    fresh = pending_ticket(ticket.viewer_id, ticket.title_id)
    pay(fresh, utcnow() - timedelta(hours=1))
    start(fresh, "fresh", t0)
    beat(fresh, "fresh", 1, 5.0, t0 + timedelta(seconds=5), position=20.0)

    def statements_of_one_heartbeat(of: Ticket, session_id: str) -> list[str]:
        seen: list[str] = []

        def count(*args: object) -> None:
            seen.append(str(args[2]).split()[0])

        engine = get_engine()
        event.listen(engine, "before_cursor_execute", count)
        try:
            beat(of, session_id, 2, 5.0, t0 + timedelta(hours=2), position=7000.0)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return seen

    long_history = statements_of_one_heartbeat(ticket, "ps-300")
    assert long_history == statements_of_one_heartbeat(fresh, "fresh")
    # Lock-or-create the ticket's row, read the session's pace and the ticket's clock, store
    # the heartbeat and the merged union: on PostgreSQL one statement (the heartbeat row in
    # a WITH, the union only if that row was new), on SQLite two (and its BEGIN IMMEDIATE).
    stored = ["WITH"] if get_engine().dialect.name == "postgresql" else ["INSERT", "UPDATE"]
    assert [s for s in long_history if s != "BEGIN"] == ["INSERT", "SELECT", *stored]
    assert covered(fresh) == [(15_000, 20_000), (6_995_000, 7_000_000)]
    assert len(covered(ticket)) == 301


# --- the database path and the reference model never disagree -------------------------------


@st.composite
def histories_for_a_film(draw: st.DrawFn) -> tuple[int, list[Event]]:
    runtime = draw(st.sampled_from([45, 120, 600]))
    return runtime, draw(histories(runtime))


@given(case=histories_for_a_film())
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_stored_coverage_and_its_sql_twin_agree_with_the_reference_model(
    viewer: User, film: Title, case: tuple[int, list[Event]]
) -> None:
    """Random histories (restart storms, parallel sessions, forged and repeated positions,
    skewed clocks, heartbeats from abroad) through record_view_started and record_heartbeat,
    one transaction each: the stored union, the union recomputed in SQL from the heartbeat
    rows, and the naive model agree after every event, and the ticket qualifies exactly when
    the model's covered content reaches the threshold."""
    runtime, events = case
    ticket = pending_ticket(viewer.id, film.id)
    pay(ticket, utcnow() - timedelta(hours=1))
    model = Model(runtime, max_credit=300)
    tag = uuid.uuid4().hex[:8]
    for event_ in events:
        if isinstance(event_, Start):
            model.start(event_)
            start(ticket, f"{tag}-{event_.session}", second(event_.t))
            continue
        assert beat(
            ticket,
            f"{tag}-{event_.session}",
            event_.seq,
            float(event_.watched),
            second(event_.t),
            runtime=float(runtime),
            position=float(event_.position),
            outside=event_.outside,
        ) == model.beat(event_)
        expected = [(a * 1000, b * 1000) for a, b in runs(model.covered)]
        assert covered(ticket) == expected
        assert sum(b - a for a, b in expected) <= min(model.wall(), runtime) * 1000
    assert from_facts(ticket) == len(model.covered) * 1000
    assert watched(ticket) == len(model.covered)
    assert len(qualified(ticket)) == (len(model.covered) >= runtime * 0.25)
