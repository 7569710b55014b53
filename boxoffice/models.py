"""Box-office tables: view events, watched time, qualified views, daily roll-ups, FX rates,
revenue shares.

View events are append-only facts keyed so that a retry can never add a second copy:
UNIQUE(playback_session_id) for a view start, UNIQUE(playback_session_id, seq) for a
heartbeat, UNIQUE(ticket_id) for a qualified view. Daily rows are derived data: a roll-up
replaces one day's rows in one transaction.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, TimestampMixin, utcnow
from payments.models import LedgerEntry

# The roll-up finds late ledger rows by when they were written; payments owns the table,
# the index serves only box office, so it is declared here.
Index("ix_ledger_entry_created_at", LedgerEntry.created_at)


class ViewStart(IdMixin, TimestampMixin, Base):
    """A view started: a playback session's first heartbeat, dated the session's start."""

    __tablename__ = "view_start"
    __table_args__ = (
        UniqueConstraint("playback_session_id"),
        Index("ix_view_start_started_at", "started_at"),
        Index("ix_view_start_created_at", "created_at"),
        # The ticket's first view start starts its wall clock: read at every heartbeat, so
        # it must be one index probe however many sessions the ticket had.
        Index("ix_view_start_ticket_id_started_at", "ticket_id", "started_at"),
    )

    playback_session_id: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[str] = mapped_column(ForeignKey("ticket.id"), index=True)
    viewer_id: Mapped[str] = mapped_column(String(32))
    title_id: Mapped[str] = mapped_column(String(32))
    territory: Mapped[str] = mapped_column(String(2))
    started_at: Mapped[datetime]


class ViewHeartbeat(IdMixin, TimestampMixin, Base):
    """One heartbeat, stored once. ``[covered_from_ms, covered_to_ms)`` is the content range it
    credited (empty when from == to); ``credited_seconds`` is what that range added to the
    ticket's covered content (less when part of it was already covered). The union of the
    ranges of a ticket's heartbeats is its covered content (boxoffice/coverage.py)."""

    __tablename__ = "view_heartbeat"
    __table_args__ = (
        UniqueConstraint("playback_session_id", "seq"),
        # The session's previous heartbeat paces the next one: one index probe (max(at)).
        Index("ix_view_heartbeat_session_at", "playback_session_id", "at"),
    )

    playback_session_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    ticket_id: Mapped[str] = mapped_column(String(32), index=True)
    reported_seconds: Mapped[float] = mapped_column(Float)
    credited_seconds: Mapped[float] = mapped_column(Float)
    position_seconds: Mapped[float] = mapped_column(Float)
    covered_from_ms: Mapped[int] = mapped_column(BigInteger, server_default="0")
    covered_to_ms: Mapped[int] = mapped_column(BigInteger, server_default="0")
    outside_territory: Mapped[bool] = mapped_column(Boolean, server_default=false())
    at: Mapped[datetime]


class TicketWatch(Base):
    """A ticket's covered content across all its sessions and devices, kept normalized so a
    heartbeat reads and writes one row whatever the ticket's history. Heartbeats of one
    ticket take this row's lock, so they apply one after the other."""

    __tablename__ = "ticket_watch"

    ticket_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title_id: Mapped[str] = mapped_column(String(32))
    territory: Mapped[str] = mapped_column(String(2))
    watched_seconds: Mapped[float] = mapped_column(Float)  # covered content, in seconds
    # Sorted disjoint [start_ms, end_ms) pairs: the union of the heartbeats' ranges.
    intervals: Mapped[list[list[int]]] = mapped_column(JSON, server_default="[]")
    latest_at: Mapped[datetime | None]  # latest heartbeat time seen
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class QualifiedView(IdMixin, TimestampMixin, Base):
    """At most one per ticket: the moment its watched time reached the threshold."""

    __tablename__ = "qualified_view"
    __table_args__ = (
        UniqueConstraint("ticket_id"),
        Index("ix_qualified_view_qualified_at", "qualified_at"),
        Index("ix_qualified_view_created_at", "created_at"),
    )

    ticket_id: Mapped[str] = mapped_column(ForeignKey("ticket.id"))
    viewer_id: Mapped[str] = mapped_column(String(32))
    title_id: Mapped[str] = mapped_column(String(32))
    territory: Mapped[str] = mapped_column(String(2))
    playback_session_id: Mapped[str] = mapped_column(String(64))
    qualified_at: Mapped[datetime]
    watched_seconds: Mapped[float] = mapped_column(Float)
    threshold_seconds: Mapped[float] = mapped_column(Float)


