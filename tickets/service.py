"""Tickets: buying one (purchase orchestration), the viewer's library, and the rental clock.

Functions the playback side uses: :func:`get_ticket_for_viewer`, :func:`is_watchable`,
:func:`mark_first_play`. Fulfilment from payment events lives in :mod:`tickets.fulfilment`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from accounts import repository as accounts_repository
from catalog import service as catalog
from catalog.availability import offer_for
from core.db import utcnow
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.settings import get_settings
from payments import service as payments
from payments.providers import IntentRequest, get_provider
from tickets import repository
from tickets.models import (
    DEFAULT_START_WITHIN_HOURS,
    DEFAULT_WATCH_HOURS,
    RentalRule,
    Ticket,
    TicketState,
)

# Printable, no spaces, long enough that two installs never pick the same one by chance
# (apps send a UUID). Bounded so it fits the column and the provider's own key limit.
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,200}$")
PLATFORMS = frozenset({"ios", "android"})
MAX_RULE_HOURS = 24 * 366


@dataclass(frozen=True)
class PurchaseRequest:
    title_id: str
    expected_amount_minor: int | None = None  # the price the app showed, if it wants a check
    expected_currency: str | None = None
    platform: str | None = None  # "ios" | "android"

    def fingerprint(self) -> str:
        body = json.dumps(
            [self.title_id, self.expected_amount_minor, self.expected_currency, self.platform]
        )
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class PaymentSheet:
    """Everything Stripe's mobile PaymentSheet needs, plus the ticket it pays for."""

    ticket: Ticket
    provider: str
    payment_intent_id: str
    client_secret: str
    customer_id: str
    ephemeral_key_secret: str
    publishable_key: str
    amount_minor: int
    currency: str
    replayed: bool  # True when this answers a repeat of an earlier request


def ticket_id_for(viewer_id: str, idempotency_key: str) -> str:
    return hashlib.sha256(f"{viewer_id}\x1f{idempotency_key}".encode()).hexdigest()[:32]


