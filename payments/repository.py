"""All SQL of the payments package."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import insert_or_ignore, new_id
from payments.models import LedgerEntry, LedgerKind, PaymentCustomer, PaymentEvent


def get_customer(session: Session, user_id: str, provider: str) -> PaymentCustomer | None:
    return session.scalar(
        select(PaymentCustomer).where(
            PaymentCustomer.user_id == user_id, PaymentCustomer.provider == provider
        )
    )


def add_customer(session: Session, user_id: str, provider: str, customer_id: str) -> None:
    insert_or_ignore(
        session,
        PaymentCustomer,
        {
            "id": new_id(),
            "user_id": user_id,
            "provider": provider,
            "provider_customer_id": customer_id,
        },
        ["user_id", "provider"],
    )


def insert_event(session: Session, values: dict[str, Any]) -> PaymentEvent | None:
    event_id = new_id()
    if not insert_or_ignore(
        session, PaymentEvent, {"id": event_id, **values}, ["provider", "event_id"]
    ):
        return None
    return session.get_one(PaymentEvent, event_id)


def get_event(session: Session, provider: str, event_id: str) -> PaymentEvent | None:
    return session.scalar(
        select(PaymentEvent).where(
            PaymentEvent.provider == provider, PaymentEvent.event_id == event_id
        )
    )


def insert_ledger_entry(session: Session, values: dict[str, Any]) -> LedgerEntry | None:
    entry_id = new_id()
    if not insert_or_ignore(
        session,
        LedgerEntry,
        {"id": entry_id, **values},
        ["provider", "provider_reference", "kind"],
    ):
        return None
    return session.get_one(LedgerEntry, entry_id)


def ledger_for_ticket(session: Session, ticket_id: str) -> Sequence[LedgerEntry]:
    return session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.ticket_id == ticket_id)
        .order_by(LedgerEntry.occurred_at, LedgerEntry.created_at)
    ).all()


def sum_for_ticket(session: Session, ticket_id: str, kinds: Sequence[LedgerKind]) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
            LedgerEntry.ticket_id == ticket_id, LedgerEntry.kind.in_(kinds)
        )
    )
    return int(total or 0)


@dataclass(frozen=True)
class LedgerTotal:
    currency: str
    kind: LedgerKind
    entries: int
    amount_minor: int


def ledger_totals(
    session: Session, after: datetime | None = None, until: datetime | None = None
) -> list[LedgerTotal]:
    """Ledger rows written in (after, until], summed by currency and kind (operators'
    metrics; a range over the created_at index)."""
    stmt = select(
        LedgerEntry.currency,
        LedgerEntry.kind,
        func.count(),
        func.coalesce(func.sum(LedgerEntry.amount_minor), 0),
    ).group_by(LedgerEntry.currency, LedgerEntry.kind)
    if after is not None:
        stmt = stmt.where(LedgerEntry.created_at > after)
    if until is not None:
        stmt = stmt.where(LedgerEntry.created_at <= until)
    rows = session.execute(stmt).all()
    return [LedgerTotal(c, LedgerKind(k), int(n), int(a)) for c, k, n, a in rows]
