"""The review queue, through the real Stripe SDK and the loopback fake Stripe: a correctly
signed payment that does not match its order never activates a ticket and books nothing
until finance decides."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from accounts.models import Role
from core.db import session_factory, unit_of_work
from payments.models import PaymentEvent
from tests.helpers import auth_header, create_licensed_title, create_studio, create_user
from tests.payments.fake_stripe import API_KEY, FakeStripe
from tests.payments.support import buy, count, deliver, ledger, notes, review_of, run_action_jobs
from tests.payments.support import ticket as ticket_row
from tickets import refunds

pytestmark = pytest.mark.usefixtures("db")
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def _finance(email: str = "fin@example.com") -> dict[str, str]:
    return auth_header(create_user(email, Role.finance))


def _bought(client: TestClient) -> dict[str, Any]:
    film = create_licensed_title(create_studio().id)
    response = buy(client, create_user("ana@example.com"), film.id)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _pay(fake: FakeStripe, intent_id: str, amount: int, currency: str) -> dict[str, Any]:
    """The PaymentIntent is paid at ``amount`` ``currency``, whatever was ordered (its amount
    changed at Stripe, as in the 1 JPY report)."""
    fake.intents[intent_id] |= {"amount": amount, "currency": currency}
    return fake.handle(
        "POST", f"/v1/payment_intents/{intent_id}/confirm", {}, {"payment_method": "x"}, AUTH
    )[1]


@pytest.fixture
def in_review(client: TestClient, stripe_fake: FakeStripe) -> dict[str, Any]:
    """A $12.99 ticket paid with a correctly signed 1 JPY payment_intent.succeeded."""
    bought = _bought(client)
    intent = _pay(stripe_fake, bought["payment_intent_id"], 1, "jpy")
    payload = stripe_fake.event("payment_intent.succeeded", intent)
    first = deliver(client, payload)
    assert first.json()["status"] == "handled"
    assert deliver(client, payload).json()["status"] == "duplicate"
    return {"ticket_id": bought["ticket"]["id"], "intent": intent}


def test_one_yen_for_a_12_99_ticket_goes_to_review_and_books_nothing(
    client: TestClient, in_review: dict[str, Any]
) -> None:
    held = ticket_row(in_review["ticket_id"])
    assert held.state == "in_review"
    assert held.paid_at is None
    assert ledger() == []
    assert count(PaymentEvent) == 1

    listing = client.get("/v1/finance/payment-reviews?status=open", headers=_finance())
    assert listing.status_code == 200
    (item,) = listing.json()["items"]
    assert item["ticket_id"] == in_review["ticket_id"]
    assert (item["expected_minor"], item["expected_currency"]) == (1299, "USD")
    assert (item["received_minor"], item["received_currency"]) == (1, "JPY")
    assert item["status"] == "open"

    viewer = client.get(
        f"/v1/me/tickets/{in_review['ticket_id']}",
        headers=auth_header(_user("ana@example.com")),
    )
    assert viewer.json()["state"] == "in_review"
    assert viewer.json()["remaining_seconds"] is None


def test_accept_books_the_amount_received_with_a_note_and_activates_once(
    client: TestClient, in_review: dict[str, Any]
) -> None:
    review = review_of(in_review["ticket_id"])
    ana, bea = _finance(), _finance("bea@example.com")
    accepted = client.post(
        f"/v1/finance/payment-reviews/{review.id}/accept",
        json={"reason": "customer support confirmed the yen price"},
        headers=ana,
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["kind"] == "review_accept"
    assert accepted.json()["provider_reference"] == in_review["intent"]["id"]

    again = client.post(
        f"/v1/finance/payment-reviews/{review.id}/refund", json={"reason": "no!"}, headers=bea
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["code"] == "review_already_decided"

    active = ticket_row(in_review["ticket_id"])
    assert active.state == "active"
    assert active.start_by is not None
    assert [e[:3] for e in ledger(active.id)] == [("sale", 1, "JPY")]
    assert notes(active.id) == ["accepted from review: paid 1 JPY for a ticket priced 1299 USD"]
    assert review_of(active.id).status == "accepted"
    trail = client.get(f"/v1/finance/tickets/{active.id}/payment-actions", headers=ana).json()
    assert [(a["kind"], a["status"], a["reason"]) for a in trail["items"]] == [
        ("review_accept", "succeeded", "customer support confirmed the yen price")
    ]


def test_refund_from_review_refunds_once_and_books_nothing_net(
    client: TestClient, stripe_fake: FakeStripe, in_review: dict[str, Any]
) -> None:
    review = review_of(in_review["ticket_id"])
    decided = client.post(
        f"/v1/finance/payment-reviews/{review.id}/refund",
        json={"reason": "wrong currency; send it back"},
        headers=_finance(),
    )
    assert decided.status_code == 202, decided.text
    assert decided.json()["status"] == "requested"
    assert review_of(in_review["ticket_id"]).status == "refunding"
    assert ledger() == []  # nothing before the provider says the money went back

    assert run_action_jobs() == ["done"]
    assert run_action_jobs() == []
    (refund,) = stripe_fake.refunds.values()
    assert (refund["amount"], refund["currency"]) == (1, "jpy")
    action = client.get(
        f"/v1/finance/payment-actions/{decided.json()['id']}", headers=_finance("b@example.com")
    ).json()
    assert (action["status"], action["provider_reference"]) == ("succeeded", refund["id"])

    # Stripe's refund event books the sale with its refund: net zero, and never the
    # negative row alone. Redelivered, it changes nothing.
    payload = stripe_fake.event("refund.created", refund)
    assert deliver(client, payload).json()["status"] == "handled"
    assert deliver(client, payload).json()["status"] == "duplicate"
    entries = ledger(in_review["ticket_id"])
    assert [e[:3] for e in entries] == [("sale", 1, "JPY"), ("refund", -1, "JPY")]
    assert sum(e[1] for e in entries) == 0
    assert ticket_row(in_review["ticket_id"]).state == "refunded"
    assert review_of(in_review["ticket_id"]).status == "refunded"
    # Stripe also reports the same refund on the charge: counted once.
    charge = dict(stripe_fake.charges[in_review["intent"]["latest_charge"]])
    assert deliver(client, stripe_fake.event("charge.refunded", charge)).is_success
    assert ledger(in_review["ticket_id"]) == entries


def test_a_crash_between_the_provider_call_and_commit_never_refunds_twice(
    client: TestClient, stripe_fake: FakeStripe, in_review: dict[str, Any]
) -> None:
    review = review_of(in_review["ticket_id"])
    decided = client.post(
        f"/v1/finance/payment-reviews/{review.id}/refund",
        json={"reason": "wrong currency"},
        headers=_finance(),
    )
    action_id = decided.json()["id"]

    # The first attempt reaches Stripe, then dies before its transaction commits.
    session = session_factory()()
    try:
        refunds.carry_out(session, action_id)
    finally:
        session.rollback()
        session.close()
    assert len(stripe_fake.refunds) == 1
    assert ledger() == []

    assert run_action_jobs() == ["done"]  # the job runs again with the same idempotency key
    assert stripe_fake.count("POST", "/v1/refunds") == 2
    assert len(stripe_fake.refunds) == 1  # Stripe replayed the first refund
    (refund,) = stripe_fake.refunds.values()
    assert (
        client.get(
            f"/v1/finance/payment-actions/{action_id}", headers=_finance("c@example.com")
        ).json()["provider_reference"]
        == refund["id"]
    )


def test_refunds_and_disputes_reported_while_in_review_wait_for_the_sale(
    client: TestClient, stripe_fake: FakeStripe
) -> None:
    bought = _bought(client)
    intent = _pay(stripe_fake, bought["payment_intent_id"], 500, "usd")  # $5 of $12.99
    deliver(client, stripe_fake.event("payment_intent.succeeded", intent))
    ticket_id = bought["ticket"]["id"]
    refund = stripe_fake.handle(
        "POST", "/v1/refunds", {}, {"payment_intent": intent["id"], "amount": "200"}, AUTH
    )[1]
    payload = stripe_fake.event("refund.created", refund)
    deliver(client, payload)
    deliver(client, payload)  # redelivered: held once

    assert ledger() == []
    review = review_of(ticket_id)
    assert [(m["kind"], m["amount_minor"]) for m in review.held] == [("refund", 200)]
    assert ticket_row(ticket_id).state == "in_review"

    accepted = client.post(
        f"/v1/finance/payment-reviews/{review.id}/accept",
        json={"reason": "old price honoured"},
        headers=_finance(),
    )
    assert accepted.status_code == 201
    assert [e[:2] for e in ledger(ticket_id)] == [("sale", 500), ("refund", -200)]
    assert ticket_row(ticket_id).state == "active"  # partial refund: the ticket stays


def test_a_full_refund_at_the_provider_closes_the_review_with_nothing_net(
    client: TestClient, stripe_fake: FakeStripe, in_review: dict[str, Any]
) -> None:
    intent = in_review["intent"]
    refund = stripe_fake.handle("POST", "/v1/refunds", {}, {"payment_intent": intent["id"]}, AUTH)[
        1
    ]
    deliver(client, stripe_fake.event("refund.created", refund))

    closed = review_of(in_review["ticket_id"])
    assert (closed.status, closed.decided_by) == ("refunded", None)
    entries = ledger(in_review["ticket_id"])
    assert [e[:2] for e in entries] == [("sale", 1), ("refund", -1)]
    assert ticket_row(in_review["ticket_id"]).state == "refunded"
    late = client.post(
        f"/v1/finance/payment-reviews/{closed.id}/accept",
        json={"reason": "too late"},
        headers=_finance(),
    )
    assert late.json()["code"] == "review_already_decided"
    assert ledger(in_review["ticket_id"]) == entries


def test_a_chargeback_on_a_payment_in_review_is_booked_after_its_sale(
    client: TestClient, stripe_fake: FakeStripe, in_review: dict[str, Any]
) -> None:
    dispute = stripe_fake.open_dispute(in_review["intent"]["id"])
    deliver(client, stripe_fake.event("charge.dispute.created", dispute))
    deliver(client, stripe_fake.event("charge.dispute.funds_withdrawn", dispute))
    assert ledger() == []
    assert ticket_row(in_review["ticket_id"]).state == "disputed"
    review = review_of(in_review["ticket_id"])

    refused = client.post(
        f"/v1/finance/payment-reviews/{review.id}/refund",
        json={"reason": "send back"},
        headers=_finance(),
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "ticket_disputed")
    client.post(
        f"/v1/finance/payment-reviews/{review.id}/accept",
        json={"reason": "keep it; the bank decides"},
        headers=_finance("d@example.com"),
    )
    assert [e[:2] for e in ledger(in_review["ticket_id"])] == [("sale", 1), ("chargeback", -1)]
    assert ticket_row(in_review["ticket_id"]).state == "disputed"


@pytest.mark.parametrize("role", [Role.viewer, Role.studio])
def test_only_finance_and_admin_see_or_decide_reviews(
    client: TestClient, in_review: dict[str, Any], role: Role
) -> None:
    studio_id = create_studio("Other").id if role is Role.studio else None
    outsider = auth_header(create_user(f"{role.value}@example.com", role, studio_id))
    review = review_of(in_review["ticket_id"])
    for method, path, body in [
        ("GET", "/v1/finance/payment-reviews", None),
        ("GET", f"/v1/finance/payment-reviews/{review.id}", None),
        ("POST", f"/v1/finance/payment-reviews/{review.id}/accept", {"reason": "mine"}),
        ("POST", f"/v1/finance/payment-reviews/{review.id}/refund", {"reason": "mine"}),
    ]:
        response = client.request(method, path, json=body, headers=outsider)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == "role_forbidden"
    assert review_of(in_review["ticket_id"]).status == "open"
    assert ledger() == []

    admin = auth_header(create_user("root@example.com", Role.admin))
    accepted = client.post(
        f"/v1/finance/payment-reviews/{review.id}/accept", json={"reason": "admin"}, headers=admin
    )
    assert accepted.status_code == 201


def test_review_input_is_validated_with_problem_codes(
    client: TestClient, in_review: dict[str, Any]
) -> None:
    review = review_of(in_review["ticket_id"])
    finance = _finance()
    missing = client.post(
        "/v1/finance/payment-reviews/nope/accept", json={"reason": "why"}, headers=finance
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "review_not_found")
    no_reason = client.post(
        f"/v1/finance/payment-reviews/{review.id}/accept", json={}, headers=finance
    )
    assert no_reason.status_code == 422
    assert no_reason.headers["content-type"] == "application/problem+json"
    assert review_of(in_review["ticket_id"]).status == "open"


def _user(email: str) -> Any:
    from accounts import repository

    with unit_of_work() as session:
        user = repository.get_user_by_email(session, email)
        assert user is not None
        session.expunge(user)
        return user


def test_a_refused_review_refund_puts_the_review_back_in_the_queue(
    client: TestClient, stripe_fake: FakeStripe, in_review: dict[str, Any]
) -> None:
    review = review_of(in_review["ticket_id"])
    # Someone refunded in the Stripe Dashboard; its event has not arrived yet.
    stripe_fake.handle(
        "POST", "/v1/refunds", {}, {"payment_intent": in_review["intent"]["id"]}, AUTH
    )
    client.post(
        f"/v1/finance/payment-reviews/{review.id}/refund",
        json={"reason": "send back"},
        headers=_finance(),
    )
    assert run_action_jobs() == ["failed"]
    reopened = review_of(in_review["ticket_id"])
    assert reopened.status == "open"
    assert reopened.reason is not None
    assert "payment_provider_refused" in reopened.reason
    assert len(stripe_fake.refunds) == 1
    assert ledger() == []
