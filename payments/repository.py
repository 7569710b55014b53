"""All SQL of the payments package."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.db import insert_or_ignore, new_id, utcnow
from payments.models import (
    ActionKind,
    ActionStatus,
    LedgerEntry,
    LedgerKind,
    PaymentAction,
    PaymentCustomer,
    PaymentEvent,
    PaymentReview,
    ReviewStatus,
)


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


# --- review queue ------------------------------------------------------------------------


def insert_review(session: Session, values: dict[str, Any]) -> PaymentReview | None:
    review_id = new_id()
    if not insert_or_ignore(
        session, PaymentReview, {"id": review_id, **values}, ["provider", "payment_intent_id"]
    ):
        return None
    return session.get_one(PaymentReview, review_id)


def get_review(
    session: Session, review_id: str, *, for_update: bool = False
) -> PaymentReview | None:
    stmt = select(PaymentReview).where(PaymentReview.id == review_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt.execution_options(populate_existing=True))


def review_for_ticket(
    session: Session, ticket_id: str, *, for_update: bool = False
) -> PaymentReview | None:
    stmt = select(PaymentReview).where(PaymentReview.ticket_id == ticket_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt.execution_options(populate_existing=True))


def decide_review(
    session: Session,
    review_id: str,
    *,
    to: ReviewStatus,
    allowed_from: Sequence[ReviewStatus],
    actor_id: str | None,
    reason: str | None,
) -> bool:
    """Move a review out of ``allowed_from`` in one conditional UPDATE; False when another
    decision got there first (two finance users pressing at once: exactly one wins)."""
    result = session.execute(
        update(PaymentReview)
        .where(PaymentReview.id == review_id, PaymentReview.status.in_(allowed_from))
        .values(
            status=to, decided_by=actor_id, decided_at=utcnow(), reason=reason, updated_at=utcnow()
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def list_reviews(
    session: Session, *, status: ReviewStatus | None, offset: int, limit: int
) -> tuple[Sequence[PaymentReview], int]:
    where = [PaymentReview.status == status] if status is not None else []
    rows = session.scalars(
        select(PaymentReview)
        .where(*where)
        .order_by(PaymentReview.created_at, PaymentReview.id)
        .offset(offset)
        .limit(limit)
    ).all()
    total = session.scalar(select(func.count()).select_from(PaymentReview).where(*where))
    return rows, int(total or 0)


# --- staff actions (the audit trail) ------------------------------------------------------


def insert_action(session: Session, values: dict[str, Any]) -> bool:
    return insert_or_ignore(session, PaymentAction, values, ["actor_id", "idempotency_key"])


def get_action(
    session: Session, action_id: str, *, for_update: bool = False
) -> PaymentAction | None:
    stmt = select(PaymentAction).where(PaymentAction.id == action_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt.execution_options(populate_existing=True))


def actions_for_ticket(session: Session, ticket_id: str) -> Sequence[PaymentAction]:
    return session.scalars(
        select(PaymentAction)
        .where(PaymentAction.ticket_id == ticket_id)
        .order_by(PaymentAction.created_at, PaymentAction.id)
    ).all()


def requested_refunds_minor(session: Session, ticket_id: str) -> int:
    """Refunds staff asked for that the provider has not confirmed yet."""
    total = session.scalar(
        select(func.coalesce(func.sum(PaymentAction.amount_minor), 0)).where(
            PaymentAction.ticket_id == ticket_id,
            PaymentAction.kind.in_([ActionKind.refund, ActionKind.review_refund]),
            PaymentAction.status == ActionStatus.requested,
        )
    )
    return int(total or 0)


def dispute_event(session: Session, provider: str, dispute_id: str) -> PaymentEvent | None:
    """The first stored event about a dispute (it names the PaymentIntent)."""
    return session.scalar(
        select(PaymentEvent)
        .where(
            PaymentEvent.provider == provider,
            PaymentEvent.object_id == dispute_id,
            PaymentEvent.type.like("charge.dispute.%"),
        )
        .order_by(PaymentEvent.received_at)
        .limit(1)
    )


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


def has_event_about(session: Session, provider: str, object_id: str, types: Sequence[str]) -> bool:
    """Whether the inbox holds an event of one of ``types`` about ``object_id``."""
    found = session.scalar(
        select(PaymentEvent.id)
        .where(
            PaymentEvent.provider == provider,
            PaymentEvent.object_id == object_id,
            PaymentEvent.type.in_(list(types)),
        )
        .limit(1)
    )
    return found is not None
