"""Google Play purchases end to end: the Android Publisher API through Google's client library
(service-account OAuth, purchases.products.get/consume, voidedpurchases.list) and real-time
developer notifications pushed by Pub/Sub with an OIDC token verified by google-auth; all
against loopback servers speaking Google's formats."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.models import Title
from core.db import unit_of_work, utcnow
from core.outbox import enqueue
from payments.models import LedgerEntry, PaymentEvent
from tests.helpers import create_user
from tests.payments.support import count, ledger, ticket
from tests.stores.conftest import Stores
from tests.stores.fake_stores import (
    Keys,
    now_ms,
    pubsub_push,
    voided_notification,
)
from tests.stores.support import buy_google, run_jobs
from tickets import service as tickets
from tickets.models import Ticket
from tickets.store_purchases import CONSUME_JOB, VOIDED_SYNC_JOB

pytestmark = pytest.mark.usefixtures("db")


def test_a_purchase_token_buys_one_ticket_and_is_consumed_once(
    client: TestClient, stores: Stores, film: Title
) -> None:
    stores.fake.add_google_purchase("token-aaaaaaaaaa-1", "GPA.1111-2222-3333-44444")
    ana = create_user("ana@example.com")

    first = buy_google(client, ana, "token-aaaaaaaaaa-1", package_name="dev.pocketcinema.android")
    again = buy_google(client, ana, "token-aaaaaaaaaa-1")
    outcomes = run_jobs(CONSUME_JOB)

    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["store"], body["transaction_id"]) == ("google_play", "GPA.1111-2222-3333-44444")
    assert again.status_code == 200
    assert again.json()["ticket"]["id"] == body["ticket"]["id"]
    # Google's 15 % of 12.99 USD is 194.85: 195 minor units.
    assert ledger(body["ticket"]["id"]) == [("sale", 1299, "USD", 195)]
    assert outcomes == ["done"]
    assert stores.fake.consumed == ["token-aaaaaaaaaa-1"]
    assert stores.fake.count("POST", "^/token$") >= 1  # the service account signed in


BAD: dict[str, tuple[dict[str, Any], dict[str, Any], int, str]] = {
    "an unknown token": ({}, {}, 422, "store_transaction_invalid"),
    "another app's package name": (
        {"region": "US"},
        {"package_name": "com.other.app"},
        422,
        "store_app_mismatch",
    ),
    "a license tester's purchase": (
        {"purchase_type": 0},
        {},
        422,
        "store_environment_mismatch",
    ),
    "a pending purchase": ({"state": 2}, {}, 409, "store_purchase_pending"),
    "a cancelled purchase": ({"state": 1}, {}, 409, "store_purchase_revoked"),
    "a region without a configured product": (
        {"region": "CA"},
        {},
        422,
        "store_product_unknown",
    ),
}


@pytest.mark.embedded_only  # verification and refusal do not depend on the database
def test_bad_purchases_are_refused_with_a_stable_code_and_leave_nothing(
    client: TestClient, stores: Stores, film: Title
) -> None:
    ana = create_user("ana@example.com")
    for n, (case, (purchase, body, status, code)) in enumerate(BAD.items()):
        token = f"token-bbbbbbbbbb-{n}"
        if case != "an unknown token":
            stores.fake.add_google_purchase(token, f"GPA.9999-0000-1111-2222{n}", **purchase)

        answer = buy_google(client, ana, token, **body)

        assert (answer.status_code, answer.json()["code"]) == (status, code), case
        assert count(Ticket) == 0, case
        assert count(LedgerEntry) == 0, case


def _bought(client: TestClient, stores: Stores, order_id: str, token: str) -> str:
    stores.fake.add_google_purchase(token, order_id)
    answer = buy_google(client, create_user(f"{token}@example.com"), token)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["ticket"]["id"])


def _push(client: TestClient, body: bytes, token: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/v1/webhooks/google-play", content=body, headers=headers)


def test_a_voided_purchase_notification_refunds_once_and_revokes(
    client: TestClient, stores: Stores, film: Title
) -> None:
    ticket_id = _bought(client, stores, "GPA.0000-1111-2222-33333", "token-cccccccccc-1")
    body = pubsub_push(
        voided_notification("GPA.0000-1111-2222-33333", "token-cccccccccc-1"), "msg-1"
    )

    first = _push(client, body, stores.keys.pubsub_token())
    again = _push(client, body, stores.keys.pubsub_token())
    # The same refund in the Voided Purchases API (a lost push would be caught here).
    stores.fake.voided.append(
        {
            "purchaseToken": "token-cccccccccc-1",
            "orderId": "GPA.0000-1111-2222-33333",
            "voidedTimeMillis": str(now_ms()),
            "voidedSource": 1,
            "voidedReason": 1,
        }
    )
    _enqueue_sync()
    synced = run_jobs(VOIDED_SYNC_JOB)

    assert first.status_code == 200, first.text
    assert first.json() == {"notification_id": "msg-1", "type": "voided", "status": "handled"}
    assert again.json()["status"] == "duplicate"
    assert synced == ["done"]
    assert ledger(ticket_id) == [("sale", 1299, "USD", 195), ("refund", -1299, "USD", -195)]
    revoked = ticket(ticket_id)
    assert revoked.state.value == "refunded"
    assert not tickets.is_watchable(revoked, utcnow())


def _enqueue_sync() -> None:
    """What Celery beat does every hour (core.jobs.periodic)."""
    with unit_of_work() as session:
        enqueue(session, VOIDED_SYNC_JOB)


def test_the_voided_purchases_api_alone_refunds_a_purchase(
    client: TestClient, stores: Stores, film: Title
) -> None:
    ticket_id = _bought(client, stores, "GPA.5555-1111-2222-33333", "token-dddddddddd-1")
    stores.fake.voided.append(
        {
            "purchaseToken": "token-dddddddddd-1",
            "orderId": "GPA.5555-1111-2222-33333",
            "voidedTimeMillis": str(now_ms()),
        }
    )
    _enqueue_sync()

    assert run_jobs(VOIDED_SYNC_JOB) == ["done"]
    _enqueue_sync()
    assert run_jobs(VOIDED_SYNC_JOB) == ["done"]  # a second sweep adds nothing

    assert ledger(ticket_id) == [("sale", 1299, "USD", 195), ("refund", -1299, "USD", -195)]
    assert ticket(ticket_id).state.value == "refunded"


BAD_PUSHES: dict[str, tuple[Any, int, str]] = {
    "no token": (lambda keys: None, 401, "store_notification_unauthenticated"),
    "a token for another audience": (
        lambda keys: keys.pubsub_token(aud="https://elsewhere.example.com"),
        401,
        "store_notification_unauthenticated",
    ),
    "a token signed by someone else": (
        lambda keys: Keys.make().pubsub_token(),
        401,
        "store_notification_unauthenticated",
    ),
    "a token from another service account": (
        lambda keys: keys.pubsub_token(email="intruder@example.iam.gserviceaccount.com"),
        401,
        "store_notification_unauthenticated",
    ),
    "an expired token": (
        lambda keys: keys.pubsub_token(iat=1_000_000_000, exp=1_000_003_600),
        401,
        "store_notification_unauthenticated",
    ),
}


@pytest.mark.embedded_only  # verification and refusal do not depend on the database
def test_pushes_without_googles_token_or_for_another_app_are_refused(
    client: TestClient, stores: Stores, film: Title
) -> None:
    ticket_id = _bought(client, stores, "GPA.7777-1111-2222-33333", "token-eeeeeeeeee-1")
    body = pubsub_push(voided_notification("GPA.7777-1111-2222-33333", "token-eeeeeeeeee-1"))
    for case, (make, status, code) in BAD_PUSHES.items():
        answer = _push(client, body, make(stores.keys))

        assert (answer.status_code, answer.json()["code"]) == (status, code), case
        assert ledger(ticket_id) == [("sale", 1299, "USD", 195)], case
        assert count(PaymentEvent) == 0, case

    other_app = pubsub_push(
        voided_notification("GPA.7777-1111-2222-33333", "token-eeeeeeeeee-1", "com.other.app")
    )
    answer = _push(client, other_app, stores.keys.pubsub_token())
    assert (answer.status_code, answer.json()["code"]) == (400, "store_app_mismatch")
    assert ledger(ticket_id) == [("sale", 1299, "USD", 195)]
