"""The review queue's money rules: what the ledger holds for a payment that did not match
its order, before and after finance decides.

* open: nothing is booked. Refunds and chargebacks the provider reports meanwhile are held
  on the review (``held``), keyed by (kind, reference) so a redelivered event is held once.
* decided (accepted, refunding, refunded): the sale is booked at the amount received, with
  its note and the provider's time of payment, and then every held movement. From then on
  the provider's events book as for any other ticket.

The sale is always booked before any negative row of the same payment, and every row keeps
the UNIQUE(provider, reference, kind) of the ledger, so booking again is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from payments import repository
from payments.models import LedgerKind, PaymentReview, ReviewStatus
from payments.providers import Fee
from payments.service import Money, record_money

DECIDED = (ReviewStatus.accepted, ReviewStatus.refunding, ReviewStatus.refunded)


@dataclass(frozen=True)
class Mismatch:
    """A payment that does not match its order, as the provider reported it."""

    ticket_id: str
    title_id: str
    territory: str
    provider: str
    payment_intent_id: str
    expected_minor: int
    expected_currency: str
    received_minor: int
    received_currency: str
    paid_at: datetime
    fee: Fee | None

    @property
    def note(self) -> str:
        return describe(
            self.received_minor, self.received_currency, self.expected_minor, self.expected_currency
        )


def open_review(session: Session, mismatch: Mismatch) -> PaymentReview | None:
    """Queue a mismatched payment for finance; None when it is already queued."""
    return repository.insert_review(
        session,
        {
            "ticket_id": mismatch.ticket_id,
            "title_id": mismatch.title_id,
            "territory": mismatch.territory,
            "provider": mismatch.provider,
            "payment_intent_id": mismatch.payment_intent_id,
            "expected_minor": mismatch.expected_minor,
            "expected_currency": mismatch.expected_currency,
            "received_minor": mismatch.received_minor,
            "received_currency": mismatch.received_currency,
            "provider_fee_minor": mismatch.fee.amount_minor if mismatch.fee else None,
            "provider_fee_currency": mismatch.fee.currency if mismatch.fee else None,
            "paid_at": mismatch.paid_at,
            "status": ReviewStatus.open,
            "held": [],
        },
    )


def review_for_ticket(
    session: Session, ticket_id: str, *, for_update: bool = False
) -> PaymentReview | None:
    return repository.review_for_ticket(session, ticket_id, for_update=for_update)


def get_review(
    session: Session, review_id: str, *, for_update: bool = False
) -> PaymentReview | None:
    return repository.get_review(session, review_id, for_update=for_update)


def received_note(review: PaymentReview) -> str:
    return describe(
        review.received_minor,
        review.received_currency,
        review.expected_minor,
        review.expected_currency,
    )


def describe(received: int, received_currency: str, expected: int, expected_currency: str) -> str:
    return f"paid {received} {received_currency} for a ticket priced {expected} {expected_currency}"


def book(
    session: Session,
    review: PaymentReview,
    *,
    kind: LedgerKind,
    amount_minor: int,
    currency: str,
    reference: str,
    occurred_at: datetime,
) -> bool:
    """A money movement of a reviewed payment: held while the review is open (True), or
    booked after the review's sale once it is decided (False)."""
    if review.status is ReviewStatus.open:
        key = (kind.value, reference)
        if all((m["kind"], m["reference"]) != key for m in review.held):
            # A new list, not an in-place append: the JSON column tracks assignment only.
            review.held = [
                *review.held,
                {
                    "kind": kind.value,
                    "reference": reference,
                    "amount_minor": amount_minor,
                    "currency": currency.upper(),
                    "occurred_at": occurred_at.isoformat(),
                },
            ]
            session.flush()
        return True
    book_sale(session, review)
    record_money(
        session,
        _money(review, amount_minor, currency),
        kind=kind,
        provider=review.provider,
        provider_reference=reference,
        occurred_at=occurred_at,
    )
    return False


def held_refunds_minor(review: PaymentReview) -> int:
    return sum(int(m["amount_minor"]) for m in review.held if m["kind"] == LedgerKind.refund)


def book_sale(session: Session, review: PaymentReview, note: str | None = None) -> None:
    """The decided review's sale at the amount received, then the movements held while it
    was open. Idempotent: every row is unique by (provider, reference, kind)."""
    fee = None
    if review.provider_fee_minor is not None and review.provider_fee_currency:
        fee = Fee(review.provider_fee_minor, review.provider_fee_currency)
    record_money(
        session,
        _money(review, review.received_minor, review.received_currency),
        kind=LedgerKind.sale,
        provider=review.provider,
        provider_reference=review.payment_intent_id,
        occurred_at=review.paid_at,
        fee=fee,
        note=note or f"accepted from review: {received_note(review)}",
    )
    for held in review.held:
        record_money(
            session,
            _money(review, int(held["amount_minor"]), str(held["currency"])),
            kind=LedgerKind(held["kind"]),
            provider=review.provider,
            provider_reference=str(held["reference"]),
            occurred_at=datetime.fromisoformat(str(held["occurred_at"])),
        )


def decide(
    session: Session,
    review: PaymentReview,
    to: ReviewStatus,
    *,
    allowed_from: tuple[ReviewStatus, ...] = (ReviewStatus.open,),
    actor_id: str | None,
    reason: str | None,
) -> bool:
    """Move the review to ``to`` if it is still in ``allowed_from``; False when another
    decision won. The review object is reloaded either way."""
    won = repository.decide_review(
        session, review.id, to=to, allowed_from=allowed_from, actor_id=actor_id, reason=reason
    )
    session.refresh(review)
    return won


def list_reviews(
    session: Session, *, status: ReviewStatus | None, offset: int, limit: int
) -> tuple[list[PaymentReview], int]:
    rows, total = repository.list_reviews(session, status=status, offset=offset, limit=limit)
    return list(rows), total


def _money(review: PaymentReview, amount_minor: int, currency: str) -> Money:
    return Money(review.ticket_id, review.title_id, review.territory, currency, amount_minor)
