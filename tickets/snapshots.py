"""Tickets and playback sessions as the playback hot path sees them: frozen plain values
from a per-process cache that the change feed (core/changes.py) keeps current.

Every write that can turn "may play" into "may not" is published in its transaction (see
tickets/models.py and tickets/repository.py): a ticket's state or rental clock, a session's
end, device or first key. Heartbeats are not: a cached ``last_heartbeat_at`` can only be
*older* than the truth, which can only make a live session look ended, and
:func:`tickets.playback.authorize` reads the database again before it refuses anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from core.changes import WatchedCache
from core.db import read_only
from tickets.models import SESSION_TOPIC, TICKET_TOPIC, PlaybackSession, Ticket, TicketState


@dataclass(frozen=True)
class TicketSnapshot:
    id: str
    viewer_id: str
    title_id: str
    state: TicketState
    start_by: datetime | None
    first_played_at: datetime | None
    watch_until: datetime | None


@dataclass(frozen=True)
class SessionSnapshot:
    id: str
    ticket_id: str
    viewer_id: str
    title_id: str
    release_id: str
    device_id: str
    last_heartbeat_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    first_key_at: datetime | None


# The id first: it is what a snapshot is looked up by.
_TICKET_COLUMNS = (
    Ticket.id,
    Ticket.viewer_id,
    Ticket.title_id,
    Ticket.state,
    Ticket.start_by,
    Ticket.first_played_at,
    Ticket.watch_until,
)
_SESSION_COLUMNS = (
    PlaybackSession.id,
    PlaybackSession.ticket_id,
    PlaybackSession.viewer_id,
    PlaybackSession.title_id,
    PlaybackSession.release_id,
    PlaybackSession.device_id,
    PlaybackSession.last_heartbeat_at,
    PlaybackSession.ended_at,
    PlaybackSession.end_reason,
    PlaybackSession.first_key_at,
)

_tickets: WatchedCache[TicketSnapshot | None] = WatchedCache([TICKET_TOPIC])
_sessions: WatchedCache[SessionSnapshot | None] = WatchedCache([SESSION_TOPIC])


def ticket(ticket_id: str, *, fresh: bool = False) -> TicketSnapshot | None:
    return _snapshot(_tickets, TicketSnapshot, _TICKET_COLUMNS, ticket_id, fresh)


def playback_session(session_id: str, *, fresh: bool = False) -> SessionSnapshot | None:
    return _snapshot(_sessions, SessionSnapshot, _SESSION_COLUMNS, session_id, fresh)


S = TypeVar("S", TicketSnapshot, SessionSnapshot)


def _snapshot(
    cache: WatchedCache[S | None],
    make: type[S],
    columns: tuple[InstrumentedAttribute[Any], ...],
    row_id: str,
    fresh: bool,
) -> S | None:
    def load() -> S | None:
        with read_only() as session:
            row = session.execute(select(*columns).where(columns[0] == row_id)).first()
        return make(**row._mapping) if row is not None else None

    if fresh:
        cache.forget(row_id)
    return cache.get(row_id, load)
