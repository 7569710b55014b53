"""All SQL of the tickets package."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from catalog.models import Release
from core.db import insert_or_ignore
from tickets.models import PlaybackSession, RentalRule, Ticket, TicketState


def insert_ticket(session: Session, values: dict[str, Any]) -> bool:
    return insert_or_ignore(session, Ticket, values)


def get_ticket(session: Session, ticket_id: str, *, fresh: bool = False) -> Ticket | None:
    # populate_existing: after losing an insert race, read what the winner committed.
    options = {"populate_existing": True} if fresh else {}
    return session.get(Ticket, ticket_id, execution_options=options)


def find_release(session: Session, release_id: str) -> Release | None:
    return session.get(Release, release_id)


def get_ticket_for_update(session: Session, ticket_id: str) -> Ticket | None:
    return session.scalar(
        select(Ticket)
        .where(Ticket.id == ticket_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def get_ticket_for_viewer(session: Session, viewer_id: str, ticket_id: str) -> Ticket | None:
    return session.scalar(
        select(Ticket).where(Ticket.id == ticket_id, Ticket.viewer_id == viewer_id)
    )


def get_ticket_by_intent(
    session: Session, provider: str, intent_id: str, *, for_update: bool = False
) -> Ticket | None:
    stmt = select(Ticket).where(Ticket.provider == provider, Ticket.payment_intent_id == intent_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def list_for_viewer(
    session: Session, viewer_id: str, *, offset: int, limit: int, state: TicketState | None
) -> tuple[Sequence[Ticket], int]:
    where = [Ticket.viewer_id == viewer_id]
    if state is not None:
        where.append(Ticket.state == state)
    rows = session.scalars(
        select(Ticket)
        .where(*where)
        .order_by(Ticket.created_at.desc(), Ticket.id)
        .offset(offset)
        .limit(limit)
    ).all()
    total = session.scalar(select(func.count()).select_from(Ticket).where(*where))
    return rows, int(total or 0)


def all_for_viewer(session: Session, viewer_id: str) -> Sequence[Ticket]:
    return session.scalars(
        select(Ticket).where(Ticket.viewer_id == viewer_id).order_by(Ticket.created_at, Ticket.id)
    ).all()


def get_rental_rule(session: Session, title_id: str) -> RentalRule | None:
    return session.get(RentalRule, title_id)


def set_first_play(session: Session, ticket_id: str, at: datetime, watch_until: datetime) -> bool:
    """Stamp the first play once, even if two devices press play at the same moment."""
    result = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.first_played_at.is_(None))
        .values(first_played_at=at, watch_until=watch_until, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- playback sessions -----------------------------------------------------------------------


def lock_ticket(session: Session, ticket_id: str) -> Ticket:
    ticket = session.scalar(
        select(Ticket)
        .where(Ticket.id == ticket_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if ticket is None:  # pragma: no cover - the caller just read it
        raise LookupError(ticket_id)
    return ticket


def open_sessions(session: Session, ticket_id: str) -> Sequence[PlaybackSession]:
    return session.scalars(
        select(PlaybackSession)
        .where(PlaybackSession.ticket_id == ticket_id, PlaybackSession.ended_at.is_(None))
        .order_by(PlaybackSession.started_at)
    ).all()


def end_session(session: Session, session_id: str, at: datetime, reason: str) -> None:
    session.execute(
        update(PlaybackSession)
        .where(PlaybackSession.id == session_id, PlaybackSession.ended_at.is_(None))
        .values(ended_at=at, end_reason=reason)
        .execution_options(synchronize_session="fetch")
    )


def get_session(session: Session, session_id: str) -> PlaybackSession | None:
    return session.get(PlaybackSession, session_id)


def lock_session(session: Session, session_id: str) -> PlaybackSession | None:
    return session.scalar(
        select(PlaybackSession)
        .where(PlaybackSession.id == session_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def settled_unpaid_by_currency(session: Session) -> dict[tuple[TicketState, str], int]:
    """Tickets declined (failed) or wholly refunded, by state and currency (operators'
    metrics; the partial index holds only those rows)."""
    rows = session.execute(
        select(Ticket.state, Ticket.currency, func.count())
        .where(Ticket.state.in_([TicketState.failed, TicketState.refunded]))
        .group_by(Ticket.state, Ticket.currency)
    ).all()
    return {(TicketState(state), currency): int(count) for state, currency, count in rows}


def active_session_count(session: Session, heard_since: datetime) -> int:
    """Playback sessions not ended whose last heartbeat is no older than ``heard_since``."""
    count = session.scalar(
        select(func.count()).where(
            PlaybackSession.ended_at.is_(None), PlaybackSession.last_heartbeat_at >= heard_since
        )
    )
    return int(count or 0)


def resume_positions(session: Session, ticket_ids: Sequence[str]) -> dict[str, float]:
    """Each ticket's playhead as last reported, by whichever device reported last."""
    if not ticket_ids:
        return {}
    newest = (
        select(
            PlaybackSession.ticket_id,
            PlaybackSession.position_seconds,
            func.row_number()
            .over(
                partition_by=PlaybackSession.ticket_id,
                order_by=(PlaybackSession.last_heartbeat_at.desc(), PlaybackSession.id),
            )
            .label("rank"),
        )
        .where(PlaybackSession.ticket_id.in_(ticket_ids))
        .subquery()
    )
    rows = session.execute(
        select(newest.c.ticket_id, newest.c.position_seconds).where(newest.c.rank == 1)
    )
    return {ticket_id: float(position) for ticket_id, position in rows}


def lock_store_transaction(session: Session, store: str, transaction_id: str) -> None:
    """Serialise everything about one store transaction until this transaction ends: its
    claim by the app and the store's notifications about it, which otherwise could each miss
    the other's uncommitted row (a refund arriving while the purchase is being claimed).
    PostgreSQL: a transaction-level advisory lock on the transaction's hash. SQLite needs
    none: its writers already take turns (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"{store}\x1f{transaction_id}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    session.execute(select(func.pg_advisory_xact_lock(key)))
