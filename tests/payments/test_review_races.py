"""Races on both databases through a real HTTP server: a mismatched payment's webhook
delivered many times at once, finance users deciding one review together, and staff
refunds of one ticket asked together."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from accounts.models import Role
from api.app import create_app
from payments.models import PaymentAction, PaymentEvent
from tests.helpers import (
    auth_header,
    create_licensed_title,
    create_studio,
    create_user,
    served_on_loopback,
)
from tests.payments.fake_stripe import API_KEY, FakeStripe, sign
from tests.payments.support import count, ledger, review_of, run_action_jobs
from tests.payments.support import ticket as ticket_row

pytestmark = pytest.mark.usefixtures("db")
N = 8
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def server(stripe_fake: FakeStripe) -> Iterator[str]:
    """The API under uvicorn on loopback, so requests overlap for real (thread pool)."""
    with served_on_loopback(create_app()) as port:
        yield f"http://127.0.0.1:{port}"


def _all_at_once(calls: list[Callable[[httpx.Client], httpx.Response]]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(calls))

    def one(call: Callable[[httpx.Client], httpx.Response]) -> httpx.Response:
        with httpx.Client(timeout=60) as http:
            barrier.wait()  # release them together
            return call(http)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, calls))


def _delivery(server: str, event: bytes) -> Callable[[httpx.Client], httpx.Response]:
    def send(http: httpx.Client) -> httpx.Response:
        headers = {"Stripe-Signature": sign(event), "Content-Type": "application/json"}
        return http.post(f"{server}/v1/webhooks/stripe", content=event, headers=headers)

    return send


def _one_yen_ticket(server: str, fake: FakeStripe) -> tuple[str, bytes]:
    film = create_licensed_title(create_studio().id)
    ana = create_user("ana@example.com")
    with httpx.Client(timeout=60) as http:
        bought = http.post(
            f"{server}/v1/purchases",
            json={"title_id": film.id},
            headers=auth_header(ana) | {"Idempotency-Key": "race-purchase-1"},
        ).json()
    intent_id = bought["payment_intent_id"]
    fake.intents[intent_id] |= {"amount": 1, "currency": "jpy"}
    intent = fake.handle("POST", f"/v1/payment_intents/{intent_id}/confirm", {}, {}, AUTH)[1]
    return bought["ticket"]["id"], fake.event("payment_intent.succeeded", intent)


def test_concurrent_deliveries_and_decisions_count_once(
    server: str, stripe_fake: FakeStripe
) -> None:
    ticket_id, payload = _one_yen_ticket(server, stripe_fake)

    receipts = _all_at_once([_delivery(server, payload)] * N)
    assert sorted(r.json()["status"] for r in receipts) == ["duplicate"] * (N - 1) + ["handled"]
    assert count(PaymentEvent) == 1
    review = review_of(ticket_id)
    assert ledger() == []

    people = [auth_header(create_user(f"finance{i}@example.com", Role.finance)) for i in range(N)]

    def decide(i: int) -> Callable[[httpx.Client], httpx.Response]:
        verb = "accept" if i % 2 else "refund"
        return lambda http: http.post(
            f"{server}/v1/finance/payment-reviews/{review.id}/{verb}",
            json={"reason": f"decision {i}"},
            headers=people[i],
        )

    answers = _all_at_once([decide(i) for i in range(N)])
    winners = [a for a in answers if a.status_code in (201, 202)]
    assert len(winners) == 1, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a not in winners} == {"review_already_decided"}
    assert count(PaymentAction) == 1
    run_action_jobs()
    for refund in list(stripe_fake.refunds.values()):
        _all_at_once([_delivery(server, stripe_fake.event("refund.created", refund))] * N)

    if winners[0].status_code == 201:  # accepted
        assert [e[:2] for e in ledger()] == [("sale", 1)]
        assert ticket_row(ticket_id).state == "active"
        assert stripe_fake.refunds == {}
    else:  # refunded, exactly once
        assert len(stripe_fake.refunds) == 1
        assert [e[:2] for e in ledger()] == [("sale", 1), ("refund", -1)]
        assert ticket_row(ticket_id).state == "refunded"


def test_concurrent_staff_refunds_never_exceed_the_payment(
    server: str, stripe_fake: FakeStripe
) -> None:
    film = create_licensed_title(create_studio().id)
    ana = create_user("ana@example.com")
    with httpx.Client(timeout=60) as http:
        bought = http.post(
            f"{server}/v1/purchases",
            json={"title_id": film.id},
            headers=auth_header(ana) | {"Idempotency-Key": "race-purchase-2"},
        ).json()
        intent_id = bought["payment_intent_id"]
        intent = stripe_fake.handle(
            "POST", f"/v1/payment_intents/{intent_id}/confirm", {}, {}, AUTH
        )[1]
        paid = stripe_fake.event("payment_intent.succeeded", intent)
        http.post(
            f"{server}/v1/webhooks/stripe", content=paid, headers={"Stripe-Signature": sign(paid)}
        )
    people = [auth_header(create_user(f"fin{i}@example.com", Role.finance)) for i in range(N)]

    def ask(i: int) -> Callable[[httpx.Client], httpx.Response]:
        return lambda http: http.post(
            f"{server}/v1/finance/tickets/{bought['ticket']['id']}/refunds",
            json={"amount_minor": 500, "reason": f"goodwill {i}"},
            headers=people[i] | {"Idempotency-Key": f"goodwill-{i:04d}"},
        )

    answers = _all_at_once([ask(i) for i in range(N)])
    # $12.99 holds two refunds of $5.00, never a third.
    assert sorted(a.status_code for a in answers) == [202, 202] + [409] * (N - 2)
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"refund_exceeds_payment"}
    assert run_action_jobs() == ["done", "done"]
    assert sorted(r["amount"] for r in stripe_fake.refunds.values()) == [500, 500]