def purchase(
    session: Session,
    *,
    viewer_id: str,
    country: str | None,
    idempotency_key: str,
    request: PurchaseRequest,
    at: datetime | None = None,
) -> PaymentSheet:
    """Start buying a title: a pending ticket and a PaymentIntent, once per idempotency key.

    Concurrency: the ticket row is inserted first with ON CONFLICT DO NOTHING. Identical
    concurrent requests wait on that row until the first one commits (its PaymentIntent id
    included), then answer from it, so the provider is asked once. If the first one fails,
    its rollback lets the next one proceed as if it came first.
    """
    at = at or utcnow()
    if not IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidInput(
            "Idempotency-Key must be 8-200 characters of A-Z a-z 0-9 . _ : - (send a UUID)",
            code="idempotency_key_invalid",
        )
    if request.platform is not None and request.platform not in PLATFORMS:
        raise InvalidInput("platform must be ios or android", code="platform_invalid")
    ticket_id = ticket_id_for(viewer_id, idempotency_key)
    fingerprint = request.fingerprint()

    existing = repository.get_ticket(session, ticket_id)
    if existing is not None:
        return _replay(session, existing, fingerprint)

    offer = offer_for(session, request.title_id, country, at)
    if not catalog.playable_title_ids(session, [offer.title_id]):
        # Before any payment exists: a ticket for a film nobody can watch yet is a refund
        # waiting to happen.
        raise Conflict(
            "this title cannot be bought yet: it has no playable release",
            code="release_not_ready",
        )
    if request.expected_amount_minor is not None and (
        request.expected_amount_minor != offer.price_minor
        or (request.expected_currency or offer.currency).upper() != offer.currency
    ):
        raise Conflict(
            "the price changed since the app showed it; show the new price and ask again",
            code="price_changed",
            price_minor=offer.price_minor,
            currency=offer.currency,
        )
    viewer = accounts_repository.get_user(session, viewer_id)
    if viewer is None:  # pragma: no cover - the access token was just checked
        raise NotFound("no such viewer", code="viewer_not_found")

    provider = get_provider()
    start_within, watch = rental_hours(session, offer.title_id)
    inserted = repository.insert_ticket(
        session,
        {
            "id": ticket_id,
            "viewer_id": viewer_id,
            "title_id": offer.title_id,
            "idempotency_key": idempotency_key,
            "request_fingerprint": fingerprint,
            "territory": offer.country,
            "price_minor": offer.price_minor,
            "currency": offer.currency,
            "licence_window_id": offer.window_id,
            "state": TicketState.pending,
            "provider": provider.name,
            "start_within_hours": start_within,
            "watch_hours": watch,
            "created_at": at,
            "updated_at": at,
        },
    )
    if not inserted:
        winner = repository.get_ticket(session, ticket_id, fresh=True)
        if winner is None:  # pragma: no cover - the conflicting row is committed by now
            raise Conflict("purchase in progress; retry", code="purchase_in_progress")
        return _replay(session, winner, fingerprint)

    ticket = repository.get_ticket(session, ticket_id, fresh=True)
    if ticket is None:  # pragma: no cover - inserted by this transaction a moment ago
        raise Conflict("purchase in progress; retry", code="purchase_in_progress")
    customer_id = payments.customer_for(session, provider, user_id=viewer_id, email=viewer.email)
    methods = get_settings().payment_methods.get(offer.country)
    if methods and "wechat_pay" in methods and request.platform is None:
        # WeChat Pay inside an app needs to know which one; without it, offer the rest.
        methods = [m for m in methods if m != "wechat_pay"] or None
    intent = provider.create_payment_intent(
        IntentRequest(
            amount_minor=offer.price_minor,
            currency=offer.currency,
            customer_id=customer_id,
            metadata={
                "ticket_id": ticket.id,
                "title_id": offer.title_id,
                "territory": offer.country,
                "viewer_id": viewer_id,
            },
            # Scoped by the ticket id (itself derived from viewer and key), so two viewers
            # who happen to send the same key never share a PaymentIntent.
            idempotency_key=f"pi-{ticket.id}",
            description=f"Pocket Cinema ticket {ticket.id}",
            payment_method_types=methods,
            platform=request.platform,
        )
    )
    ticket.payment_intent_id = intent.id
    session.flush()
    return PaymentSheet(
        ticket=ticket,
        provider=provider.name,
        payment_intent_id=intent.id,
        client_secret=intent.client_secret,
        customer_id=customer_id,
        ephemeral_key_secret=provider.create_ephemeral_key(customer_id),
        publishable_key=provider.publishable_key,
        amount_minor=ticket.price_minor,
        currency=ticket.currency,
        replayed=False,
    )


def _replay(session: Session, ticket: Ticket, fingerprint: str) -> PaymentSheet:
    if ticket.request_fingerprint != fingerprint:
        raise Conflict(
            "this Idempotency-Key was used for a different purchase; use a new key",
            code="idempotency_key_reused",
        )
    if ticket.payment_intent_id is None:  # pragma: no cover - set in the creating transaction
        raise Conflict("purchase in progress; retry", code="purchase_in_progress")
    provider = get_provider(ticket.provider)
    viewer = accounts_repository.get_user(session, ticket.viewer_id)
    if viewer is None:  # pragma: no cover - tickets keep their viewer (foreign key)
        raise NotFound("no such viewer", code="viewer_not_found")
    customer_id = payments.customer_for(
        session, provider, user_id=ticket.viewer_id, email=viewer.email
    )
    return PaymentSheet(
        ticket=ticket,
        provider=provider.name,
        payment_intent_id=ticket.payment_intent_id,
        client_secret=provider.client_secret(ticket.payment_intent_id),
        customer_id=customer_id,
        ephemeral_key_secret=provider.create_ephemeral_key(customer_id),
        publishable_key=provider.publishable_key,
        amount_minor=ticket.price_minor,
        currency=ticket.currency,
        replayed=True,
    )


# --- rental rules ----------------------------------------------------------------------------


