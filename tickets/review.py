"""Finance's decisions on payments held for review (amount or currency not as ordered).

Accepting books the sale at the amount received (with a note saying so), then whatever the
provider reported while the review was open, and activates the ticket. Refunding queues a
full refund of what is left through the provider (``tickets/refunds.py``); the provider's
refund event then books the sale and its refund together, so the net is zero.

Exactly one decision wins: the review moves out of ``open`` in one conditional UPDATE, and
the loser gets ``409 review_already_decided``. See docs/payments.md for the ledger in each
path.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import Conflict, NotFound
from payments import review as payment_review
from payments.models import ActionKind, PaymentReview, ReviewStatus
from tickets import repository
from tickets.models import Ticket, TicketState
from tickets.refunds import Recorded, record_action


def list_reviews(
    session: Session, *, status: ReviewStatus | None, offset: int, limit: int
) -> tuple[list[PaymentReview], int]:
    return payment_review.list_reviews(session, status=status, offset=offset, limit=limit)


def get_review(session: Session, review_id: str, *, for_update: bool = False) -> PaymentReview:
    review = payment_review.get_review(session, review_id, for_update=for_update)
    if review is None:
        raise NotFound("no such payment review", code="review_not_found")
    return review


def _claim(
    session: Session, review: PaymentReview, to: ReviewStatus, actor_id: str, reason: str
) -> None:
    if not payment_review.decide(session, review, to, actor_id=actor_id, reason=reason):
        raise Conflict(
            f"this review is already {review.status.value}",
            code="review_already_decided",
            review_status=review.status.value,
        )


def _ticket(session: Session, review: PaymentReview) -> Ticket:
    ticket = repository.get_ticket_for_update(session, review.ticket_id)
    if ticket is None:  # a review is created for a ticket and never outlives it
        raise NotFound("the review's ticket is gone", code="ticket_not_found")
    return ticket


def accept(session: Session, *, review_id: str, actor_id: str, reason: str) -> Recorded:
    """Keep the money received: book it and let the viewer watch."""
    review = get_review(session, review_id)
    ticket = _ticket(session, review)  # lock order: ticket, then review (as fulfilment)
    _claim(session, review, ReviewStatus.accepted, actor_id, reason)
    payment_review.book_sale(
        session, review, note=f"accepted from review: {payment_review.received_note(review)}"
    )
    # A ticket disputed meanwhile stays revoked: the money is booked, the bank decides.
    if ticket.state is TicketState.in_review:
        ticket.state = TicketState.active
        ticket.paid_at = review.paid_at
        # The rental clock starts at the decision: the viewer could not watch before it.
        ticket.start_by = utcnow() + timedelta(hours=ticket.start_within_hours)
    session.flush()
    return record_action(
        session,
        ticket=ticket,
        kind=ActionKind.review_accept,
        actor_id=actor_id,
        reason=reason,
        amount_minor=review.received_minor,
        currency=review.received_currency,
        review_id=review.id,
        done=review.payment_intent_id,
    )


def refund(session: Session, *, review_id: str, actor_id: str, reason: str) -> Recorded:
    """Send the money back: a full refund of what the provider still holds."""
    review = get_review(session, review_id)
    ticket = _ticket(session, review)
    if review.status is ReviewStatus.open and ticket.state is TicketState.disputed:
        # The provider refuses refunds of a disputed charge; the bank returns the money.
        raise Conflict(
            "the payment is disputed; the bank decides, submit evidence instead",
            code="ticket_disputed",
        )
    _claim(session, review, ReviewStatus.refunding, actor_id, reason)
    left = review.received_minor - payment_review.held_refunds_minor(review)
    return record_action(
        session,
        ticket=ticket,
        kind=ActionKind.review_refund,
        actor_id=actor_id,
        reason=reason,
        amount_minor=left,
        currency=review.received_currency,
        review_id=review.id,
    )
