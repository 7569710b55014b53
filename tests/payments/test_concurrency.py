"""Races on real PostgreSQL through a real HTTP server: a double tap times twenty, and a
webhook delivered twenty times at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from api.app import create_app
from payments.models import LedgerEntry, PaymentEvent
from tests.helpers import (
    auth_header,
    create_licensed_title,
    create_studio,
    create_user,
    served_on_loopback,
)
from tests.payments.fake_stripe import API_KEY, FakeStripe, sign
from tests.payments.support import count, ledger, ticket
from tickets.models import Ticket

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("db")]
N = 20


@pytest.fixture
def server(stripe_fake: FakeStripe) -> Iterator[str]:
    """The API under uvicorn on loopback, so requests overlap for real (thread pool)."""
    with served_on_loopback(create_app()) as port:
        yield f"http://127.0.0.1:{port}"


def _all_at_once(call: Callable[[httpx.Client], httpx.Response]) -> list[httpx.Response]:
    barrier = threading.Barrier(N)

    def one(_: int) -> httpx.Response:
        with httpx.Client(timeout=60) as http:
            barrier.wait()  # release all twenty together
            return call(http)

    with ThreadPoolExecutor(N) as pool:
        return list(pool.map(one, range(N)))


def test_twenty_identical_purchases_make_one_payment_intent_and_one_ticket(
    server: str, stripe_fake: FakeStripe
) -> None:
    film = create_licensed_title(create_studio().id)
    ana = create_user("ana@example.com")
    headers = auth_header(ana) | {"Idempotency-Key": "double-tap-0001"}
    # A slow provider keeps the winner's transaction open while the others arrive, so they
    # must meet its uncommitted ticket row (the race), not a finished one.
    stripe_fake.slow = {"/v1/payment_intents": 0.5}

    responses = _all_at_once(
        lambda http: http.post(
            f"{server}/v1/purchases", json={"title_id": film.id}, headers=headers
        )
    )

    assert sorted(r.status_code for r in responses).count(201) == 1, [r.text for r in responses]
    assert all(r.status_code in (200, 201) for r in responses)
    assert len({r.json()["payment_intent_id"] for r in responses}) == 1
    assert len({r.json()["client_secret"] for r in responses}) == 1
    assert stripe_fake.count("POST", "/v1/payment_intents") == 1
    assert len(stripe_fake.intents) == 1
    assert len(stripe_fake.customers) == 1
    assert count(Ticket) == 1


def test_twenty_deliveries_of_one_event_activate_once_and_count_once(
    server: str, stripe_fake: FakeStripe
) -> None:
    film = create_licensed_title(create_studio().id)
    ana = create_user("ana@example.com")
    with httpx.Client() as http:
        sheet: dict[str, Any] = http.post(
            f"{server}/v1/purchases",
            json={"title_id": film.id},
            headers=auth_header(ana) | {"Idempotency-Key": "webhook-race-1"},
        ).json()
    intent = stripe_fake.handle(
        "POST",
        f"/v1/payment_intents/{sheet['payment_intent_id']}/confirm",
        {},
        {"payment_method": "pm_card_visa"},
        {"Authorization": f"Bearer {API_KEY}"},
    )[1]
    payload = stripe_fake.event("payment_intent.succeeded", intent)
    headers = {"Stripe-Signature": sign(payload), "Content-Type": "application/json"}
    stripe_fake.slow = {"/v1/balance_transactions": 0.5}  # the fee lookup holds the winner

    responses = _all_at_once(
        lambda http: http.post(f"{server}/v1/webhooks/stripe", content=payload, headers=headers)
    )

    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses.count("handled") == 1
    assert statuses.count("duplicate") == N - 1
    assert ticket(sheet["ticket"]["id"]).state == "active"
    assert ledger() == [("sale", 1299, "USD", 68)]
    assert count(LedgerEntry) == 1
    assert count(PaymentEvent) == 1
