"""Store purchases: an App Store or Google Play purchase becomes a ticket and a sale, once.

The app buys inside the store, then sends us what the store gave it (a StoreKit 2 signed
transaction, a Play purchase token). ``payments.stores`` verifies it with the store; this
module decides, in the request's transaction:

* the product id must be configured for a title in the storefront's country
  (``catalog.store_products``), and the store must have charged that price point;
* the title must be on sale there now (``catalog.availability.offer_for``), as for any
  ticket;
* one store transaction is one ticket, whoever sends it and however often: the ticket's
  ``(provider, payment_intent_id)`` is the store and its transaction id, under the existing
  unique constraint, inserted with ON CONFLICT DO NOTHING (a concurrent duplicate waits for
  the first and answers from it; another viewer's claim is refused);
* the sale is booked at the consumer price (gross) with the store's commission as the
  provider fee, so net and the studio payable come out right in every report.

Refunds and revocations the stores report (``apply_notice``) book a refund of the price
with the commission given back, and revoke the ticket through the same rule as every
provider's refunds (``tickets.fulfilment.revoke_if_fully_refunded``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy.orm import Session

from catalog import service as catalog
from catalog import store_products
from catalog.availability import offer_for
from core.db import utcnow
from core.errors import Conflict, InvalidInput
from core.outbox import enqueue
from core.settings import Store
from payments import service as payments
from payments.models import EventStatus, LedgerKind
from payments.providers import Fee, ProviderEvent
from payments.stores import StoreConflict, StoreNotice, StorePurchase, commission_percent
from tickets import fulfilment, repository
from tickets.models import Ticket, TicketState
from tickets.service import rental_hours, ticket_id_for

log = logging.getLogger(__name__)

CONSUME_JOB = "stores.google.consume"
CONSUMPTION_JOB = "stores.apple.consumption"
VOIDED_SYNC_JOB = "stores.google.voided_sync"
STORES = frozenset(s.value for s in Store)
# Notification types that mean the money went back to the viewer.
REFUNDING = {Store.app_store: {"REFUND", "REVOKE"}, Store.google_play: {"voided"}}


@dataclass(frozen=True)
class Claimed:
    ticket: Ticket
    replayed: bool  # True when this transaction was already a ticket (a retry, a double tap)


def commission_minor(store: Store, price_minor: int) -> int:
    """The store's cut of a consumer price, rounded half-to-even to the minor unit."""
    cut = Decimal(price_minor) * commission_percent(store) / 100
    return int(cut.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def claim(
    session: Session, *, viewer_id: str, purchase: StorePurchase, at: datetime | None = None
) -> Claimed:
    """Turn a verified store purchase into the viewer's ticket (once per transaction)."""
    at = at or utcnow()
    store = purchase.store
    repository.lock_store_transaction(session, store.value, purchase.transaction_id)
    existing = repository.get_ticket_by_intent(session, store.value, purchase.transaction_id)
    if existing is not None:
        return _replay(existing, viewer_id)
    if purchase.revoked or payments.has_event_about(
        session, store.value, purchase.transaction_id, sorted(REFUNDING[store])
    ):
        # The store's refund may arrive before the app sends the purchase (the app crashed,
        # or it replays a transaction it kept from before the refund): the inbox remembers.
        raise StoreConflict(
            "the store refunded or revoked this purchase", code="store_purchase_revoked"
        )
    product = store_products.for_purchase(session, store, purchase.product_id, purchase.territory)
    if product is None:
        raise InvalidInput(
            f"{purchase.product_id} is not configured for any title in {purchase.territory}",
            code="store_product_unknown",
        )
    if purchase.price_minor is not None and (
        purchase.price_minor != product.price_minor or purchase.currency != product.currency
    ):
        # The store charged another price point than the studio set for this storefront
        # (a stale price tier, or a product moved between tiers): no ticket at a price nobody
        # agreed to.
        raise StoreConflict(
            f"the store charged {purchase.price_minor} {purchase.currency}; the price point "
            f"configured is {product.price_minor} {product.currency}",
            code="store_price_mismatch",
            price_minor=product.price_minor,
            currency=product.currency,
        )
    offer = offer_for(session, product.title_id, purchase.territory, at)
    if not catalog.playable_title_ids(session, [offer.title_id]):
        raise Conflict(
            "this title cannot be bought yet: it has no playable release",
            code="release_not_ready",
        )
    key = f"{store.value}:{purchase.transaction_id}"
    ticket_id = ticket_id_for(viewer_id, key)
    start_within, watch = rental_hours(session, offer.title_id)
    paid_at = purchase.purchased_at
    inserted = repository.insert_ticket(
        session,
        {
            "id": ticket_id,
            "viewer_id": viewer_id,
            "title_id": offer.title_id,
            "idempotency_key": key[:255],
            "request_fingerprint": hashlib.sha256(key.encode()).hexdigest(),
            "territory": purchase.territory,
            "price_minor": product.price_minor,
            "currency": product.currency,
            "licence_window_id": offer.window_id,
            "state": TicketState.active,
            "provider": store.value,
            "payment_intent_id": purchase.transaction_id,
            "start_within_hours": start_within,
            "watch_hours": watch,
            "paid_at": paid_at,
            "start_by": paid_at + timedelta(hours=start_within),
            "created_at": at,
            "updated_at": at,
        },
    )
    if not inserted:
        # A concurrent claim of the same transaction won (we waited for its commit).
        winner = repository.get_ticket_by_intent(session, store.value, purchase.transaction_id)
        if winner is None:  # pragma: no cover - the conflicting row is committed by now
            raise Conflict("purchase in progress; retry", code="purchase_in_progress")
        return _replay(winner, viewer_id)
    ticket = repository.get_ticket(session, ticket_id, fresh=True)
    if ticket is None:  # pragma: no cover - inserted by this transaction a moment ago
        raise Conflict("purchase in progress; retry", code="purchase_in_progress")
    rate = commission_percent(store)
    payments.record_money(
        session,
        payments.Money(
            ticket.id, ticket.title_id, ticket.territory, ticket.currency, ticket.price_minor
        ),
        kind=LedgerKind.sale,
        provider=store.value,
        provider_reference=purchase.transaction_id,
        occurred_at=paid_at,
        fee=Fee(commission_minor(store, ticket.price_minor), ticket.currency),
        note=f"{store.value} sale: fee is the store's {rate.normalize()} % commission",
    )
    if store is Store.google_play and purchase.purchase_token:
        # Consumed after commit, by a job: a ticket never waits on Google, and a purchase
        # Google does not see consumed within three days it refunds by itself.
        enqueue(
            session,
            CONSUME_JOB,
            product_id=purchase.product_id,
            purchase_token=purchase.purchase_token,
        )
    log.info("store purchase", extra={"ticket_id": ticket.id, "store": store.value})
    return Claimed(ticket, replayed=False)


def _replay(ticket: Ticket, viewer_id: str) -> Claimed:
    if ticket.viewer_id != viewer_id:
        # The same store transaction sent by another account: a shared or stolen receipt.
        raise StoreConflict(
            "this store purchase already belongs to another account",
            code="store_purchase_claimed",
        )
    return Claimed(ticket, replayed=True)


# --- notifications --------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeReceipt:
    notice_id: str
    type: str
    status: str  # handled | ignored | duplicate
    note: str | None = None


def apply_notice(session: Session, notice: StoreNotice) -> NoticeReceipt:
    """Store the notification once (the payment inbox, keyed by the store and its id) and,
    only for the delivery that stored it, apply it in the same transaction."""
    inbox = payments.record_event(
        session,
        notice.store.value,
        ProviderEvent(
            id=notice.notice_id,
            type=notice.type,
            created_at=notice.signed_at,
            object={"id": notice.transaction_id} if notice.transaction_id else {},
            payload=notice.payload,
        ),
    )
    if inbox is None:
        return NoticeReceipt(notice.notice_id, notice.type, "duplicate")
    status, note = _handle(session, notice)
    payments.finish_event(session, inbox, status, note)
    return NoticeReceipt(notice.notice_id, notice.type, status.value, note)


def _handle(session: Session, notice: StoreNotice) -> tuple[EventStatus, str | None]:
    if notice.transaction_id is None:
        return EventStatus.ignored, "not about a purchase"
    repository.lock_store_transaction(session, notice.store.value, notice.transaction_id)
    ticket = repository.get_ticket_by_intent(
        session, notice.store.value, notice.transaction_id, for_update=True
    )
    if ticket is None:
        return EventStatus.ignored, "no ticket for this purchase"
    if notice.type in REFUNDING[notice.store]:
        return EventStatus.handled, refund(
            session, ticket, notice.store, at=notice.refunded_at or notice.signed_at
        )
    if notice.store is Store.app_store and notice.type == "CONSUMPTION_REQUEST":
        # Answered by a job from the viewing data (boxoffice/store_consumption.py): the
        # App Store Server API call must not hold this transaction open, and is retried.
        enqueue(session, CONSUMPTION_JOB, ticket_id=ticket.id, transaction_id=notice.transaction_id)
        return EventStatus.handled, "consumption information queued"
    return EventStatus.ignored, f"{notice.type} changes nothing here"


def refund(session: Session, ticket: Ticket, store: Store, *, at: datetime) -> str | None:
    """The store gave the viewer's money back: a refund of what the sale booked, with the
    commission returned too (stores refund their cut), once per transaction whatever tells
    us (the notification, its redelivery, Google's voided purchases list); then the
    ticket is revoked like any refunded ticket."""
    sales = [e for e in payments.ledger_for_ticket(session, ticket.id) if e.kind is LedgerKind.sale]
    if not sales:  # pragma: no cover - a store ticket is created with its sale
        return "no sale booked for this ticket"
    sale = sales[0]
    fee = sale.provider_fee_minor or 0
    payments.record_money(
        session,
        payments.Money(
            ticket.id, ticket.title_id, ticket.territory, sale.currency, sale.amount_minor
        ),
        kind=LedgerKind.refund,
        provider=store.value,
        provider_reference=str(ticket.payment_intent_id),
        occurred_at=at,
        fee=Fee(-fee, sale.provider_fee_currency or sale.currency),
        note=f"refunded by {store.value}; its commission comes back",
    )
    return fulfilment.revoke_if_fully_refunded(session, ticket)


def is_store_ticket(ticket: Ticket) -> bool:
    return ticket.provider in STORES
