"""Reconciliation: the ledger of one UTC day against the provider's balance transactions.

Providers settle and report in UTC, so reconciliation days are UTC days (reports use each
territory's local day). Each side is reduced to movements keyed by (reference, kind):
Stripe through its list API (``balance_transactions.list`` with ``expand=data.source``, so
a charge names its PaymentIntent); the sandbox from the events it signed (it keeps no other
books). Every difference is reported; nothing is corrected automatically.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import stripe
from sqlalchemy.orm import Session

from boxoffice import repository
from core.errors import AppError, InvalidInput
from core.settings import PaymentProvider, get_settings
from payments.models import LedgerKind, PaymentEvent


class ReconciliationUnavailable(AppError):
    status = 502
    code = "reconciliation_provider_error"
    title = "Payment provider unavailable"


@dataclass(frozen=True)
class Movement:
    reference: str  # pi_…, re_…, dp_…
    kind: str  # a LedgerKind value
    amount_minor: int  # signed as in the ledger
    currency: str
    fee_minor: int | None
    provider_id: str  # txn_… or the event id


@dataclass(frozen=True)
class Difference:
    problem: str  # missing_in_ledger | missing_at_provider | amount_differs | currency_differs | fee_differs
    reference: str
    kind: str
    ledger: Movement | None
    provider: Movement | None


@dataclass
class Reconciliation:
    day: date
    provider: str
    ledger_entries: int
    provider_transactions: int
    matched: int
    differences: list[Difference] = field(default_factory=list)


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def ledger_movements(session: Session, provider: str, day: date) -> list[Movement]:
    start, end = _bounds(day)
    rows = repository.ledger_entries(session, provider, start, end)
    return [
        Movement(
            e.provider_reference,
            e.kind.value,
            e.amount_minor,
            e.currency,
            e.provider_fee_minor,
            e.id,
        )
        for e in rows
    ]


def stripe_movements(day: date) -> list[Movement]:
    settings = get_settings()
    if not settings.stripe_secret_key.get_secret_value():
        # Without a key the SDK would still go to Stripe (and fail slowly): say what is wrong.
        raise InvalidInput(
            "Stripe is not configured here (POCKETCINEMA_STRIPE_SECRET_KEY)",
            code="payment_provider_not_configured",
        )
    base = {"api": settings.stripe_api_base.rstrip("/")} if settings.stripe_api_base else {}
    client = stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=2,
    )
    start, end = _bounds(day)
    params: dict[str, Any] = {
        "created": {"gte": int(start.timestamp()), "lt": int(end.timestamp())},
        "limit": 100,
        "expand": ["data.source"],
    }
    try:
        page = client.v1.balance_transactions.list(params)  # type: ignore[arg-type]
        return [m for txn in page.auto_paging_iter() if (m := _from_stripe(txn)) is not None]
    except stripe.StripeError as exc:
        raise ReconciliationUnavailable(
            f"Stripe did not list balance transactions: {exc.user_message or exc}"
        ) from None


def _from_stripe(txn: Any) -> Movement | None:
    source = txn.source
    source_id = source if isinstance(source, str) else getattr(source, "id", "")
    kind: LedgerKind
    if txn.type in ("charge", "payment"):
        kind = LedgerKind.sale
        reference = getattr(source, "payment_intent", None) or source_id
    elif txn.type in ("refund", "payment_refund"):
        kind, reference = LedgerKind.refund, source_id
    elif txn.type == "adjustment" and str(source_id).startswith(("dp_", "du_")):
        kind = LedgerKind.chargeback if int(txn.amount) < 0 else LedgerKind.chargeback_reversal
        reference = source_id
    else:
        return None  # payouts, Stripe fees, transfers: not ticket money
    return Movement(
        str(reference),
        kind.value,
        int(txn.amount),
        str(txn.currency).upper(),
        int(txn.fee),
        str(txn.id),
    )


def sandbox_movements(session: Session, day: date) -> list[Movement]:
    """The sandbox's own books: the money events it signed, with the fee it models."""
    start, end = _bounds(day)
    events = repository.sandbox_events(session, start, end)
    out: list[Movement] = []
    for event in events:
        out.extend(_from_sandbox(event))
    return out


def _from_sandbox(event: PaymentEvent) -> Iterator[Movement]:
    obj = event.payload.get("data", {}).get("object", {})
    currency = str(obj.get("currency", "")).upper()
    if event.type == "payment_intent.succeeded":
        amount = int(obj.get("amount_received") or obj.get("amount") or 0)
        fee = (amount * 29 + 500) // 1000 + 30
        yield Movement(str(obj["id"]), LedgerKind.sale.value, amount, currency, fee, event.event_id)
    elif event.type == "charge.refunded":
        for refund in (obj.get("refunds") or {}).get("data") or []:
            yield Movement(
                str(refund["id"]),
                LedgerKind.refund.value,
                -int(refund["amount"]),
                currency,
                None,
                event.event_id,
            )
    elif event.type in ("refund.created", "refund.updated") and obj.get("status") in (
        "succeeded",
        "pending",
    ):
        yield Movement(
            str(obj["id"]),
            LedgerKind.refund.value,
            -int(obj["amount"]),
            currency,
            None,
            event.event_id,
        )
    elif event.type == "charge.dispute.funds_withdrawn":
        yield Movement(
            str(obj["id"]),
            LedgerKind.chargeback.value,
            -int(obj["amount"]),
            currency,
            None,
            event.event_id,
        )
    elif event.type == "charge.dispute.funds_reinstated":
        yield Movement(
            str(obj["id"]),
            LedgerKind.chargeback_reversal.value,
            int(obj["amount"]),
            currency,
            None,
            event.event_id,
        )


def reconcile(session: Session, day: date, provider: str | None = None) -> Reconciliation:
    name = provider or get_settings().payment_provider.value
    ledger = ledger_movements(session, name, day)
    theirs = (
        stripe_movements(day)
        if name == PaymentProvider.stripe.value
        else sandbox_movements(session, day)
    )
    # A refund listed twice (charge.refunded and refund.created) is one movement.
    theirs_by = {(m.reference, m.kind): m for m in theirs}
    ours_by = {(m.reference, m.kind): m for m in ledger}
    result = Reconciliation(day, name, len(ours_by), len(theirs_by), 0)
    for key in sorted(ours_by.keys() | theirs_by.keys()):
        ours, their = ours_by.get(key), theirs_by.get(key)
        problem = None
        if their is None:
            problem = "missing_at_provider"
        elif ours is None:
            problem = "missing_in_ledger"
        elif ours.currency != their.currency:
            problem = "currency_differs"  # settled in another currency: check the rate used
        elif ours.amount_minor != their.amount_minor:
            problem = "amount_differs"
        elif (
            ours.fee_minor is not None
            and their.fee_minor is not None
            and ours.fee_minor != their.fee_minor
        ):
            problem = "fee_differs"
        if problem is None:
            result.matched += 1
        else:
            result.differences.append(Difference(problem, key[0], key[1], ours, their))
    return result
