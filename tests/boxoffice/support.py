"""Typed helpers for box-office tests: real tickets bought through the services, money
moved by signed sandbox events through the same receive path as Stripe's webhooks."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from core.db import unit_of_work
from core.settings import get_settings
from payments.providers import SandboxProvider, sign_payload
from tickets import fulfilment
from tickets import service as tickets
from tickets.models import Ticket


def pending_ticket(viewer_id: str, title_id: str, country: str = "US") -> Ticket:
    with unit_of_work() as session:
        sheet = tickets.purchase(
            session,
            viewer_id=viewer_id,
            country=country,
            idempotency_key=str(uuid.uuid4()),
            request=tickets.PurchaseRequest(title_id=title_id),
        )
        session.expunge(sheet.ticket)
        return sheet.ticket


def sandbox_event(type_: str, obj: dict[str, Any], created: datetime) -> str:
    """Deliver one signed sandbox event that happened at ``created``; returns its status."""
    sandbox = SandboxProvider(get_settings())
    body = {
        "id": "evt_test_" + uuid.uuid4().hex,
        "object": "event",
        "type": type_,
        "created": int(created.timestamp()),
        "data": {"object": obj},
    }
    payload = json.dumps(body).encode()
    with unit_of_work() as session:
        receipt = fulfilment.receive(
            session, "sandbox", payload, sign_payload(payload, sandbox.webhook_secret)
        )
    return receipt.status


def pay(ticket: Ticket, at: datetime) -> None:
    intent = {
        "id": ticket.payment_intent_id,
        "object": "payment_intent",
        "amount": ticket.price_minor,
        "amount_received": ticket.price_minor,
        "currency": ticket.currency.lower(),
        "status": "succeeded",
        "latest_charge": "ch_" + str(ticket.payment_intent_id),
    }
    assert sandbox_event("payment_intent.succeeded", intent, at) == "handled"


def refund(ticket: Ticket, amount: int, at: datetime) -> None:
    obj = {
        "id": "re_" + uuid.uuid4().hex[:16],
        "object": "refund",
        "amount": amount,
        "currency": ticket.currency.lower(),
        "payment_intent": ticket.payment_intent_id,
        "status": "succeeded",
    }
    assert sandbox_event("refund.created", obj, at) == "handled"


def dispute(ticket: Ticket, at: datetime, *, reinstated_at: datetime | None = None) -> None:
    obj = {
        "id": "dp_" + str(ticket.payment_intent_id),
        "object": "dispute",
        "amount": ticket.price_minor,
        "currency": ticket.currency.lower(),
        "payment_intent": ticket.payment_intent_id,
        "status": "needs_response",
    }
    assert sandbox_event("charge.dispute.funds_withdrawn", obj, at) == "handled"
    if reinstated_at is not None:
        assert sandbox_event("charge.dispute.funds_reinstated", obj, reinstated_at) == "handled"
