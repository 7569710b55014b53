"""POST /v1/webhooks/stripe: verified, stored once, handled once, in any order."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from payments.models import PaymentEvent
from tests.helpers import create_licensed_title, create_studio, create_user
from tests.payments.fake_stripe import API_KEY, FakeStripe
from tests.payments.support import buy, count, deliver, ledger, ticket

pytestmark = pytest.mark.usefixtures("db")
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def bought(client: TestClient, stripe_fake: FakeStripe) -> dict[str, Any]:
    """A pending ticket for a $12.99 film, paid through the fake Stripe."""
    film = create_licensed_title(create_studio().id)
    response = buy(client, create_user("ana@example.com"), film.id)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _pay(fake: FakeStripe, intent_id: str, method: str = "pm_card_visa") -> dict[str, Any]:
    return fake.handle(
        "POST", f"/v1/payment_intents/{intent_id}/confirm", {}, {"payment_method": method}, AUTH
    )[1]


@pytest.mark.parametrize(
    "tamper",
    ["body", "secret", "stale", "missing", "garbage"],
)
def test_unverifiable_events_are_refused_with_no_effect(
    client: TestClient, stripe_fake: FakeStripe, bought: dict[str, Any], tamper: str
) -> None:
    intent = _pay(stripe_fake, bought["payment_intent_id"])
    payload = stripe_fake.event("payment_intent.succeeded", intent)
    if tamper == "body":
        headers = {"Stripe-Signature": _sig(payload)}
        payload = payload.replace(b'"amount": 1299', b'"amount": 1')
    elif tamper == "secret":
        headers = {"Stripe-Signature": _sig(payload, secret="whsec_someone_else")}
    elif tamper == "stale":
        headers = {"Stripe-Signature": _sig(payload, timestamp=int(time.time()) - 3600)}
    elif tamper == "missing":
        headers = {}
    else:
        headers = {"Stripe-Signature": "t=abc,v1=nothing"}
    response = client.post("/v1/webhooks/stripe", content=payload, headers=headers)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"].startswith("webhook_")
    assert count(PaymentEvent) == 0
    assert ticket(bought["ticket"]["id"]).state == "pending"
    assert ledger() == []


def _sig(payload: bytes, secret: str | None = None, timestamp: int | None = None) -> str:
    from tests.payments.fake_stripe import WEBHOOK_SECRET, sign

    return sign(payload, secret or WEBHOOK_SECRET, timestamp)


def test_success_activates_once_and_records_the_sale_with_its_fee(
    client: TestClient, stripe_fake: FakeStripe, bought: dict[str, Any]
) -> None:
    intent = _pay(stripe_fake, bought["payment_intent_id"])
    payload = stripe_fake.event("payment_intent.succeeded", intent)

    first = deliver(client, payload)
    again = deliver(client, payload)

    assert (first.status_code, first.json()["status"]) == (200, "handled")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    sold = ticket(bought["ticket"]["id"])
    assert sold.state == "active"
    assert sold.start_by is not None
    assert sold.paid_at is not None
    assert (sold.start_by - sold.paid_at).days == 30
    # The fee comes from the charge's balance transaction, in the settlement currency.
    assert ledger(sold.id) == [("sale", 1299, "USD", 68)]
    assert count(PaymentEvent) == 1


def test_refund_before_success_ends_refunded(
    client: TestClient, stripe_fake: FakeStripe, bought: dict[str, Any]
) -> None:
    intent = _pay(stripe_fake, bought["payment_intent_id"])
    refund = stripe_fake.handle("POST", "/v1/refunds", {}, {"payment_intent": intent["id"]}, AUTH)[
        1
    ]
    succeeded = stripe_fake.event("payment_intent.succeeded", intent)
    refunded = stripe_fake.event("refund.created", refund)

    assert deliver(client, refunded).json()["status"] == "handled"
    assert ticket(bought["ticket"]["id"]).state == "refunded"
    assert deliver(client, succeeded).json()["status"] == "handled"

    final = ticket(bought["ticket"]["id"])
    assert final.state == "refunded"
    assert final.revoked_at is not None
    entries = ledger(final.id)
    assert sorted(e[:3] for e in entries) == [("refund", -1299, "USD"), ("sale", 1299, "USD")]
    assert sum(e[1] for e in entries) == 0


def test_charge_refunded_without_embedded_refunds_asks_stripe_for_them(
    client: TestClient, stripe_fake: FakeStripe, bought: dict[str, Any]
) -> None:
    intent = _pay(stripe_fake, bought["payment_intent_id"])
    deliver(client, stripe_fake.event("payment_intent.succeeded", intent))
    from payments.providers import get_provider

    get_provider().refund(intent["id"], amount_minor=None, idempotency_key="refund-1")
    charge = dict(stripe_fake.charges[intent["latest_charge"]])  # no "refunds" list, as today
    charged = stripe_fake.event("charge.refunded", charge)
    assert deliver(client, charged).json()["status"] == "handled"
    # Stripe also sends refund.created for the same refund: it must not count twice.
    refund = next(iter(stripe_fake.refunds.values()))
    assert (
        deliver(client, stripe_fake.event("refund.created", refund)).json()["status"] == "handled"
    )

    assert ticket(bought["ticket"]["id"]).state == "refunded"
    assert [e[:2] for e in ledger(bought["ticket"]["id"])] == [("sale", 1299), ("refund", -1299)]


def test_partial_refund_keeps_the_ticket(
    client: TestClient, stripe_fake: FakeStripe, bought: dict[str, Any]
) -> None:
    intent = _pay(stripe_fake, bought["payment_intent_id"])
    deliver(client, stripe_fake.event("payment_intent.succeeded", intent))
    refund = stripe_fake.handle(
        "POST", "/v1/refunds", {}, {"payment_intent": intent["id"], "amount": "300"}, AUTH
    )[1]
    deliver(client, stripe_fake.event("refund.created", refund))
    assert ticket(bought["ticket"]["id"]).state == "active"
    assert [e[:2] for e in ledger(bought["ticket"]["id"])] == [("sale", 1299), ("refund", -300)]


def test_decline_then_success_with_another_card_activates(
    client: TestClient, stripe_fake: FakeStripe, bought: dict[str, Any]
) -> None:
    declined = _pay(stripe_fake, bought["payment_intent_id"], "pm_card_chargeDeclined")
    deliver(client, stripe_fake.event("payment_intent.payment_failed", declined))
    failed = ticket(bought["ticket"]["id"])
    assert (failed.state, failed.failure_code) == ("failed", "generic_decline")

    intent = _pay(stripe_fake, bought["payment_intent_id"])
    deliver(client, stripe_fake.event("payment_intent.succeeded", intent))
    # A late copy of the old failure must not undo the success.
    deliver(client, stripe_fake.event("payment_intent.payment_failed", declined))
    assert ticket(bought["ticket"]["id"]).state == "active"


def test_dispute_revokes_and_records_a_chargeback_and_a_won_dispute_reinstates(
    client: TestClient, stripe_fake: FakeStripe, bought: dict[str, Any]
) -> None:
    intent = _pay(stripe_fake, bought["payment_intent_id"])
    deliver(client, stripe_fake.event("payment_intent.succeeded", intent))
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "amount": 1299,
        "currency": "usd",
        "charge": intent["latest_charge"],
        "payment_intent": intent["id"],
        "status": "needs_response",
    }
    deliver(client, stripe_fake.event("charge.dispute.created", dispute))
    deliver(client, stripe_fake.event("charge.dispute.funds_withdrawn", dispute))
    assert ticket(bought["ticket"]["id"]).state == "disputed"
    listing = client.get(
        f"/v1/me/tickets/{bought['ticket']['id']}",
        headers=_viewer_headers(),
    )
    assert listing.json()["state"] == "disputed"
    assert listing.json()["remaining_seconds"] is None

    won = dispute | {"status": "won"}
    deliver(client, stripe_fake.event("charge.dispute.funds_reinstated", won))
    deliver(client, stripe_fake.event("charge.dispute.closed", won))
    assert ticket(bought["ticket"]["id"]).state == "active"
    assert [e[:2] for e in ledger(bought["ticket"]["id"])] == [
        ("sale", 1299),
        ("chargeback", -1299),
        ("chargeback_reversal", 1299),
    ]


def _viewer_headers() -> dict[str, str]:
    from accounts import repository
    from core.db import unit_of_work
    from tests.helpers import auth_header

    with unit_of_work() as session:
        user = repository.get_user_by_email(session, "ana@example.com")
        assert user is not None
        return auth_header(user)


def test_events_about_unknown_objects_are_recorded_not_crashed_on(
    client: TestClient, stripe_fake: FakeStripe
) -> None:
    stranger = {"id": "pi_not_ours", "object": "payment_intent", "amount": 500, "currency": "usd"}
    response = deliver(client, stripe_fake.event("payment_intent.succeeded", stranger))
    other_type = deliver(client, stripe_fake.event("customer.created", {"id": "cus_x"}))

    assert (response.status_code, response.json()["status"]) == (200, "ignored")
    assert other_type.json()["status"] == "ignored"
    assert count(PaymentEvent) == 2
    assert ledger() == []


def test_stripe_webhooks_need_a_configured_secret(client: TestClient) -> None:
    # The embedded default (sandbox) has no Stripe webhook secret.
    response = client.post("/v1/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "x"})
    assert response.json()["code"] == "payment_provider_not_configured"
    assert count(PaymentEvent) == 0
