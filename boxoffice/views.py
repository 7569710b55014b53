"""Recording views: called by the playback routes inside their request's transaction.

Both functions are idempotent and race-safe by construction. Each fact goes in with
``INSERT … ON CONFLICT DO NOTHING`` on a unique key, never check-then-insert. A heartbeat
first takes its ticket's ``ticket_watch`` row lock (one UPSERT that creates or locks it), so
two devices' heartbeats of one ticket apply one after the other to the ticket's covered
content (:mod:`boxoffice.coverage`, the rule on plain values) and exactly one of them records
the qualified view. A heartbeat costs the same few statements however long the ticket's
history: the union is kept merged in that one row, and the session's previous heartbeat and
the ticket's first view start are index probes. Definitions: boxoffice/definitions.py.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy.orm import Session

from boxoffice import repository
from boxoffice.coverage import Beat, Coverage, Interval, credit_heartbeat, to_ms
from boxoffice.definitions import qualify_threshold_seconds
from boxoffice.models import QualifiedView, ViewStart
from core.db import insert_or_ignore, new_id, utcnow
from core.settings import get_settings


def record_view_started(
    session: Session,
    *,
    playback_session_id: str,
    ticket_id: str,
    viewer_id: str,
    title_id: str,
    territory: str,
    at: datetime,
) -> bool:
    """Record "view started" for a playback session (the playback service calls it on the session's first heartbeat).
    True only the first time for that session; later deliveries and retries are no-ops."""
    now = utcnow()
    return insert_or_ignore(
        session,
        ViewStart,
        {
            "id": new_id(),
            "playback_session_id": playback_session_id,
            "ticket_id": ticket_id,
            "viewer_id": viewer_id,
            "title_id": title_id,
            "territory": territory.upper(),
            "started_at": at,
            "created_at": now,
        },
        conflict=["playback_session_id"],
    )


def record_heartbeat(
    session: Session,
    *,
    playback_session_id: str,
    ticket_id: str,
    viewer_id: str,
    title_id: str,
    territory: str,
    seq: int,
    watched_seconds: float,
    position_seconds: float,
    at: datetime,
    runtime_seconds: float | None,
    outside_territory: bool = False,
) -> bool:
    """Record one heartbeat of a playback session. True the first time for (session, seq);
    a redelivered heartbeat changes nothing.

    ``position_seconds`` is the playhead; ``watched_seconds`` the time the player played since
    its *previous* heartbeat of this session (not a running total). ``at`` is the server's
    receive time. ``territory`` is the session's licensed country; ``outside_territory=True``
    says the request came from elsewhere: the heartbeat is stored but covers nothing.
    ``runtime_seconds=None`` reads the runtime from the catalog.

    The heartbeat covers the content range :func:`boxoffice.coverage.credit_heartbeat` allows;
    when the ticket's covered content reaches the threshold, its one qualified view is
    recorded, dated ``at``.
    """
    settings = get_settings()
    territory = territory.upper()
    now = utcnow()
    # The statements below run on the connection, which does not flush the session's pending
    # objects by itself (a caller's unflushed view start must be seen).
    session.flush()
    intervals, latest_at = repository.lock_watch(session, ticket_id, title_id, territory, now)
    first_start, session_start, previous_beat = repository.heartbeat_starts(
        session, ticket_id, playback_session_id
    )
    if runtime_seconds is None:
        runtime = repository.title_runtime(session, title_id)
        runtime_seconds = float(runtime) if runtime else None
    runtime_ms = to_ms(runtime_seconds) if runtime_seconds else None
    before = Coverage(
        intervals=tuple((a, b) for a, b in intervals),
        clock_started_at=first_start,
        latest_at=latest_at,
    )
    since = [t for t in (session_start, previous_beat) if t is not None]
    credit = credit_heartbeat(
        before,
        Beat(
            at=at,
            position_seconds=position_seconds,
            watched_seconds=watched_seconds,
            session_since=max(since) if since else None,
            outside_territory=outside_territory,
        ),
        runtime_ms=runtime_ms,
        max_credit_ms=to_ms(settings.view_heartbeat_max_credit_seconds),
    )
    after = credit.coverage
    added_ms = after.covered_ms - before.covered_ms
    covered_from, covered_to = credit.interval or (0, 0)
    inserted = repository.store_heartbeat(
        session,
        {
            "id": new_id(),
            "playback_session_id": playback_session_id,
            "seq": seq,
            "ticket_id": ticket_id,
            "reported_seconds": _finite(watched_seconds),
            "credited_seconds": added_ms / 1000,
            "position_seconds": _finite(position_seconds),
            "covered_from_ms": covered_from,
            "covered_to_ms": covered_to,
            "outside_territory": outside_territory,
            "at": at,
            "created_at": now,
        },
        intervals=list(after.intervals),  # JSON writes the pairs as arrays
        watched_seconds=after.covered_ms / 1000,
        latest_at=after.latest_at,
        now=now,
    )
    if not inserted:
        return False
    threshold = qualify_threshold_seconds(runtime_seconds, settings)
    if added_ms > 0 and after.covered_ms >= math.ceil(threshold * 1000):
        # UNIQUE(ticket_id) as well as the row lock: a retry or a crash-and-redo can never
        # make a second qualified view for the ticket.
        insert_or_ignore(
            session,
            QualifiedView,
            {
                "id": new_id(),
                "ticket_id": ticket_id,
                "viewer_id": viewer_id,
                "title_id": title_id,
                "territory": territory,
                "playback_session_id": playback_session_id,
                "qualified_at": at,
                "watched_seconds": after.covered_ms / 1000,
                "threshold_seconds": threshold,
                "created_at": now,
            },
            conflict=["ticket_id"],
        )
    return True


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def watched_seconds(session: Session, ticket_id: str) -> float:
    """A ticket's watched time so far (0 before any heartbeat)."""
    value = repository.ticket_watched_seconds(session, ticket_id)
    return float(value or 0.0)


def covered_from_facts(session: Session, ticket_id: str) -> int:
    """A ticket's covered content in milliseconds, recomputed in SQL from its append-only
    heartbeat rows (the union of their credited ranges, "gaps and islands"). It always equals
    what :func:`record_heartbeat` keeps in ``ticket_watch``; an auditor can check one against
    the other without trusting the accumulator."""
    return repository.covered_ms_from_heartbeats(session, ticket_id)


def coverage_of(session: Session, ticket_id: str) -> list[Interval]:
    """The ticket's covered content as stored: sorted disjoint [start_ms, end_ms) ranges."""
    stored = repository.stored_intervals(session, ticket_id)
    return [(a, b) for a, b in stored or []]


def qualified_view_count(
    session: Session, after: datetime | None = None, until: datetime | None = None
) -> int:
    """Qualified views recorded in (after, until] (operators' metrics; a range over the
    created_at index)."""
    return repository.count_qualified_views(session, after, until)
