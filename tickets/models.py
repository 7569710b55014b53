"""Tickets: one viewer's right to watch one title, bought once.

A ticket is created *pending* when the viewer asks to buy, becomes *active* only when a
verified payment event says the money arrived, and is revoked (*refunded*, *disputed*) when
the money goes back. The rental rules in force at purchase time are copied onto the ticket,
so changing a title's rules later never changes a ticket already sold.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, TimestampMixin, utcnow

DEFAULT_START_WITHIN_HOURS = 30 * 24
DEFAULT_WATCH_HOURS = 48


class TicketState(StrEnum):
    pending = "pending"  # waiting for the payment
    active = "active"  # paid; watchable within the rental rules
    expired = "expired"  # paid, but the rental time ran out (derived from the clock)
    refunded = "refunded"  # money returned; no longer watchable
    disputed = "disputed"  # the viewer's bank disputed the charge; no longer watchable
    failed = "failed"  # the payment was declined; a new purchase is needed
    # Paid, but not the amount or currency ordered: held for finance (payments.PaymentReview);
    # not watchable until finance accepts the payment.
    in_review = "in_review"


class RentalRule(TimestampMixin, Base):
    """A title's rental rules; a title without a row uses the defaults above."""

    __tablename__ = "rental_rule"

    title_id: Mapped[str] = mapped_column(ForeignKey("title.id"), primary_key=True)
    start_within_hours: Mapped[int]
    watch_hours: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Ticket(TimestampMixin, Base):
    __tablename__ = "ticket"
    __table_args__ = (
        # A double tap (or a retried request) with the same key can never make two tickets.
        UniqueConstraint("viewer_id", "idempotency_key"),
        UniqueConstraint("provider", "payment_intent_id"),
        Index("ix_ticket_viewer_created", "viewer_id", "created_at"),
        # Operators' metrics count declined and refunded tickets by currency at every
        # scrape: a partial index holds only those few rows.
        Index(
            "ix_ticket_failed_refunded",
            "state",
            "currency",
            postgresql_where=text("state IN ('failed', 'refunded')"),
            sqlite_where=text("state IN ('failed', 'refunded')"),
        ),
    )

    # Derived from (viewer, idempotency key), so concurrent identical requests agree on the
    # id before any of them has written a row, and therefore send identical parameters
    # (metadata.ticket_id) to the provider under one idempotency key.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    viewer_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    title_id: Mapped[str] = mapped_column(ForeignKey("title.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    territory: Mapped[str] = mapped_column(String(2))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    licence_window_id: Mapped[str] = mapped_column(String(32))
    state: Mapped[TicketState] = mapped_column(
        Enum(TicketState, native_enum=False, length=20), default=TicketState.pending
    )
    provider: Mapped[str] = mapped_column(String(20))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    # Rental rules copied at purchase time.
    start_within_hours: Mapped[int]
    watch_hours: Mapped[int]
    paid_at: Mapped[datetime | None]
    start_by: Mapped[datetime | None]  # paid_at + start_within_hours
    first_played_at: Mapped[datetime | None]
    watch_until: Mapped[datetime | None]  # first_played_at + watch_hours
    revoked_at: Mapped[datetime | None]
    failure_code: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PlaybackSession(TimestampMixin, Base):
    """One device playing one ticket, from "start" until stopped or silent too long.

    A session is *live* while ``ended_at`` is empty and its last sign of life (start or
    heartbeat) is younger than ``playback_session_timeout_seconds``; live sessions count
    against the ticket's stream limit. Sessions that fell silent are closed lazily, by the
    next start on the same ticket (``end_reason = "timed_out"``), so no sweeper is needed
    for correctness.
    """

    __tablename__ = "playback_session"
    __table_args__ = (
        Index("ix_playback_session_ticket_live", "ticket_id", "ended_at"),
        # Live sessions for operators' metrics: a range over recent heartbeats among the
        # sessions not ended, never a scan of every session ever played.
        # A session plays a ticket or a screener invitation: exactly one of them.
        CheckConstraint("(ticket_id IS NULL) <> (screener_id IS NULL)", name="ticket_or_screener"),
        # The watermark detector's candidates: every session of one release.
        Index("ix_playback_session_release", "release_id"),
        Index(
            "ix_playback_session_not_ended",
            "last_heartbeat_at",
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # A session plays a ticket or, for a buyer, a screener invitation (never both).
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("ticket.id"))
    screener_id: Mapped[str | None] = mapped_column(
        ForeignKey("screener_invitation.id"), index=True
    )
    viewer_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), index=True)
    title_id: Mapped[str] = mapped_column(String(32))
    release_id: Mapped[str] = mapped_column(ForeignKey("release.id"))
    device_id: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))  # where playback started
    started_at: Mapped[datetime]
    last_heartbeat_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(30))  # stopped, timed_out, replaced, …
    last_seq: Mapped[int | None]
    position_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class ScreenerInvitation(TimestampMixin, Base):
    """A studio's invitation to one buyer (by e-mail) to watch one title without paying.

    The invitation's code is a random secret sent in the e-mail's link; only its SHA-256 is
    stored. It is single-use: the first signed-in account with the invited address that
    redeems it becomes the buyer, and only that account can play it, at most
    ``view_limit`` times before ``expires_at``. Screener views are counted here
    (:class:`ScreenerView`), never in box office.
    """

    __tablename__ = "screener_invitation"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    studio_id: Mapped[str] = mapped_column(ForeignKey("studio.id"), index=True)
    title_id: Mapped[str] = mapped_column(ForeignKey("title.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    view_limit: Mapped[int]
    invited_by: Mapped[str] = mapped_column(String(32))
    buyer_id: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    redeemed_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ScreenerView(Base):
    """One screener view: a screener session that played (its first heartbeat), at most
    one row per session, however often a heartbeat is retried."""

    __tablename__ = "screener_view"

    playback_session_id: Mapped[str] = mapped_column(
        ForeignKey("playback_session.id"), primary_key=True
    )
    invitation_id: Mapped[str] = mapped_column(ForeignKey("screener_invitation.id"), index=True)
    buyer_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    title_id: Mapped[str] = mapped_column(String(32))
    country: Mapped[str] = mapped_column(String(2))
    started_at: Mapped[datetime]
    watched_seconds: Mapped[float] = mapped_column(Float, default=0.0)
