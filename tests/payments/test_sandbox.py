"""The embedded default: the whole journey with test cards and no Stripe account."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import Mode, get_settings
from payments.models import PaymentEvent
from payments.providers import SandboxProvider, sign_payload
from tests.helpers import auth_header, create_licensed_title, create_studio, create_user
from tests.payments.support import buy, count, ledger, ticket

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def viewer() -> Any:
    return create_user("ana@example.com")


@pytest.fixture
def sheet(client: TestClient, viewer: Any) -> dict[str, Any]:
    film = create_licensed_title(create_studio().id)
    response = buy(client, viewer, film.id)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["provider"] == "sandbox"
    assert body["client_secret"].startswith(body["payment_intent_id"] + "_secret_")
    return body


def _confirm(client: TestClient, viewer: Any, sheet: dict[str, Any], card: str) -> Any:
    return client.post(
        f"/v1/sandbox/payments/{sheet['payment_intent_id']}/confirm",
        json={"payment_method": card},
        headers=auth_header(viewer),
    )


@pytest.mark.parametrize("card", ["pm_card_visa", "4242 4242 4242 4242"])
def test_success_card_activates_the_ticket(
    client: TestClient, viewer: Any, sheet: dict[str, Any], card: str
) -> None:
    response = _confirm(client, viewer, sheet, card)
    assert response.status_code == 200, response.text
    assert [e["type"] for e in response.json()["events"]] == ["payment_intent.succeeded"]
    assert response.json()["ticket"]["state"] == "active"
    assert response.json()["ticket"]["remaining_seconds"] > 29 * 24 * 3600
    assert ledger(sheet["ticket"]["id"]) == [("sale", 1299, "USD", 68)]
    # Confirming again redelivers the same events: nothing is counted twice.
    again = _confirm(client, viewer, sheet, card)
    assert [e["status"] for e in again.json()["events"]] == ["duplicate"]
    assert len(ledger()) == 1


def test_declined_card_fails_the_purchase(
    client: TestClient, viewer: Any, sheet: dict[str, Any]
) -> None:
    response = _confirm(client, viewer, sheet, "4000000000000002")
    assert response.json()["ticket"]["state"] == "failed"
    assert response.json()["ticket"]["failure_code"] == "generic_decline"
    assert ledger() == []
    # The PaymentSheet lets the viewer try another card on the same payment.
    assert _confirm(client, viewer, sheet, "pm_card_visa").json()["ticket"]["state"] == "active"


def test_refund_card_succeeds_then_refunds(
    client: TestClient, viewer: Any, sheet: dict[str, Any]
) -> None:
    response = _confirm(client, viewer, sheet, "pm_card_refund")
    assert [e["type"] for e in response.json()["events"]] == [
        "payment_intent.succeeded",
        "charge.refunded",
    ]
    assert response.json()["ticket"]["state"] == "refunded"
    assert [e[:2] for e in ledger()] == [("sale", 1299), ("refund", -1299)]


def test_dispute_card_ends_disputed_with_a_chargeback(
    client: TestClient, viewer: Any, sheet: dict[str, Any]
) -> None:
    response = _confirm(client, viewer, sheet, "4000000000000259")
    assert response.json()["ticket"]["state"] == "disputed"
    assert [e[:2] for e in ledger()] == [("sale", 1299), ("chargeback", -1299)]


def test_unknown_card_and_someone_elses_payment_are_refused(
    client: TestClient, viewer: Any, sheet: dict[str, Any]
) -> None:
    unknown = _confirm(client, viewer, sheet, "4111111111111112")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "sandbox_card_unknown")
    other = create_user("bo@example.com")
    stolen = _confirm(client, other, sheet, "pm_card_visa")
    assert (stolen.status_code, stolen.json()["code"]) == (404, "payment_not_found")
    assert ticket(sheet["ticket"]["id"]).state == "pending"


def test_sandbox_webhook_endpoint_verifies_like_stripe(
    client: TestClient, sheet: dict[str, Any]
) -> None:
    sandbox = SandboxProvider(get_settings())
    event = {
        "id": "evt_manual_1",
        "type": "payment_intent.succeeded",
        "created": 1_800_000_000,
        "data": {
            "object": {
                "id": sheet["payment_intent_id"],
                "amount": 1299,
                "amount_received": 1299,
                "currency": "usd",
            }
        },
    }
    payload = json.dumps(event).encode()
    forged = client.post(
        "/v1/webhooks/sandbox",
        content=payload,
        headers={"Stripe-Signature": sign_payload(payload, "whsec_guess")},
    )
    assert (forged.status_code, forged.json()["code"]) == (400, "webhook_signature_invalid")
    assert count(PaymentEvent) == 0
    good = client.post(
        "/v1/webhooks/sandbox",
        content=payload,
        headers={"Stripe-Signature": sign_payload(payload, sandbox.webhook_secret)},
    )
    assert good.json()["status"] == "handled"
    assert ticket(sheet["ticket"]["id"]).state == "active"


def test_sandbox_is_refused_in_production() -> None:
    from pydantic import ValidationError

    from core.settings import Settings

    with pytest.raises(ValidationError, match="sandbox is refused in production"):
        Settings(mode=Mode.production)
