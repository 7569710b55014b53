"""Payments as other packages use them: customers, the webhook inbox and the ledger.

Orchestration (which ticket an event concerns, what state it ends in) belongs to
``tickets``; this module only keeps money records straight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from core.db import utcnow
from payments import repository
from payments.models import EventStatus, LedgerEntry, LedgerKind, PaymentEvent
from payments.providers import Fee, PaymentProviderAdapter, ProviderEvent

_SIGN = {
    LedgerKind.sale: 1,
    LedgerKind.refund: -1,
    LedgerKind.chargeback: -1,
    LedgerKind.chargeback_reversal: 1,
}


def customer_for(
    session: Session, provider: PaymentProviderAdapter, *, user_id: str, email: str
) -> str:
    """The viewer's customer id at ``provider``, created on first purchase and stored."""
    existing = repository.get_customer(session, user_id, provider.name)
    if existing is not None:
        return existing.provider_customer_id
    customer_id = provider.create_customer(user_id=user_id, email=email)
    # Two first purchases may race here; the unique (user, provider) row keeps one, and
    # Stripe's idempotency key made both calls return the same customer anyway.
    repository.add_customer(session, user_id, provider.name, customer_id)
    stored = repository.get_customer(session, user_id, provider.name)
    return stored.provider_customer_id if stored is not None else customer_id


def record_event(session: Session, provider: str, event: ProviderEvent) -> PaymentEvent | None:
    """Put a verified event in the inbox; None when it was already there (a redelivery)."""
    obj_id = event.object.get("id")
    return repository.insert_event(
        session,
        {
            "provider": provider,
            "event_id": event.id,
            "type": event.type,
            "object_id": str(obj_id) if obj_id is not None else None,
            "payload": event.payload,
            "provider_created_at": event.created_at,
            "received_at": utcnow(),
        },
    )


def finish_event(
    session: Session, inbox: PaymentEvent, status: EventStatus, note: str | None = None
) -> None:
    inbox.status = status
    inbox.note = note[:500] if note else None
    inbox.handled_at = utcnow()
    session.flush()


def get_event(session: Session, provider: str, event_id: str) -> PaymentEvent | None:
    return repository.get_event(session, provider, event_id)


@dataclass(frozen=True)
class Money:
    """What a ledger entry is about, before its sign is applied."""

    ticket_id: str
    title_id: str
    territory: str
    currency: str
    amount_minor: int  # positive; the kind decides the sign


def record_money(
    session: Session,
    money: Money,
    *,
    kind: LedgerKind,
    provider: str,
    provider_reference: str,
    occurred_at: datetime,
    fee: Fee | None = None,
    note: str | None = None,
) -> LedgerEntry | None:
    """Append one ledger entry; None when this movement is already recorded."""
    if money.amount_minor < 0:
        raise ValueError("pass a positive amount; the kind decides the sign")
    return repository.insert_ledger_entry(
        session,
        {
            "ticket_id": money.ticket_id,
            "title_id": money.title_id,
            "territory": money.territory,
            "currency": money.currency.upper(),
            "amount_minor": _SIGN[kind] * money.amount_minor,
            "kind": kind,
            "provider_fee_minor": fee.amount_minor if fee else None,
            "provider_fee_currency": fee.currency if fee else None,
            "provider": provider,
            "provider_reference": provider_reference,
            "occurred_at": occurred_at,
            "note": note[:500] if note else None,
            "created_at": utcnow(),
        },
    )


def refunded_minor(session: Session, ticket_id: str) -> int:
    """Money returned for a ticket so far, as a positive number."""
    return -repository.sum_for_ticket(session, ticket_id, [LedgerKind.refund])


def sold_minor(session: Session, ticket_id: str) -> int:
    """What the ledger says the viewer paid for a ticket (0 before a sale is booked)."""
    return repository.sum_for_ticket(session, ticket_id, [LedgerKind.sale])


def ledger_for_ticket(session: Session, ticket_id: str) -> Sequence[LedgerEntry]:
    return repository.ledger_for_ticket(session, ticket_id)


def has_event_about(session: Session, provider: str, object_id: str, types: Sequence[str]) -> bool:
    """Whether a verified event of one of ``types`` about ``object_id`` was received (a store's
    refund of a purchase that was not yet a ticket, for instance)."""
    return repository.has_event_about(session, provider, object_id, types)