class _Totals:
    """The key after the period and the sums of a roll-up row of local figures."""

    title_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    territory: Mapped[str] = mapped_column(String(2), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20), primary_key=True, default="")
    currency: Mapped[str] = mapped_column(String(3), primary_key=True, default="")
    tickets_sold: Mapped[int] = mapped_column(BigInteger, default=0)
    gross_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    chargebacks_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    chargeback_reversals_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    fees_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    views_started: Mapped[int] = mapped_column(BigInteger, default=0)
    unique_viewers: Mapped[int] = mapped_column(BigInteger, default=0)
    qualified_views: Mapped[int] = mapped_column(BigInteger, default=0)


class _Converted:
    """The key after the period and the sums of a roll-up row of converted money."""

    title_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    territory: Mapped[str] = mapped_column(String(2), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    reporting_currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    gross_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    chargebacks_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    fees_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    net_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    studio_payable_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    unconverted: Mapped[int] = mapped_column(Integer, default=0)


class DailyTotals(_Totals, Base):
    """One local day of one (title, territory, payment provider, currency): the rows every
    report sums. Money in minor units of ``currency`` (fees in the fee's own currency, so a
    fee charged in another currency is a row of its own). View counts have no provider or
    currency: they sit on the row whose ``provider`` and ``currency`` are ''."""

    __tablename__ = "boxoffice_day"
    __table_args__ = (Index("ix_boxoffice_day_title_day", "title_id", "day"),)

    # First in the primary key: reports read ranges of days.
    day: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-1)


class DailyConverted(_Converted, Base):
    """The money of one (local day, title, territory, provider) in one reporting currency:
    each amount converted with the day's rate (carried over from an earlier day where the
    ECB published none, boxoffice/fx.py) and rounded once. ``unconverted`` is 1 when a rate
    was missing: the amounts are then 0 and the report shows the group as unconverted."""

    __tablename__ = "boxoffice_day_converted"
    __table_args__ = (Index("ix_boxoffice_day_converted_title_day", "title_id", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-1)


class WeeklyTotals(_Totals, Base):
    """The sum of the seven ``boxoffice_day`` rows of an ISO week (``week``: its Monday),
    rewritten in the same transaction as any of its days. Reports over whole weeks read
    these: seven times fewer rows."""

    __tablename__ = "boxoffice_week"

    week: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-1)


class WeeklyConverted(_Converted, Base):
    """The sum of the seven ``boxoffice_day_converted`` rows of an ISO week."""

    __tablename__ = "boxoffice_week_converted"

    week: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-1)


class RolledWeek(Base):
    """When a week's sums were last rewritten; its row is the lock that makes two roll-ups
    of days of one week rewrite the week one after the other, each from committed days."""

    __tablename__ = "boxoffice_rolled_week"

    week: Mapped[date] = mapped_column(Date, primary_key=True)
    computed_at: Mapped[datetime]


class RolledDay(Base):
    """When a day was last rolled up. Its row is also the lock that serialises two
    roll-ups of the same day (the UPSERT waits for the other transaction)."""

    __tablename__ = "boxoffice_rolled_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    computed_at: Mapped[datetime]
    runs: Mapped[int] = mapped_column(Integer, default=1)


class RollupWatermark(Base):
    """Rows written before ``value`` (minus the overlap) have been rolled up."""

    __tablename__ = "boxoffice_watermark"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[datetime]


class FxRate(Base):
    """Units of ``currency`` per 1 EUR on ``day`` (ECB reference convention). Stored as
    decimal text so no backend turns it into a binary float."""

    __tablename__ = "fx_rate"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    per_eur: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(200))
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class FxFetch(Base):
    """The state of one automatic rate source (``ecb``): when it last succeeded and failed,
    and why. /metrics exports the age of ``last_success_at``; reports warn when it is old."""

    __tablename__ = "fx_fetch"

    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    latest_rate_day: Mapped[date | None] = mapped_column(Date)
    # The daily file's day for which the 90-day file last filled gaps (once per day is enough).
    backfilled_for: Mapped[date | None] = mapped_column(Date)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # since the last success


class RevenueShare(Base):
    """The studio's share of net for a title; territory '' applies to every territory
    without its own row. Basis points (7000 = 70 %) keep it an exact integer."""

    __tablename__ = "revenue_share"

    title_id: Mapped[str] = mapped_column(ForeignKey("title.id"), primary_key=True)
    territory: Mapped[str] = mapped_column(String(2), primary_key=True, default="")
    studio_share_bps: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(32))
