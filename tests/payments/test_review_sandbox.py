"""The review queue, staff refunds and dispute evidence on the embedded default: the
sandbox refunds and records evidence, and its events go through verify, inbox, handle."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from accounts.models import Role
from boxoffice.reconciliation import reconcile
from core.db import unit_of_work
from core.settings import get_settings
from payments.models import PaymentEvent
from payments.providers import SandboxProvider
from tests.helpers import auth_header, create_licensed_title, create_studio, create_user
from tests.payments.support import buy, ledger, review_of, run_action_jobs
from tests.payments.support import ticket as ticket_row

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def viewer() -> Any:
    return create_user("ana@example.com")


@pytest.fixture
def finance() -> dict[str, str]:
    return auth_header(create_user("fin@example.com", Role.finance))


def _sheet(client: TestClient, viewer: Any) -> dict[str, Any]:
    film = create_licensed_title(create_studio().id)
    response = buy(client, viewer, film.id)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_one_yen_through_the_sandbox_refunded_from_review(
    client: TestClient, viewer: Any, finance: dict[str, str]
) -> None:
    sheet = _sheet(client, viewer)
    (succeeded,) = SandboxProvider(get_settings()).confirm(
        intent_id=sheet["payment_intent_id"],
        payment_method="pm_card_visa",
        amount_minor=1,
        currency="JPY",
        metadata={"ticket_id": sheet["ticket"]["id"]},
    )
    headers = {"Stripe-Signature": succeeded.signature, "Content-Type": "application/json"}
    for _ in range(2):  # redelivered: one review
        client.post("/v1/webhooks/sandbox", content=succeeded.payload, headers=headers)
    ticket_id = sheet["ticket"]["id"]
    assert ticket_row(ticket_id).state == "in_review"
    assert ledger() == []

    review = review_of(ticket_id)
    decided = client.post(
        f"/v1/finance/payment-reviews/{review.id}/refund",
        json={"reason": "wrong currency"},
        headers=finance,
    )
    assert decided.status_code == 202
    assert run_action_jobs() == ["done"]

    assert [e[:3] for e in ledger(ticket_id)] == [("sale", 1, "JPY"), ("refund", -1, "JPY")]
    assert ticket_row(ticket_id).state == "refunded"
    assert review_of(ticket_id).status == "refunded"
    with unit_of_work() as session:
        result = reconcile(session, datetime.now(UTC).date(), "sandbox")
    assert (result.differences, result.matched) == ([], 2)


def test_one_yen_through_the_sandbox_accepted(
    client: TestClient, viewer: Any, finance: dict[str, str]
) -> None:
    sheet = _sheet(client, viewer)
    (succeeded,) = SandboxProvider(get_settings()).confirm(
        intent_id=sheet["payment_intent_id"],
        payment_method="pm_card_visa",
        amount_minor=1,
        currency="JPY",
        metadata={},
    )
    headers = {"Stripe-Signature": succeeded.signature, "Content-Type": "application/json"}
    client.post("/v1/webhooks/sandbox", content=succeeded.payload, headers=headers)
    review = review_of(sheet["ticket"]["id"])
    accepted = client.post(
        f"/v1/finance/payment-reviews/{review.id}/accept",
        json={"reason": "keep it"},
        headers=finance,
    )
    assert accepted.status_code == 201
    assert ledger(sheet["ticket"]["id"]) == [("sale", 1, "JPY", 30)]
    assert ticket_row(sheet["ticket"]["id"]).state == "active"


def test_sandbox_staff_refunds_partial_then_full(
    client: TestClient, viewer: Any, finance: dict[str, str]
) -> None:
    sheet = _sheet(client, viewer)
    client.post(
        f"/v1/sandbox/payments/{sheet['payment_intent_id']}/confirm",
        json={"payment_method": "pm_card_visa"},
        headers=auth_header(viewer),
    )
    ticket_id = sheet["ticket"]["id"]
    for key, body in [("refund-0001", {"amount_minor": 299}), ("refund-0002", {})]:
        response = client.post(
            f"/v1/finance/tickets/{ticket_id}/refunds",
            json={"reason": "stream kept buffering", **body},
            headers=finance | {"Idempotency-Key": key},
        )
        assert response.status_code == 202, response.text
        assert run_action_jobs() == ["done"]
        if key == "refund-0001":
            assert ticket_row(ticket_id).state == "active"
    assert [e[:2] for e in ledger(ticket_id)] == [
        ("sale", 1299),
        ("refund", -299),
        ("refund", -1000),
    ]
    assert ticket_row(ticket_id).state == "refunded"
    with unit_of_work() as session:
        result = reconcile(session, datetime.now(UTC).date(), "sandbox")
    assert (result.differences, result.matched) == ([], 3)


def test_sandbox_records_dispute_evidence(
    client: TestClient, viewer: Any, finance: dict[str, str]
) -> None:
    sheet = _sheet(client, viewer)
    client.post(
        f"/v1/sandbox/payments/{sheet['payment_intent_id']}/confirm",
        json={"payment_method": "pm_card_createDispute"},
        headers=auth_header(viewer),
    )
    with unit_of_work() as session:
        dispute_id = session.scalars(
            select(PaymentEvent.object_id).where(PaymentEvent.type == "charge.dispute.created")
        ).one()
    evidence = {"product_description": "a 48-hour rental", "service_date": "2026-12-01"}
    sent = client.post(
        f"/v1/finance/disputes/{dispute_id}/evidence",
        json={"evidence": evidence, "submit": True, "reason": "watched in full"},
        headers=finance | {"Idempotency-Key": "evidence-0001"},
    )
    assert sent.status_code == 202, sent.text
    assert run_action_jobs() == ["done"]
    with unit_of_work() as session:
        recorded = session.scalars(
            select(PaymentEvent).where(PaymentEvent.type == "charge.dispute.updated")
        ).one()
        assert recorded.payload["data"]["object"]["evidence"] == evidence
        assert recorded.payload["data"]["object"]["status"] == "under_review"
        assert recorded.status == "handled"
    action = client.get(f"/v1/finance/payment-actions/{sent.json()['id']}", headers=finance)
    assert action.json()["provider_reference"] == dispute_id
    assert ticket_row(sheet["ticket"]["id"]).state == "disputed"
