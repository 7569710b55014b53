"""Recording views: called by the playback routes inside their request's transaction.

Both functions are idempotent and race-safe by construction: each fact goes in with
``INSERT … ON CONFLICT DO NOTHING`` on a unique key, never check-then-insert, and watched
time is added with one atomic UPSERT, so two devices sending heartbeats for one ticket at
the same moment still produce exactly one qualified view. Definitions: boxoffice/definitions.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from boxoffice.definitions import heartbeat_credit, qualify_threshold_seconds
from boxoffice.models import QualifiedView, TicketWatch, ViewHeartbeat, ViewStart
from catalog.models import Title
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
    """Record "view started" for a playback session (call on each successful key delivery).
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
) -> bool:
    """Record one heartbeat of a playback session. True the first time for (session, seq);
    a redelivered heartbeat changes nothing.

    ``watched_seconds`` is the time the player actually played since its *previous*
    heartbeat of this session (not the position, and not a running total). ``at`` is the
    server's receive time. The credited part is bounded by
    :func:`boxoffice.definitions.heartbeat_credit`; when the ticket's total reaches the
    threshold, its one qualified view is recorded, dated ``at``.
    """
    settings = get_settings()
    started = session.scalar(
        select(ViewStart.started_at).where(ViewStart.playback_session_id == playback_session_id)
    )
    first_beat, credited_so_far = session.execute(
        select(
            func.min(ViewHeartbeat.at), func.coalesce(func.sum(ViewHeartbeat.credited_seconds), 0.0)
        ).where(ViewHeartbeat.playback_session_id == playback_session_id)
    ).one()
    session_start = min(t for t in (started, first_beat, at) if t is not None)
    credit = heartbeat_credit(
        reported_seconds=watched_seconds,
        session_started_at=session_start,
        at=at,
        already_credited=float(credited_so_far or 0.0),
        settings=settings,
    )
    now = utcnow()
    inserted = insert_or_ignore(
        session,
        ViewHeartbeat,
        {
            "id": new_id(),
            "playback_session_id": playback_session_id,
            "seq": seq,
            "ticket_id": ticket_id,
            "reported_seconds": watched_seconds if watched_seconds == watched_seconds else 0.0,
            "credited_seconds": credit,
            "position_seconds": position_seconds if position_seconds == position_seconds else 0.0,
            "at": at,
            "created_at": now,
        },
        conflict=["playback_session_id", "seq"],
    )
    if not inserted or credit <= 0:
        return inserted
    total = _add_watched(session, ticket_id, title_id, territory.upper(), credit, now)
    if runtime_seconds is None:
        runtime = session.scalar(select(Title.runtime_seconds).where(Title.id == title_id))
        runtime_seconds = float(runtime) if runtime else None
    threshold = qualify_threshold_seconds(runtime_seconds, settings)
    if total + 1e-9 >= threshold:
        # UNIQUE(ticket_id): the second device's transaction waits for the first one's row
        # and then does nothing, so the ticket has exactly one qualified view.
        insert_or_ignore(
            session,
            QualifiedView,
            {
                "id": new_id(),
                "ticket_id": ticket_id,
                "viewer_id": viewer_id,
                "title_id": title_id,
                "territory": territory.upper(),
                "playback_session_id": playback_session_id,
                "qualified_at": at,
                "watched_seconds": total,
                "threshold_seconds": threshold,
                "created_at": now,
            },
            conflict=["ticket_id"],
        )
    return True


def _add_watched(
    session: Session, ticket_id: str, title_id: str, territory: str, seconds: float, now: datetime
) -> float:
    """Add to the ticket's watched time atomically; returns the new total."""
    table = cast(Table, TicketWatch.__table__)
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(
        ticket_id=ticket_id,
        title_id=title_id,
        territory=territory,
        watched_seconds=seconds,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.ticket_id],
        set_={
            "watched_seconds": table.c.watched_seconds + stmt.excluded.watched_seconds,
            "updated_at": stmt.excluded.updated_at,
        },
    ).returning(table.c.watched_seconds)
    return float(session.execute(stmt).scalar_one())


def watched_seconds(session: Session, ticket_id: str) -> float:
    """A ticket's watched time so far (0 before any heartbeat)."""
    value = session.scalar(
        select(TicketWatch.watched_seconds).where(TicketWatch.ticket_id == ticket_id)
    )
    return float(value or 0.0)


def qualified_view_count(
    session: Session, after: datetime | None = None, until: datetime | None = None
) -> int:
    """Qualified views recorded in (after, until] (operators' metrics; a range over the
    created_at index)."""
    stmt = select(func.count()).select_from(QualifiedView)
    if after is not None:
        stmt = stmt.where(QualifiedView.created_at > after)
    if until is not None:
        stmt = stmt.where(QualifiedView.created_at <= until)
    return int(session.scalar(stmt) or 0)
