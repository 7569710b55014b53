"""Fulfilment: verified payment events change tickets and write the ledger, exactly once.

Every event goes through :func:`receive`, whatever the provider (Stripe's webhook, or the
sandbox's confirm endpoint): verify the signature on the raw body, insert into the inbox
under UNIQUE(provider, event_id) with ON CONFLICT DO NOTHING, and, only if this delivery
inserted the row, apply the effects in the *same* transaction. A redelivery, or twenty
concurrent deliveries, find the row and do nothing; a crash before commit leaves no row, so
the provider's retry applies the effects then.

Events may arrive in any order (Stripe does not promise one). The rules below are written
so that every order ends in the same state: a sale is always recorded, but only activates a
ticket that is still waiting for money; a refund or a chargeback always revokes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import NotFound
from payments import review as payment_review
from payments import service as payments
from payments.models import EventStatus, LedgerKind, ReviewStatus
from payments.providers import (
    Fee,
    PaymentProviderAdapter,
    PaymentProviderError,
    ProviderEvent,
    get_provider,
    get_sandbox,
)
from tickets import repository
from tickets.models import Ticket, TicketState

log = logging.getLogger(__name__)

Outcome = tuple[EventStatus, str | None]
Handler = Callable[[Session, PaymentProviderAdapter, ProviderEvent], Outcome]


@dataclass(frozen=True)
class Receipt:
    event_id: str
    type: str
    status: str  # handled | ignored | duplicate
    note: str | None = None


def receive(session: Session, provider_name: str, payload: bytes, signature: str | None) -> Receipt:
    """Verify, store once, handle once. Raises WebhookRejected (400) on a bad signature."""
    provider = get_provider(provider_name)
    event = provider.verify_event(payload, signature)
    inbox = payments.record_event(session, provider.name, event)
    if inbox is None:
        return Receipt(event.id, event.type, "duplicate")
    handler = HANDLERS.get(event.type)
    note: str | None
    if handler is None:
        status, note = EventStatus.ignored, "event type not used by Pocket Cinema"
    else:
        status, note = handler(session, provider, event)
    payments.finish_event(session, inbox, status, note)
    log.info("payment event", extra={"event_id": event.id, "type": event.type, "status": status})
    return Receipt(event.id, event.type, status.value, note)


def _ticket(session: Session, provider: PaymentProviderAdapter, intent_id: Any) -> Ticket | None:
    if not isinstance(intent_id, str) or not intent_id:
        return None
    # Lock the ticket: two *different* events for one payment (success and refund) may be
    # handled concurrently, and each decides from the state the other may be changing.
    return repository.get_ticket_by_intent(session, provider.name, intent_id, for_update=True)


def _money(ticket: Ticket, obj: dict[str, Any], amount: int) -> payments.Money:
    currency = str(obj.get("currency") or ticket.currency).upper()
    return payments.Money(ticket.id, ticket.title_id, ticket.territory, currency, amount)


def _revoke(ticket: Ticket, state: TicketState) -> None:
    ticket.state = state
    ticket.revoked_at = ticket.revoked_at or utcnow()


UNKNOWN = (EventStatus.ignored, "no ticket for this payment")


def _succeeded(session: Session, provider: PaymentProviderAdapter, ev: ProviderEvent) -> Outcome:
    obj = ev.object
    ticket = _ticket(session, provider, obj.get("id"))
    if ticket is None:
        return UNKNOWN
    amount = int(obj.get("amount_received") or obj.get("amount") or 0)
    currency = str(obj.get("currency") or "").upper()
    try:
        fee = provider.fee_for(obj)
    except PaymentProviderError:
        fee = None  # the fee is "when known"; never lose the sale over it
    if amount != ticket.price_minor or currency != ticket.currency:
        return _hold_for_review(session, provider, ticket, ev, amount, currency, fee)
    payments.record_money(
        session,
        _money(ticket, obj, amount),
        kind=LedgerKind.sale,
        provider=provider.name,
        provider_reference=str(obj["id"]),
        occurred_at=ev.created_at,
        fee=fee,
    )
    note = None
    if ticket.state in (TicketState.pending, TicketState.failed):
        # failed -> active is normal: the PaymentSheet lets the viewer retry the same
        # PaymentIntent with another card after a decline.
        _activate(ticket, ev.created_at)
    else:
        # Refunded or disputed first (out of order): the money is recorded, the ticket
        # stays revoked.
        note = f"payment recorded; ticket stays {ticket.state.value}"
    return EventStatus.handled, note


def _activate(ticket: Ticket, paid_at: datetime) -> None:
    ticket.state = TicketState.active
    ticket.paid_at = paid_at
    ticket.start_by = paid_at + timedelta(hours=ticket.start_within_hours)
    ticket.failure_code = None


def _hold_for_review(
    session: Session,
    provider: PaymentProviderAdapter,
    ticket: Ticket,
    ev: ProviderEvent,
    amount: int,
    currency: str,
    fee: Fee | None,
) -> Outcome:
    """A correctly signed event can still report money other than what was ordered (1 JPY
    for a 12.99 USD ticket): it never activates the ticket and books nothing until finance
    decides (tickets/review.py)."""
    mismatch = payment_review.Mismatch(
        ticket_id=ticket.id,
        title_id=ticket.title_id,
        territory=ticket.territory,
        provider=provider.name,
        payment_intent_id=str(ev.object["id"]),
        expected_minor=ticket.price_minor,
        expected_currency=ticket.currency,
        received_minor=amount,
        received_currency=currency or ticket.currency,
        paid_at=ev.created_at,
        fee=fee,
    )
    payment_review.open_review(session, mismatch)
    if ticket.state in (TicketState.pending, TicketState.failed):
        ticket.state = TicketState.in_review
        ticket.failure_code = None
    log.warning("payment held for review", extra={"ticket_id": ticket.id, "event_id": ev.id})
    return EventStatus.handled, f"held for review: {mismatch.note}"


def _book(
    session: Session,
    provider: PaymentProviderAdapter,
    ticket: Ticket,
    obj: dict[str, Any],
    *,
    kind: LedgerKind,
    amount: int,
    reference: str,
    occurred_at: datetime,
) -> None:
    """Book a refund, chargeback or reversal; for a payment in review, through the review's
    rules (held while open, after the sale once decided)."""
    money = _money(ticket, obj, amount)
    review = payment_review.review_for_ticket(session, ticket.id, for_update=True)
    if review is None:
        payments.record_money(
            session,
            money,
            kind=kind,
            provider=provider.name,
            provider_reference=reference,
            occurred_at=occurred_at,
        )
        return
    payment_review.book(
        session,
        review,
        kind=kind,
        amount_minor=amount,
        currency=money.currency,
        reference=reference,
        occurred_at=occurred_at,
    )


def _failed(session: Session, provider: PaymentProviderAdapter, ev: ProviderEvent) -> Outcome:
    obj = ev.object
    ticket = _ticket(session, provider, obj.get("id"))
    if ticket is None:
        return UNKNOWN
    error = obj.get("last_payment_error") or {}
    code = str(error.get("decline_code") or error.get("code") or "payment_failed")
    if ticket.state is not TicketState.pending:
        # A late failure of an earlier attempt must not undo a later success.
        return EventStatus.handled, f"failure after {ticket.state.value}; no change"
    ticket.state = TicketState.failed
    ticket.failure_code = code[:100]
    return EventStatus.handled, None


def _refund_from(
    session: Session,
    provider: PaymentProviderAdapter,
    ticket: Ticket,
    refund: dict[str, Any],
    ev: ProviderEvent,
) -> None:
    if refund.get("status") not in ("succeeded", "pending"):
        return  # failed or canceled refunds move no money
    _book(
        session,
        provider,
        ticket,
        refund,
        kind=LedgerKind.refund,
        amount=int(refund.get("amount") or 0),
        reference=str(refund["id"]),  # one entry per refund, whichever event says so
        occurred_at=ev.created_at,
    )


def _revoke_if_fully_refunded(session: Session, ticket: Ticket, *, charge_says: bool) -> str | None:
    review = payment_review.review_for_ticket(session, ticket.id)
    if review is not None and review.status is ReviewStatus.open:
        # Refunded at the provider (the Dashboard) before finance decided: once the money
        # is all back there is nothing left to decide, so the review closes and books the
        # sale with its refunds (net zero).
        if not charge_says and payment_review.held_refunds_minor(review) < review.received_minor:
            return "partial refund held for review; ticket stays " + ticket.state.value
        payment_review.decide(
            session,
            review,
            ReviewStatus.refunded,
            actor_id=None,
            reason="refunded at the payment provider before review",
        )
        payment_review.book_sale(
            session, review, note=f"refunded before review: {payment_review.received_note(review)}"
        )
        if ticket.state is not TicketState.disputed:
            _revoke(ticket, TicketState.refunded)
        return "refunded at the provider; review closed"
    # Full means "as much as was paid": a sale accepted from review may be below the price.
    paid = payments.sold_minor(session, ticket.id) or ticket.price_minor
    if charge_says or payments.refunded_minor(session, ticket.id) >= paid:
        if ticket.state is not TicketState.disputed:
            _revoke(ticket, TicketState.refunded)
        if review is not None and review.status is ReviewStatus.refunding:
            payment_review.decide(
                session,
                review,
                ReviewStatus.refunded,
                allowed_from=(ReviewStatus.refunding,),
                actor_id=review.decided_by,
                reason=review.reason,
            )
        return None
    return "partial refund; ticket stays " + ticket.state.value


def revoke_if_fully_refunded(session: Session, ticket: Ticket) -> str | None:
    """After a refund was booked: revoke the ticket once refunds cover what was paid (the
    rule of every provider's refunds; store refunds use it too, tickets/store_purchases.py).
    Returns a note when the ticket stays watchable."""
    return _revoke_if_fully_refunded(session, ticket, charge_says=False)


def _charge_refunded(
    session: Session, provider: PaymentProviderAdapter, ev: ProviderEvent
) -> Outcome:
    charge = ev.object
    ticket = _ticket(session, provider, charge.get("payment_intent"))
    if ticket is None:
        return UNKNOWN
    listed = (charge.get("refunds") or {}).get("data")
    if listed is None:
        # Since API version 2022-11-15 a charge no longer embeds its refunds; ask for them.
        refunds = [
            {"id": r.id, "amount": r.amount_minor, "currency": r.currency, "status": r.status}
            for r in provider.list_refunds(str(charge["id"]))
        ]
    else:
        refunds = list(listed)
    for refund in refunds:
        _refund_from(session, provider, ticket, refund, ev)
    note = _revoke_if_fully_refunded(session, ticket, charge_says=bool(charge.get("refunded")))
    return EventStatus.handled, note


def _refund(session: Session, provider: PaymentProviderAdapter, ev: ProviderEvent) -> Outcome:
    refund = ev.object
    ticket = _ticket(session, provider, refund.get("payment_intent"))
    if ticket is None:
        return UNKNOWN
    _refund_from(session, provider, ticket, refund, ev)
    return EventStatus.handled, _revoke_if_fully_refunded(session, ticket, charge_says=False)


def _dispute_created(
    session: Session, provider: PaymentProviderAdapter, ev: ProviderEvent
) -> Outcome:
    ticket = _ticket(session, provider, ev.object.get("payment_intent"))
    if ticket is None:
        return UNKNOWN
    _revoke(ticket, TicketState.disputed)
    return EventStatus.handled, None


def _dispute_money(
    session: Session, provider: PaymentProviderAdapter, ev: ProviderEvent, kind: LedgerKind
) -> Ticket | None:
    """Record the money a dispute moves (withdrawn: negative; reinstated: positive again)."""
    dispute = ev.object
    ticket = _ticket(session, provider, dispute.get("payment_intent"))
    if ticket is not None:
        _book(
            session,
            provider,
            ticket,
            dispute,
            kind=kind,
            amount=int(dispute.get("amount") or 0),
            reference=str(dispute["id"]),
            occurred_at=ev.created_at,
        )
    return ticket


def _dispute_funds_withdrawn(
    session: Session, provider: PaymentProviderAdapter, ev: ProviderEvent
) -> Outcome:
    ticket = _dispute_money(session, provider, ev, LedgerKind.chargeback)
    if ticket is None:
        return UNKNOWN
    _revoke(ticket, TicketState.disputed)
    return EventStatus.handled, None


def _dispute_funds_reinstated(
    session: Session, provider: PaymentProviderAdapter, ev: ProviderEvent
) -> Outcome:
    if _dispute_money(session, provider, ev, LedgerKind.chargeback_reversal) is None:
        return UNKNOWN
    return EventStatus.handled, None


def _dispute_closed(
    session: Session, provider: PaymentProviderAdapter, ev: ProviderEvent
) -> Outcome:
    dispute = ev.object
    ticket = _ticket(session, provider, dispute.get("payment_intent"))
    if ticket is None:
        return UNKNOWN
    if dispute.get("status") == "won" and ticket.state is TicketState.disputed:
        # The bank sided with us: the viewer paid after all, so the ticket comes back; a
        # payment still in review goes back to waiting for finance.
        review = payment_review.review_for_ticket(session, ticket.id)
        if review is not None and review.status is ReviewStatus.open:
            ticket.state = TicketState.in_review
        else:
            ticket.state = TicketState.active if ticket.paid_at else TicketState.pending
        ticket.revoked_at = None
        return EventStatus.handled, "dispute won; ticket reinstated"
    return EventStatus.handled, f"dispute closed as {dispute.get('status')}"


def _dispute_updated(
    session: Session, provider: PaymentProviderAdapter, ev: ProviderEvent
) -> Outcome:
    # Evidence submitted (by staff through the API, or in the Dashboard): kept in the inbox
    # as the provider's record; the ticket and the ledger do not change.
    if _ticket(session, provider, ev.object.get("payment_intent")) is None:
        return UNKNOWN
    return EventStatus.handled, f"dispute {ev.object.get('status')}"


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _succeeded,
    "payment_intent.payment_failed": _failed,
    "charge.refunded": _charge_refunded,
    "refund.created": _refund,
    "refund.updated": _refund,
    "charge.refund.updated": _refund,
    "charge.dispute.created": _dispute_created,
    "charge.dispute.funds_withdrawn": _dispute_funds_withdrawn,
    "charge.dispute.funds_reinstated": _dispute_funds_reinstated,
    "charge.dispute.closed": _dispute_closed,
    "charge.dispute.updated": _dispute_updated,
}


def confirm_sandbox_payment(
    session: Session, *, viewer_id: str, payment_intent_id: str, payment_method: str
) -> tuple[list[Receipt], Ticket]:
    """The sandbox's PaymentSheet: pay a viewer's pending payment with a test card. The
    resulting events are signed and received through :func:`receive`, like Stripe's."""
    sandbox = get_sandbox()
    ticket = repository.get_ticket_by_intent(session, sandbox.name, payment_intent_id)
    if ticket is None or ticket.viewer_id != viewer_id:
        raise NotFound("no such payment", code="payment_not_found")
    events = sandbox.confirm(
        intent_id=payment_intent_id,
        payment_method=payment_method,
        amount_minor=ticket.price_minor,
        currency=ticket.currency,
        metadata={
            "ticket_id": ticket.id,
            "title_id": ticket.title_id,
            "territory": ticket.territory,
        },
    )
    receipts = [receive(session, sandbox.name, e.payload, e.signature) for e in events]
    session.refresh(ticket)
    return receipts, ticket
