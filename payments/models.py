"""Money records: the provider's customer per viewer, the webhook inbox and the ledger.

The ledger is append-only. A refund or a chargeback is a new negative row, never an edit;
uniqueness on (provider, provider_reference, kind) makes a second copy of the same money
movement impossible, however often the provider redelivers the event that reports it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Mapper, ORMExecuteState, Session, mapped_column

from core.db import Base, IdMixin, TimestampMixin, utcnow


class PaymentCustomer(IdMixin, TimestampMixin, Base):
    """The provider's customer object for one viewer (Stripe's PaymentSheet saves cards on it)."""

    __tablename__ = "payment_customer"
    __table_args__ = (UniqueConstraint("user_id", "provider"),)

    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    provider: Mapped[str] = mapped_column(String(20))
    provider_customer_id: Mapped[str] = mapped_column(String(255))


class EventStatus(StrEnum):
    handled = "handled"
    ignored = "ignored"  # verified, stored, but about nothing we sold (or a type we skip)


class PaymentEvent(IdMixin, Base):
    """The webhook inbox: every verified event once, with what we did about it."""

    __tablename__ = "payment_event"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    object_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    provider_created_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[datetime | None]
    status: Mapped[EventStatus | None] = mapped_column(
        Enum(EventStatus, native_enum=False, length=20)
    )
    note: Mapped[str | None] = mapped_column(String(500))


class LedgerKind(StrEnum):
    sale = "sale"
    refund = "refund"
    chargeback = "chargeback"
    chargeback_reversal = "chargeback_reversal"  # a dispute won: the money comes back


class LedgerEntry(IdMixin, TimestampMixin, Base):
    """One money movement. Never updated, never deleted (see the guards below and the
    database trigger in migration 0003)."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        UniqueConstraint("provider", "provider_reference", "kind"),
        Index("ix_ledger_entry_occurred_at", "occurred_at"),
    )

    ticket_id: Mapped[str] = mapped_column(ForeignKey("ticket.id"), index=True)
    title_id: Mapped[str] = mapped_column(ForeignKey("title.id"), index=True)
    territory: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    currency: Mapped[str] = mapped_column(String(3))  # ISO 4217
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # negative for money going back
    kind: Mapped[LedgerKind] = mapped_column(Enum(LedgerKind, native_enum=False, length=30))
    # The provider's fee is charged in the settlement currency, which may differ from the
    # currency the viewer paid in, so it carries its own currency.
    provider_fee_minor: Mapped[int | None] = mapped_column(BigInteger)
    provider_fee_currency: Mapped[str | None] = mapped_column(String(3))
    provider: Mapped[str] = mapped_column(String(20))
    provider_reference: Mapped[str] = mapped_column(String(255))  # pi_…, re_…, dp_…
    occurred_at: Mapped[datetime]
    # Why this movement is booked the way it is, when that is not obvious from the kind:
    # a sale accepted from the review queue at an amount other than the ticket's price.
    note: Mapped[str | None] = mapped_column(String(500))


class ReviewStatus(StrEnum):
    open = "open"  # waiting for finance; nothing booked
    accepted = "accepted"  # finance kept the money: sale booked at the amount received
    refunding = "refunding"  # finance chose a full refund; the provider call is queued
    refunded = "refunded"  # the money went back (by that decision, or by the provider)


class PaymentReview(IdMixin, TimestampMixin, Base):
    """A payment whose amount or currency differs from its order, held for finance.

    While a review is open the ledger holds nothing for its payment: money movements the
    provider reports meanwhile (refunds, chargebacks) are kept in ``held`` and booked after
    the sale once the review is decided, so the ledger never shows a negative row without
    its positive one.
    """

    __tablename__ = "payment_review"
    __table_args__ = (
        UniqueConstraint("provider", "payment_intent_id"),
        Index("ix_payment_review_status", "status", "created_at"),
    )

    ticket_id: Mapped[str] = mapped_column(ForeignKey("ticket.id"), unique=True)
    title_id: Mapped[str] = mapped_column(ForeignKey("title.id"))
    territory: Mapped[str] = mapped_column(String(2))
    provider: Mapped[str] = mapped_column(String(20))
    payment_intent_id: Mapped[str] = mapped_column(String(255))
    expected_minor: Mapped[int] = mapped_column(BigInteger)
    expected_currency: Mapped[str] = mapped_column(String(3))
    received_minor: Mapped[int] = mapped_column(BigInteger)
    received_currency: Mapped[str] = mapped_column(String(3))
    provider_fee_minor: Mapped[int | None] = mapped_column(BigInteger)
    provider_fee_currency: Mapped[str | None] = mapped_column(String(3))
    paid_at: Mapped[datetime]  # the provider's time of the payment: the sale's occurred_at
    status: Mapped[ReviewStatus] = mapped_column(
        Enum(ReviewStatus, native_enum=False, length=20), default=ReviewStatus.open
    )
    # Movements reported while open: [{kind, reference, amount_minor, currency, occurred_at}]
    held: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ActionKind(StrEnum):
    refund = "refund"  # a staff refund, full or partial
    dispute_evidence = "dispute_evidence"
    review_accept = "review_accept"
    review_refund = "review_refund"


class ActionStatus(StrEnum):
    requested = "requested"  # recorded; the provider call is queued
    succeeded = "succeeded"
    failed = "failed"


class PaymentAction(IdMixin, TimestampMixin, Base):
    """The audit trail of what staff did to money: who, when, what, why, and the
    provider's reference for it. Provider calls use ``provider_idempotency_key`` so a
    retried job never moves money twice."""

    __tablename__ = "payment_action"
    __table_args__ = (
        # A retried staff request with the same Idempotency-Key finds its first action.
        UniqueConstraint("actor_id", "idempotency_key"),
        Index("ix_payment_action_ticket", "ticket_id", "created_at"),
    )

    ticket_id: Mapped[str] = mapped_column(ForeignKey("ticket.id"))
    review_id: Mapped[str | None] = mapped_column(ForeignKey("payment_review.id"))
    kind: Mapped[ActionKind] = mapped_column(Enum(ActionKind, native_enum=False, length=30))
    actor_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    provider: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[ActionStatus] = mapped_column(
        Enum(ActionStatus, native_enum=False, length=20), default=ActionStatus.requested
    )
    provider_idempotency_key: Mapped[str] = mapped_column(String(255))
    provider_reference: Mapped[str | None] = mapped_column(String(255))  # re_…, dp_…, pi_…
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_detail: Mapped[str | None] = mapped_column(String(500))
    completed_at: Mapped[datetime | None]


class LedgerIsAppendOnly(Exception):
    """Raised when code tries to change or remove a ledger row."""


@event.listens_for(LedgerEntry, "before_update")
def _refuse_update(_mapper: Mapper[Any], _connection: Any, target: LedgerEntry) -> None:
    raise LedgerIsAppendOnly(f"ledger entry {target.id} may not be updated; append a new entry")


@event.listens_for(LedgerEntry, "before_delete")
def _refuse_delete(_mapper: Mapper[Any], _connection: Any, target: LedgerEntry) -> None:
    raise LedgerIsAppendOnly(f"ledger entry {target.id} may not be deleted; append a new entry")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state: ORMExecuteState) -> None:
    # Bulk UPDATE/DELETE statements skip the mapper events above, so catch them here too.
    if (state.is_update or state.is_delete) and _targets_ledger(state):
        raise LedgerIsAppendOnly("ledger entries may not be updated or deleted")


def _targets_ledger(state: ORMExecuteState) -> bool:
    table = getattr(state.statement, "table", None)
    return getattr(table, "name", None) == LedgerEntry.__tablename__
