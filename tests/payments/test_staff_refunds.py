"""Staff refunds (full and partial) and dispute evidence, through the real Stripe SDK and
the loopback fake Stripe: recorded with who, when, why and the provider's reference; the
ledger rows still come from Stripe's events, so reconciliation keeps matching."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from accounts.models import Role
from boxoffice.reconciliation import reconcile
from core.db import unit_of_work
from tests.helpers import auth_header, create_licensed_title, create_studio, create_user
from tests.payments.fake_stripe import API_KEY, FakeStripe
from tests.payments.support import buy, deliver, ledger, run_action_jobs
from tests.payments.support import ticket as ticket_row

pytestmark = pytest.mark.usefixtures("db")
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def paid(client: TestClient, stripe_fake: FakeStripe) -> dict[str, Any]:
    """A $12.99 ticket, paid in full and booked."""
    film = create_licensed_title(create_studio().id)
    bought = buy(client, create_user("ana@example.com"), film.id).json()
    intent = stripe_fake.handle(
        "POST",
        f"/v1/payment_intents/{bought['payment_intent_id']}/confirm",
        {},
        {"payment_method": "pm_card_visa"},
        AUTH,
    )[1]
    assert deliver(client, stripe_fake.event("payment_intent.succeeded", intent)).is_success
    return {"ticket_id": bought["ticket"]["id"], "intent": intent}


@pytest.fixture
def finance() -> dict[str, str]:
    return auth_header(create_user("fin@example.com", Role.finance))


def _refund(
    client: TestClient, ticket_id: str, headers: dict[str, str], key: str, **body: Any
) -> Any:
    return client.post(
        f"/v1/finance/tickets/{ticket_id}/refunds",
        json={"reason": "film would not play on the viewer's TV", **body},
        headers=headers | {"Idempotency-Key": key},
    )


def _deliver_refunds(client: TestClient, fake: FakeStripe) -> None:
    for refund in list(fake.refunds.values()):
        deliver(client, fake.event("refund.created", refund))


def test_partial_then_full_staff_refund(
    client: TestClient, stripe_fake: FakeStripe, paid: dict[str, Any], finance: dict[str, str]
) -> None:
    ticket_id = paid["ticket_id"]
    partial = _refund(client, ticket_id, finance, "refund-0001", amount_minor=300)
    assert partial.status_code == 202, partial.text
    repeat = _refund(client, ticket_id, finance, "refund-0001", amount_minor=300)
    assert (repeat.status_code, repeat.json()["id"]) == (200, partial.json()["id"])
    other_body = _refund(client, ticket_id, finance, "refund-0001", amount_minor=301)
    assert (other_body.status_code, other_body.json()["code"]) == (409, "idempotency_key_reused")

    assert run_action_jobs() == ["done"]
    (first,) = stripe_fake.refunds.values()
    assert first["amount"] == 300
    _deliver_refunds(client, stripe_fake)
    assert [e[:2] for e in ledger(ticket_id)] == [("sale", 1299), ("refund", -300)]
    assert ticket_row(ticket_id).state == "active"  # a partial refund keeps the ticket

    too_much = _refund(client, ticket_id, finance, "refund-0002", amount_minor=1000)
    assert (too_much.status_code, too_much.json()["code"]) == (409, "refund_exceeds_payment")
    assert too_much.json()["refundable_minor"] == 999

    rest = _refund(client, ticket_id, finance, "refund-0003")  # no amount: all that is left
    assert rest.json()["amount_minor"] == 999
    assert run_action_jobs() == ["done"]
    _deliver_refunds(client, stripe_fake)
    assert [e[:2] for e in ledger(ticket_id)] == [
        ("sale", 1299),
        ("refund", -300),
        ("refund", -999),
    ]
    assert ticket_row(ticket_id).state == "refunded"
    nothing = _refund(client, ticket_id, finance, "refund-0004")
    assert (nothing.status_code, nothing.json()["code"]) == (409, "nothing_to_refund")

    trail = client.get(f"/v1/finance/tickets/{ticket_id}/payment-actions", headers=finance)
    items = trail.json()["items"]
    assert [(a["kind"], a["amount_minor"], a["status"]) for a in items] == [
        ("refund", 300, "succeeded"),
        ("refund", 999, "succeeded"),
    ]
    assert {a["provider_reference"] for a in items} == set(stripe_fake.refunds)
    assert all(a["actor_id"] and a["created_at"] and a["completed_at"] for a in items)

    # The rows came from Stripe's events: the day's ledger matches Stripe's balance.
    with unit_of_work() as session:
        result = reconcile(session, datetime.now(UTC).date(), "stripe")
    assert result.differences == []
    assert result.matched == 3


def test_two_refunds_asked_together_never_exceed_the_payment(
    client: TestClient, paid: dict[str, Any], finance: dict[str, str]
) -> None:
    bea = auth_header(create_user("bea@example.com", Role.finance))
    first = _refund(client, paid["ticket_id"], finance, "refund-a001", amount_minor=700)
    second = _refund(client, paid["ticket_id"], bea, "refund-b001", amount_minor=700)
    # The first is not confirmed by Stripe yet, but it already counts.
    assert first.status_code == 202
    assert (second.status_code, second.json()["code"]) == (409, "refund_exceeds_payment")


def test_refusals_have_codes(
    client: TestClient, stripe_fake: FakeStripe, finance: dict[str, str]
) -> None:
    film = create_licensed_title(create_studio().id)
    pending = buy(client, create_user("ana@example.com"), film.id).json()["ticket"]["id"]
    unpaid = _refund(client, pending, finance, "refund-0001")
    assert (unpaid.status_code, unpaid.json()["code"]) == (409, "ticket_not_paid")
    missing = _refund(client, "no-such-ticket", finance, "refund-0002")
    assert (missing.status_code, missing.json()["code"]) == (404, "ticket_not_found")
    bad_key = _refund(client, pending, finance, "short")
    assert bad_key.status_code == 422
    negative = _refund(client, pending, finance, "refund-0003", amount_minor=-5)
    assert negative.status_code == 422
    assert negative.headers["content-type"] == "application/problem+json"
    assert run_action_jobs() == []


@pytest.mark.parametrize("role", [Role.viewer, Role.studio])
def test_viewers_and_studios_cannot_refund_or_read_the_trail(
    client: TestClient, paid: dict[str, Any], role: Role
) -> None:
    studio_id = create_studio("Other").id if role is Role.studio else None
    outsider = auth_header(create_user(f"{role.value}@example.com", role, studio_id))
    refused = _refund(client, paid["ticket_id"], outsider, "refund-0001")
    assert (refused.status_code, refused.json()["code"]) == (403, "role_forbidden")
    trail = client.get(f"/v1/finance/tickets/{paid['ticket_id']}/payment-actions", headers=outsider)
    assert trail.status_code == 403
    evidence = client.post(
        "/v1/finance/disputes/dp_x/evidence",
        json={"evidence": {"product_description": "a film"}, "reason": "mine"},
        headers=outsider | {"Idempotency-Key": "evidence-0001"},
    )
    assert evidence.status_code == 403
    assert run_action_jobs() == []
    assert [e[0] for e in ledger()] == ["sale"]


def test_dispute_evidence_goes_to_stripe_and_is_audited(
    client: TestClient, stripe_fake: FakeStripe, paid: dict[str, Any], finance: dict[str, str]
) -> None:
    dispute = stripe_fake.open_dispute(paid["intent"]["id"])
    deliver(client, stripe_fake.event("charge.dispute.created", dispute))
    evidence = {
        "product_description": "48-hour rental of 'The Film', streamed in HD",
        "access_activity_log": "2026-12-01T20:03Z key delivered to device-1; 97 min watched",
        "customer_email_address": "ana@example.com",
    }
    headers = finance | {"Idempotency-Key": "evidence-0001"}
    body = {"evidence": evidence, "submit": True, "reason": "viewer watched the whole film"}

    sent = client.post(f"/v1/finance/disputes/{dispute['id']}/evidence", json=body, headers=headers)
    assert sent.status_code == 202, sent.text
    again = client.post(
        f"/v1/finance/disputes/{dispute['id']}/evidence", json=body, headers=headers
    )
    assert (again.status_code, again.json()["id"]) == (200, sent.json()["id"])
    assert run_action_jobs() == ["done"]

    stored = stripe_fake.disputes[dispute["id"]]
    assert stored["evidence"] == evidence
    assert stored["status"] == "under_review"
    action = client.get(f"/v1/finance/payment-actions/{sent.json()['id']}", headers=finance).json()
    assert (action["kind"], action["status"]) == ("dispute_evidence", "succeeded")
    assert action["provider_reference"] == dispute["id"]
    assert action["details"]["provider_status"] == "under_review"
    assert ticket_row(paid["ticket_id"]).state == "disputed"

    refund = _refund(client, paid["ticket_id"], finance, "refund-0009")
    assert (refund.status_code, refund.json()["code"]) == (409, "ticket_disputed")


def test_dispute_evidence_is_validated(
    client: TestClient, stripe_fake: FakeStripe, paid: dict[str, Any], finance: dict[str, str]
) -> None:
    dispute = stripe_fake.open_dispute(paid["intent"]["id"])
    deliver(client, stripe_fake.event("charge.dispute.created", dispute))

    def send(dispute_id: str, evidence: dict[str, str], key: str) -> Any:
        return client.post(
            f"/v1/finance/disputes/{dispute_id}/evidence",
            json={"evidence": evidence, "reason": "check"},
            headers=finance | {"Idempotency-Key": key},
        )

    unknown_field = send(dispute["id"], {"shipping_carrier": "none"}, "evidence-0001")
    assert (unknown_field.status_code, unknown_field.json()["code"]) == (
        422,
        "evidence_field_unknown",
    )
    empty = send(dispute["id"], {}, "evidence-0002")
    assert empty.json()["code"] == "evidence_empty"
    not_ours = send("dp_someone_else", {"product_description": "x"}, "evidence-0003")
    assert (not_ours.status_code, not_ours.json()["code"]) == (404, "dispute_not_found")
    assert run_action_jobs() == []
    assert stripe_fake.disputes[dispute["id"]]["evidence"] == {}


def test_a_refund_stripe_refuses_fails_the_action_with_its_code(
    client: TestClient, stripe_fake: FakeStripe, paid: dict[str, Any], finance: dict[str, str]
) -> None:
    # Refunded in the Dashboard meanwhile; our books do not know yet.
    stripe_fake.handle("POST", "/v1/refunds", {}, {"payment_intent": paid["intent"]["id"]}, AUTH)
    asked = _refund(client, paid["ticket_id"], finance, "refund-0001")
    assert run_action_jobs() == ["failed"]
    action = client.get(f"/v1/finance/payment-actions/{asked.json()['id']}", headers=finance)
    assert action.json()["status"] == "failed"
    assert action.json()["error_code"] == "payment_provider_refused"
    assert len(stripe_fake.refunds) == 1


def test_a_stripe_outage_is_retried_not_failed(
    client: TestClient, stripe_fake: FakeStripe, paid: dict[str, Any], finance: dict[str, str]
) -> None:
    asked = _refund(client, paid["ticket_id"], finance, "refund-0001", amount_minor=100)
    stripe_fake.fail_next = 10  # more than the SDK's own retries
    assert run_action_jobs() == ["retry"]
    action = client.get(f"/v1/finance/payment-actions/{asked.json()['id']}", headers=finance)
    assert (action.json()["status"], action.json()["error_code"]) == ("requested", None)
    assert stripe_fake.refunds == {}
    assert [e[0] for e in ledger()] == ["sale"]