def rental_hours(session: Session, title_id: str) -> tuple[int, int]:
    """(start within, watch for) in hours for new tickets of a title."""
    rule = repository.get_rental_rule(session, title_id)
    if rule is None:
        return DEFAULT_START_WITHIN_HOURS, DEFAULT_WATCH_HOURS
    return rule.start_within_hours, rule.watch_hours


def set_rental_rule(
    session: Session, title_id: str, *, start_within_hours: int, watch_hours: int
) -> RentalRule:
    """Change a title's rules for tickets sold from now on; sold tickets keep theirs."""
    for name, value in (("start_within_hours", start_within_hours), ("watch_hours", watch_hours)):
        if not 1 <= value <= MAX_RULE_HOURS:
            raise InvalidInput(f"{name} must be 1..{MAX_RULE_HOURS}", code="rental_rule_invalid")
    rule = repository.get_rental_rule(session, title_id)
    if rule is None:
        rule = RentalRule(title_id=title_id)
        session.add(rule)
    rule.start_within_hours = start_within_hours
    rule.watch_hours = watch_hours
    rule.updated_at = utcnow()
    session.flush()
    return rule


# --- the library and the rental clock --------------------------------------------------------


def get_ticket_for_viewer(session: Session, viewer_id: str, ticket_id: str) -> Ticket:
    """The viewer's own ticket; someone else's is indistinguishable from a missing one."""
    ticket = repository.get_ticket_for_viewer(session, viewer_id, ticket_id)
    if ticket is None:
        raise NotFound("no such ticket", code="ticket_not_found")
    return ticket


def resume_positions(session: Session, ticket_ids: Sequence[str]) -> dict[str, float]:
    """Where each ticket's film was left (seconds into the film; absent: never played), so
    any device can offer "continue watching"."""
    return repository.resume_positions(session, ticket_ids)


def list_tickets(
    session: Session,
    viewer_id: str,
    *,
    offset: int,
    limit: int,
    state: TicketState | None = None,
) -> tuple[Sequence[Ticket], int]:
    return repository.list_for_viewer(session, viewer_id, offset=offset, limit=limit, state=state)


def every_ticket_of(session: Session, viewer_id: str) -> Sequence[Ticket]:
    """All of a viewer's tickets, oldest first (the account's data export)."""
    return repository.all_for_viewer(session, viewer_id)


class RentalClock(Protocol):
    """What the state of a ticket at a moment depends on (a Ticket row or its snapshot)."""

    @property
    def state(self) -> TicketState: ...
    @property
    def start_by(self) -> datetime | None: ...
    @property
    def first_played_at(self) -> datetime | None: ...
    @property
    def watch_until(self) -> datetime | None: ...


def state_at(ticket: RentalClock, at: datetime) -> TicketState:
    """The state a person would see: an active ticket whose time ran out is expired."""
    if ticket.state is TicketState.active:
        if ticket.first_played_at is None:
            if ticket.start_by is not None and at > ticket.start_by:
                return TicketState.expired
        elif ticket.watch_until is not None and at > ticket.watch_until:
            return TicketState.expired
    return ticket.state


def is_watchable(ticket: RentalClock, at: datetime) -> bool:
    return state_at(ticket, at) is TicketState.active


def remaining(ticket: Ticket, at: datetime) -> timedelta | None:
    """Time left in the current phase: to start watching, or to finish; None if not active."""
    if not is_watchable(ticket, at):
        return None
    deadline = ticket.watch_until if ticket.first_played_at is not None else ticket.start_by
    return max(deadline - at, timedelta(0)) if deadline is not None else None


def mark_first_play(session: Session, ticket: Ticket, at: datetime) -> Ticket:
    """Start the watch window at the first play; later plays change nothing."""
    if not is_watchable(ticket, at):
        raise Forbidden(f"this ticket is {state_at(ticket, at).value}", code="ticket_not_watchable")
    if ticket.first_played_at is None:
        watch_until = at + timedelta(hours=ticket.watch_hours)
        repository.set_first_play(session, ticket.id, at, watch_until)
        session.refresh(ticket)
    return ticket
