"""Staff money actions: refunds (full or partial) and dispute evidence, through the provider.

A request records a :class:`~payments.models.PaymentAction` (who, when, what, why) and an
outbox job in one transaction; the job calls the provider with the action's own
idempotency key and records the provider's reference. So:

* a retried request (same Idempotency-Key from the same person) finds its first action;
* a job that crashes between the provider call and its commit runs again with the same
  key, and the provider answers with the refund it already made instead of a second one;
* the ledger rows still come only from the provider's events (``tickets/fulfilment.py``),
  so reconciliation keeps matching them to the provider's balance transactions.

A partial refund keeps the ticket watchable; a refund that brings the total refunded up to
what was paid revokes it (the fulfilment rule for ``refund.*`` and ``charge.refunded``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.db import new_id, utcnow
from core.errors import Conflict, InvalidInput, NotFound
from core.outbox import enqueue
from core.settings import Store
from payments import repository as payments_repository
from payments import review as payment_review
from payments import service as payments
from payments.models import (
    ActionKind,
    ActionStatus,
    LedgerKind,
    PaymentAction,
    ReviewStatus,
)
from payments.providers import (
    PaymentProviderError,
    SandboxProvider,
    get_provider,
)
from tickets import fulfilment, repository
from tickets.models import Ticket, TicketState

ACTION_JOB = "payments.action.run"
STORE_PROVIDERS = frozenset(s.value for s in Store)
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,200}$")

# Stripe's dispute evidence fields that a pay-per-view sale can fill with text (files such
# as receipts need Stripe's Files API first and are left to the Dashboard).
EVIDENCE_FIELDS = frozenset(
    {
        "access_activity_log",
        "cancellation_rebuttal",
        "customer_email_address",
        "customer_name",
        "customer_purchase_ip",
        "duplicate_charge_explanation",
        "product_description",
        "refund_policy_disclosure",
        "refund_refusal_explanation",
        "service_date",
        "uncategorized_text",
    }
)
EVIDENCE_MAX_CHARS = 20_000  # Stripe's limit over all text fields together


class ProviderUnavailable(Exception):
    """The provider did not answer; the job retries (with the same idempotency key)."""


@dataclass(frozen=True)
class Recorded:
    action: PaymentAction
    replayed: bool  # True when this answers a repeat of an earlier request


def _action_id(actor_id: str, idempotency_key: str) -> str:
    return hashlib.sha256(f"{actor_id}\x1f{idempotency_key}".encode()).hexdigest()[:32]


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def record_action(
    session: Session,
    *,
    ticket: Ticket,
    kind: ActionKind,
    actor_id: str,
    reason: str,
    idempotency_key: str | None = None,
    fingerprint: str = "",
    amount_minor: int | None = None,
    currency: str | None = None,
    review_id: str | None = None,
    details: dict[str, Any] | None = None,
    done: str | None = None,
) -> Recorded:
    """Write one audit row; queue the provider call unless ``done`` (the reference of
    something already finished, e.g. an accepted payment)."""
    action_id = _action_id(actor_id, idempotency_key) if idempotency_key else new_id()
    now = utcnow()
    inserted = payments_repository.insert_action(
        session,
        {
            "id": action_id,
            "ticket_id": ticket.id,
            "review_id": review_id,
            "kind": kind,
            "actor_id": actor_id,
            "idempotency_key": idempotency_key or action_id,
            "request_fingerprint": fingerprint,
            "reason": reason[:500],
            "provider": ticket.provider,
            "amount_minor": amount_minor,
            "currency": currency,
            "details": details or {},
            "status": ActionStatus.succeeded if done else ActionStatus.requested,
            "provider_idempotency_key": f"{kind.value}-{action_id}",
            "provider_reference": done,
            "completed_at": now if done else None,
            "created_at": now,
        },
    )
    # Inserted now, or by the first of two identical requests (committed: we waited on it).
    action = payments_repository.get_action(session, action_id)
    if action is None:
        raise Conflict("the same request is still running; retry", code="request_in_progress")
    if not inserted:
        if action.request_fingerprint != fingerprint or action.kind is not kind:
            raise Conflict(
                "this Idempotency-Key was used for a different request",
                code="idempotency_key_reused",
            )
        return Recorded(action, replayed=True)
    if not done:
        enqueue(session, ACTION_JOB, action_id=action_id)
    return Recorded(action, replayed=False)


def _check_key(idempotency_key: str) -> None:
    if not IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidInput(
            "Idempotency-Key must be 8-200 characters of A-Z a-z 0-9 . _ : - (send a UUID)",
            code="idempotency_key_invalid",
        )


def _locked_ticket(session: Session, ticket_id: str) -> Ticket:
    ticket = repository.get_ticket_for_update(session, ticket_id)
    if ticket is None:
        raise NotFound("no such ticket", code="ticket_not_found")
    return ticket


def refundable_minor(session: Session, ticket: Ticket) -> tuple[int, str | None]:
    """What may still be refunded: paid, less refunded, less refunds already asked for;
    and the currency the viewer paid in (None before a sale is booked)."""
    sales = [e for e in payments.ledger_for_ticket(session, ticket.id) if e.kind is LedgerKind.sale]
    if not sales:
        return 0, None
    paid = sum(e.amount_minor for e in sales)
    refunded = payments.refunded_minor(session, ticket.id)
    asked = payments_repository.requested_refunds_minor(session, ticket.id)
    return max(paid - refunded - asked, 0), sales[0].currency


def request_refund(
    session: Session,
    *,
    actor_id: str,
    ticket_id: str,
    amount_minor: int | None,
    reason: str,
    idempotency_key: str,
) -> Recorded:
    """A staff refund of ``amount_minor`` (None: everything still refundable)."""
    _check_key(idempotency_key)
    fingerprint = _fingerprint("refund", ticket_id, amount_minor, reason)
    existing = payments_repository.get_action(session, _action_id(actor_id, idempotency_key))
    # The ticket lock serialises two staff refunds of one ticket, so together they can never
    # ask for more than was paid.
    ticket = _locked_ticket(session, ticket_id)
    if ticket.provider in STORE_PROVIDERS:
        # The App Store and Google Play hold the money; the viewer asks the store, whose
        # refund notification then revokes the ticket (tickets/store_purchases.py).
        raise Conflict(
            f"this ticket was bought through {ticket.provider}; refunds are made by the store",
            code="store_refund_only",
        )
    if existing is None:
        review = payment_review.review_for_ticket(session, ticket.id)
        if review is not None and review.status in (ReviewStatus.open, ReviewStatus.refunding):
            raise Conflict(
                "this payment is in the review queue; accept or refund it there",
                code="payment_in_review",
                review_id=review.id,
            )
        if ticket.state is TicketState.disputed:
            raise Conflict(
                "the payment is disputed; the bank decides, submit evidence instead",
                code="ticket_disputed",
            )
        left, currency = refundable_minor(session, ticket)
        if currency is None:
            raise Conflict("no payment is booked for this ticket", code="ticket_not_paid")
        if left <= 0:
            raise Conflict(
                "everything paid is refunded or being refunded", code="nothing_to_refund"
            )
        if amount_minor is not None and amount_minor > left:
            raise Conflict(
                f"at most {left} {currency} minor units can still be refunded",
                code="refund_exceeds_payment",
                refundable_minor=left,
                currency=currency,
            )
        amount: int | None = amount_minor if amount_minor is not None else left
    else:
        # A repeat: answer from the first request (its checks ran then; the refund it asked
        # for is now counted as requested, so checking again would refuse the repeat).
        amount, currency = existing.amount_minor, existing.currency
    return record_action(
        session,
        ticket=ticket,
        kind=ActionKind.refund,
        actor_id=actor_id,
        reason=reason,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        amount_minor=amount,
        currency=currency,
        details={"full": amount_minor is None},
    )


def submit_dispute_evidence(
    session: Session,
    *,
    actor_id: str,
    dispute_id: str,
    evidence: dict[str, str],
    submit: bool,
    reason: str,
    idempotency_key: str,
) -> Recorded:
    """Send evidence for a dispute of one of our payments (Stripe's dispute update)."""
    _check_key(idempotency_key)
    unknown = sorted(set(evidence) - EVIDENCE_FIELDS)
    if unknown:
        raise InvalidInput(
            f"unknown evidence fields: {', '.join(unknown)}",
            code="evidence_field_unknown",
            allowed=sorted(EVIDENCE_FIELDS),
        )
    if not evidence:
        raise InvalidInput("send at least one evidence field", code="evidence_empty")
    if sum(len(v) for v in evidence.values()) > EVIDENCE_MAX_CHARS:
        raise InvalidInput(
            f"evidence text is limited to {EVIDENCE_MAX_CHARS} characters in all",
            code="evidence_too_long",
        )
    provider = get_provider()
    stored = payments_repository.dispute_event(session, provider.name, dispute_id)
    intent_id = (stored.payload.get("data", {}).get("object", {}) if stored else {}).get(
        "payment_intent"
    )
    ticket = (
        repository.get_ticket_by_intent(session, provider.name, intent_id)
        if isinstance(intent_id, str)
        else None
    )
    if ticket is None:
        raise NotFound("no dispute with this id about our payments", code="dispute_not_found")
    return record_action(
        session,
        ticket=ticket,
        kind=ActionKind.dispute_evidence,
        actor_id=actor_id,
        reason=reason,
        idempotency_key=idempotency_key,
        fingerprint=_fingerprint("evidence", dispute_id, evidence, submit, reason),
        details={"dispute_id": dispute_id, "evidence": evidence, "submit": submit},
    )


def get_action(session: Session, action_id: str) -> PaymentAction:
    action = payments_repository.get_action(session, action_id)
    if action is None:
        raise NotFound("no such payment action", code="payment_action_not_found")
    return action


def actions_for_ticket(session: Session, ticket_id: str) -> list[PaymentAction]:
    if repository.get_ticket(session, ticket_id) is None:
        raise NotFound("no such ticket", code="ticket_not_found")
    return list(payments_repository.actions_for_ticket(session, ticket_id))


# --- the job ---------------------------------------------------------------------------


def carry_out(session: Session, action_id: str) -> None:
    """Make the provider call of one requested action and record its reference."""
    action = payments_repository.get_action(session, action_id, for_update=True)
    if action is None or action.status is not ActionStatus.requested:
        return  # done by an earlier delivery
    ticket = repository.get_ticket(session, action.ticket_id)
    if ticket is None or not ticket.payment_intent_id:
        raise NotFound("the action's payment is gone", code="payment_not_found")
    provider = get_provider(action.provider)
    try:
        if action.kind in (ActionKind.refund, ActionKind.review_refund):
            refund = provider.refund(
                ticket.payment_intent_id,
                amount_minor=action.amount_minor,
                idempotency_key=action.provider_idempotency_key,
                currency=action.currency,
            )
            action.provider_reference = refund.id
            action.details = {**action.details, "provider_status": refund.status}
            signed = (
                provider.refund_events(refund, ticket.payment_intent_id)
                if isinstance(provider, SandboxProvider)
                else []
            )
        else:
            evidence = dict(action.details["evidence"])
            update = provider.update_dispute(
                str(action.details["dispute_id"]),
                evidence=evidence,
                submit=bool(action.details["submit"]),
                idempotency_key=action.provider_idempotency_key,
            )
            action.provider_reference = update.id
            action.details = {**action.details, "provider_status": update.status}
            signed = (
                provider.dispute_events(
                    update, ticket.payment_intent_id, evidence, action.provider_idempotency_key
                )
                if isinstance(provider, SandboxProvider)
                else []
            )
    except PaymentProviderError as exc:
        if exc.code == PaymentProviderError.code:
            # An outage or a 5xx: worth retrying, with the same idempotency key.
            raise ProviderUnavailable(exc.detail) from None
        raise
    action.status = ActionStatus.succeeded
    action.completed_at = utcnow()
    session.flush()
    # The sandbox has no webhooks to send: its events go through the same verify, inbox,
    # handle path here, in the job's transaction (Stripe's arrive at the webhook route).
    for event in signed:
        fulfilment.receive(session, provider.name, event.payload, event.signature)


def record_failure(session: Session, action_id: str, detail: str, code: str) -> None:
    """The provider refused for good (or never answered): the action failed, and a review
    waiting on a refund goes back to the queue so finance can decide again."""
    action = payments_repository.get_action(session, action_id, for_update=True)
    if action is None or action.status is not ActionStatus.requested:
        return
    action.status = ActionStatus.failed
    action.error_code = code[:100]
    action.error_detail = detail[:500]
    action.completed_at = utcnow()
    if action.review_id is not None:
        review = payment_review.get_review(session, action.review_id, for_update=True)
        if review is not None:
            payment_review.decide(
                session,
                review,
                ReviewStatus.open,
                allowed_from=(ReviewStatus.refunding,),
                actor_id=None,
                reason=f"refund failed ({code}); decide again",
            )
    session.flush()


@dataclass(frozen=True)
class TicketPayment:
    """A ticket as finance looks it up: what was paid and what may still be refunded."""

    ticket: Ticket
    refundable_minor: int
    paid_currency: str | None


def find_ticket_payments(
    session: Session, *, viewer_id: str | None, q: str, offset: int, limit: int
) -> tuple[list[TicketPayment], int]:
    """A viewer's tickets, or the ticket whose id or provider payment id is ``q``."""
    rows, total = repository.find_tickets(session, viewer_id, q.strip(), offset, limit)
    found = []
    for ticket in rows:
        left, currency = refundable_minor(session, ticket)
        found.append(TicketPayment(ticket, left, currency))
    return found, total
