"""All SQL of the tickets package."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Update, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from catalog.models import Release, Title
from catalog.repository import on_sale_clause
from core.db import insert_or_ignore, page_of
from core.hot_sql import HotStatement
from core.scope import StudioScope
from tickets.models import (
    PlaybackSession,
    RentalRule,
    ScreenerInvitation,
    ScreenerView,
    Ticket,
    TicketState,
)


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


# --- the decision of a heartbeat or refresh: one read, one write -------------------------------
# Compiled once with bind parameters and run on the driver's cursor in the session's
# transaction (core.hot_sql): no ORM objects and no per-call compile-cache work on the most
# frequent database path of the service.


def _decision_statement(_dialect: str) -> Any:
    s, t, r = PlaybackSession, Ticket, Release
    return (
        select(
            s.id,
            s.ticket_id,
            s.screener_id,
            s.viewer_id,
            s.title_id,
            s.release_id,
            s.device_id,
            s.country,
            s.started_at,
            s.last_heartbeat_at,
            s.ended_at,
            s.end_reason,
            s.last_seq,
            s.position_seconds,
            t.state,
            t.start_by,
            t.first_played_at,
            t.watch_until,
            r.hls_prefix,
            r.master_playlist_key,
            r.content_key_id,
            r.outputs,
            r.duration_seconds,
            # catalog's SQL twin of availability.decide, for the country the request comes
            # from (a request from elsewhere is refused before this is looked at)
            on_sale_clause(bindparam("country"), bindparam("at")).label("licensed"),
        )
        # A screener session has no ticket: its ticket columns are NULL (tickets/screeners.py
        # decides for it).
        .outerjoin(t, t.id == s.ticket_id)
        .join(r, r.id == s.release_id)
        .join(Title, Title.id == s.title_id)
        .where(s.id == bindparam("session_id"))
        .with_for_update(of=s)
    )


def decision_facts(session: Session, session_id: str, country: str, at: datetime) -> Any | None:
    """In one statement, with the session row locked (PostgreSQL; SQLite's transaction
    holds the write lock): the session, its ticket's state and rental clock, its release's
    packaging, and whether the title is licensed in ``country`` at ``at``."""
    return _DECISION.first(
        session.connection(), {"session_id": session_id, "country": country, "at": at}
    )


_DECISION = HotStatement(_decision_statement)


def _beat_statement(_dialect: str) -> Update:
    s = PlaybackSession
    return (
        update(s)
        .where(s.id == bindparam("session_id"))
        .values(
            last_heartbeat_at=bindparam("heard_at"),
            last_seq=bindparam("seq"),
            position_seconds=bindparam("position"),
        )
    )


def save_beat(
    session: Session, session_id: str, heard_at: datetime, seq: int | None, position: float
) -> None:
    _BEAT.execute(
        session.connection(),
        {"session_id": session_id, "heard_at": heard_at, "seq": seq, "position": position},
    )


_BEAT = HotStatement(_beat_statement)


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


# --- screeners ----------------------------------------------------------------------------


def get_invitation(
    session: Session, scope: StudioScope, invitation_id: str
) -> ScreenerInvitation | None:
    return session.scalar(
        select(ScreenerInvitation).where(
            ScreenerInvitation.id == invitation_id, scope.where(ScreenerInvitation.studio_id)
        )
    )


def invitation_by_code_hash(session: Session, code_hash: str) -> ScreenerInvitation | None:
    return session.scalar(
        select(ScreenerInvitation)
        .where(ScreenerInvitation.code_hash == code_hash)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def lock_invitation(session: Session, invitation_id: str) -> ScreenerInvitation | None:
    return session.scalar(
        select(ScreenerInvitation)
        .where(ScreenerInvitation.id == invitation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def get_invitation_by_id(session: Session, invitation_id: str) -> ScreenerInvitation | None:
    return session.get(ScreenerInvitation, invitation_id)


def buyer_invitations(session: Session, buyer_id: str) -> Sequence[ScreenerInvitation]:
    return session.scalars(
        select(ScreenerInvitation)
        .where(ScreenerInvitation.buyer_id == buyer_id)
        .order_by(ScreenerInvitation.created_at.desc())
    ).all()


def title_invitations(
    session: Session, scope: StudioScope, title_id: str
) -> Sequence[ScreenerInvitation]:
    return session.scalars(
        select(ScreenerInvitation)
        .where(ScreenerInvitation.title_id == title_id, scope.where(ScreenerInvitation.studio_id))
        .order_by(ScreenerInvitation.created_at)
    ).all()


def count_screener_views(session: Session, invitation_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(ScreenerView)
            .where(ScreenerView.invitation_id == invitation_id)
        )
        or 0
    )


def has_screener_view(session: Session, session_id: str) -> bool:
    return (
        session.scalar(
            select(ScreenerView.playback_session_id).where(
                ScreenerView.playback_session_id == session_id
            )
        )
        is not None
    )


def insert_screener_view(session: Session, values: dict[str, Any]) -> None:
    # The caller holds the session's and the invitation's row locks and has checked the
    # row is absent: no race to lose here.
    session.add(ScreenerView(**values))
    session.flush()


def add_screener_watch(session: Session, session_id: str, seconds: float) -> None:
    session.execute(
        update(ScreenerView)
        .where(ScreenerView.playback_session_id == session_id)
        .values(watched_seconds=ScreenerView.watched_seconds + seconds)
    )


def screener_view_totals(
    session: Session, invitation_ids: Sequence[str]
) -> dict[str, tuple[int, float]]:
    """Per invitation: (views, watched seconds), one query for a whole list."""
    if not invitation_ids:
        return {}
    rows = session.execute(
        select(
            ScreenerView.invitation_id,
            func.count(),
            func.coalesce(func.sum(ScreenerView.watched_seconds), 0.0),
        )
        .where(ScreenerView.invitation_id.in_(invitation_ids))
        .group_by(ScreenerView.invitation_id)
    ).all()
    return {str(r[0]): (int(r[1]), float(r[2])) for r in rows}


def open_screener_sessions(session: Session, invitation_id: str) -> Sequence[PlaybackSession]:
    return session.scalars(
        select(PlaybackSession)
        .where(PlaybackSession.screener_id == invitation_id, PlaybackSession.ended_at.is_(None))
        .order_by(PlaybackSession.started_at)
    ).all()


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


def find_tickets(
    session: Session, viewer_id: str | None, q: str, offset: int, limit: int
) -> tuple[list[Ticket], int]:
    """Tickets of one viewer, or the ticket whose id or provider payment id is ``q``
    (both filters together narrow), newest first; and how many match in all."""
    stmt = select(Ticket)
    if viewer_id:
        stmt = stmt.where(Ticket.viewer_id == viewer_id)
    if q:
        stmt = stmt.where(or_(Ticket.id == q, Ticket.payment_intent_id == q))
    return page_of(session, stmt, (Ticket.created_at.desc(), Ticket.id.desc()), offset, limit)


def end_viewer_sessions(session: Session, viewer_id: str, at: datetime, reason: str) -> int:
    """End every live playback session of a viewer; returns how many there were."""
    result = session.execute(
        update(PlaybackSession)
        .where(PlaybackSession.viewer_id == viewer_id, PlaybackSession.ended_at.is_(None))
        .values(ended_at=at, end_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
