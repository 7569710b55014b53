"""App Store purchases end to end: StoreKit 2 signed transactions verified by Apple's own
library against a certificate chain the tests made, App Store Server Notifications V2, and
the App Store Server API's consumption call answered from the viewing data."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from accounts.models import Role
from boxoffice import reports, rollup
from boxoffice import service as boxoffice
from boxoffice.views import record_heartbeat, record_view_started
from catalog.models import Title
from core.db import unit_of_work, utcnow
from payments.models import LedgerEntry, PaymentEvent
from tests.helpers import auth_header, create_user
from tests.payments.support import count, ledger, ticket
from tests.stores.conftest import Stores
from tests.stores.fake_stores import AppleChain, apple_notification, apple_transaction, now_ms
from tests.stores.support import buy_apple, run_jobs
from tickets import service as tickets
from tickets.models import Ticket
from tickets.store_purchases import CONSUMPTION_JOB

pytestmark = pytest.mark.usefixtures("db")


def test_a_signed_transaction_buys_one_ticket_with_the_store_commission_as_its_fee(
    client: TestClient, stores: Stores, film: Title
) -> None:
    ana = create_user("ana@example.com")
    signed = stores.chain.sign(apple_transaction("2000000123456789"))

    first = buy_apple(client, ana, signed)
    again = buy_apple(client, ana, signed)

    assert first.status_code == 201, first.text
    body = first.json()
    assert body["store"] == "app_store"
    assert body["transaction_id"] == "2000000123456789"
    assert (body["amount_minor"], body["currency"]) == (1299, "USD")
    assert body["ticket"]["state"] == "active"
    assert again.status_code == 200
    assert again.json()["ticket"]["id"] == body["ticket"]["id"]
    # Gross is the consumer price; Apple's 30 % (389.7, rounded half-to-even) is the fee.
    assert ledger(body["ticket"]["id"]) == [("sale", 1299, "USD", 390)]
    assert count(Ticket) == 1


@pytest.mark.embedded_only  # tests/stores/test_concurrency.py claims on PostgreSQL
def test_another_account_cannot_claim_the_same_transaction(
    client: TestClient, stores: Stores, film: Title
) -> None:
    signed = stores.chain.sign(apple_transaction("2000000000000001"))
    assert buy_apple(client, create_user("ana@example.com"), signed).status_code == 201

    stolen = buy_apple(client, create_user("eve@example.com"), signed)

    assert stolen.status_code == 409
    assert stolen.json()["code"] == "store_purchase_claimed"
    assert count(Ticket) == 1
    assert count(LedgerEntry) == 1


def _tampered(chain: AppleChain) -> str:
    header, payload, signature = chain.sign(apple_transaction("2000000000000002")).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["price"] = 1
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


BAD: dict[str, tuple[Any, int, str]] = {
    "tampered payload": (_tampered, 422, "store_transaction_invalid"),
    "signed by a chain Apple never issued": (
        lambda chain: AppleChain.make("Mallory").sign(apple_transaction("2000000000000003")),
        422,
        "store_transaction_invalid",
    ),
    "another app's bundle id": (
        lambda chain: chain.sign(apple_transaction("2000000000000004", bundle_id="com.other")),
        422,
        "store_app_mismatch",
    ),
    "the production environment": (
        lambda chain: chain.sign(apple_transaction("2000000000000005", environment="Production")),
        422,
        "store_environment_mismatch",
    ),
    "a price point that does not match": (
        lambda chain: chain.sign(apple_transaction("2000000000000006", price_milli=9990)),
        409,
        "store_price_mismatch",
    ),
    "a product id not configured for the title": (
        lambda chain: chain.sign(
            apple_transaction("2000000000000007", product_id="film.something_else")
        ),
        422,
        "store_product_unknown",
    ),
    "a product configured for another territory": (
        lambda chain: chain.sign(
            apple_transaction(
                "2000000000000008", storefront="CAN", currency="CAD", price_milli=12990
            )
        ),
        422,
        "store_product_unknown",
    ),
    "two tickets in one transaction": (
        lambda chain: chain.sign(apple_transaction("2000000000000016", quantity=2)),
        422,
        "store_quantity_unsupported",
    ),
    "a transaction already refunded": (
        lambda chain: chain.sign(apple_transaction("2000000000000009", revoked_ms=now_ms())),
        409,
        "store_purchase_revoked",
    ),
}


@pytest.mark.embedded_only  # verification and refusal do not depend on the database
def test_bad_transactions_are_refused_with_a_stable_code_and_leave_nothing(
    client: TestClient, stores: Stores, film: Title
) -> None:
    ana = create_user("ana@example.com")
    for case, (make, status, code) in BAD.items():
        answer = buy_apple(client, ana, make(stores.chain))

        assert (answer.status_code, answer.json()["code"]) == (status, code), case
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert count(Ticket) == 0, case
        assert count(LedgerEntry) == 0, case


def _bought(client: TestClient, stores: Stores, transaction_id: str) -> tuple[str, str]:
    signed = stores.chain.sign(apple_transaction(transaction_id))
    answer = buy_apple(client, create_user(f"{transaction_id}@example.com"), signed)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["ticket"]["id"]), signed


def _notify(client: TestClient, body: bytes) -> Any:
    return client.post(
        "/v1/webhooks/app-store", content=body, headers={"Content-Type": "application/json"}
    )


def test_a_refund_notification_books_once_and_revokes_playback(
    client: TestClient, stores: Stores, film: Title
) -> None:
    ticket_id, _ = _bought(client, stores, "2000000000000010")
    refunded = stores.chain.sign(apple_transaction("2000000000000010", revoked_ms=now_ms()))
    refund = apple_notification(stores.chain, "REFUND", refunded, notification_id="n-refund-1")

    first = _notify(client, refund)
    again = _notify(client, refund)
    # Apple may also revoke the same transaction: the refund is on the ledger already.
    revoke = _notify(client, apple_notification(stores.chain, "REVOKE", refunded))

    assert first.status_code == 200, first.text
    assert first.json() == {"notification_id": "n-refund-1", "type": "REFUND", "status": "handled"}
    assert again.json()["status"] == "duplicate"
    assert revoke.json()["status"] == "handled"
    # The price goes back, and so does Apple's commission: net zero, fees zero.
    assert ledger(ticket_id) == [("sale", 1299, "USD", 390), ("refund", -1299, "USD", -390)]
    revoked = ticket(ticket_id)
    assert revoked.state.value == "refunded"
    assert not tickets.is_watchable(revoked, utcnow())


@pytest.mark.embedded_only  # the refund itself is tested on both backends
def test_refunded_store_ticket_cannot_start_playback(
    client: TestClient, stores: Stores, film: Title
) -> None:
    ana = create_user("ana@example.com")
    signed = stores.chain.sign(apple_transaction("2000000000000011"))
    ticket_id = buy_apple(client, ana, signed).json()["ticket"]["id"]
    refunded = stores.chain.sign(apple_transaction("2000000000000011", revoked_ms=now_ms()))
    assert _notify(client, apple_notification(stores.chain, "REFUND", refunded)).status_code == 200

    start = client.post(
        "/v1/playback/sessions", json={"ticket_id": ticket_id}, headers=auth_header(ana)
    )

    assert start.status_code in (403, 409), start.text
    assert start.json()["code"] == "ticket_refunded"  # what a Stripe refund answers


BAD_NOTIFICATIONS: dict[str, tuple[Any, str]] = {
    "tampered": (
        lambda chain, signed: json.dumps(
            {
                "signedPayload": json.loads(apple_notification(chain, "REFUND", signed))[
                    "signedPayload"
                ][:-8]
                + "AAAAAAAA"
            }
        ).encode(),
        "store_notification_invalid",
    ),
    "signed by a chain Apple never issued": (
        lambda chain, signed: apple_notification(AppleChain.make("Mallory"), "REFUND", signed),
        "store_notification_invalid",
    ),
    "another app's": (
        lambda chain, signed: apple_notification(chain, "REFUND", signed, bundle_id="com.other"),
        "store_app_mismatch",
    ),
    "from production": (
        lambda chain, signed: apple_notification(chain, "REFUND", signed, environment="Production"),
        "store_environment_mismatch",
    ),
    "replayed after the stores' retry period": (
        lambda chain, signed: apple_notification(
            chain, "REFUND", signed, signed_ms=now_ms() - 5 * 24 * 3600 * 1000
        ),
        "store_notification_stale",
    ),
    "not a notification": (lambda chain, signed: b'{"hello": 1}', "store_notification_invalid"),
}


@pytest.mark.embedded_only  # verification and refusal do not depend on the database
def test_bad_notifications_are_refused_and_change_nothing(
    client: TestClient, stores: Stores, film: Title
) -> None:
    ticket_id, _ = _bought(client, stores, "2000000000000012")
    refunded = stores.chain.sign(apple_transaction("2000000000000012", revoked_ms=now_ms()))
    for case, (make, code) in BAD_NOTIFICATIONS.items():
        answer = _notify(client, make(stores.chain, refunded))

        assert (answer.status_code, answer.json()["code"]) == (400, code), case
        assert ledger(ticket_id) == [("sale", 1299, "USD", 390)], case
        assert ticket(ticket_id).state.value == "active", case
        assert count(PaymentEvent) == 0, case


def test_a_consumption_request_is_answered_from_the_viewing_data(
    client: TestClient, stores: Stores, film: Title
) -> None:
    ticket_id, signed = _bought(client, stores, "2000000000000013")
    with unit_of_work() as session:
        found = session.get_one(Ticket, ticket_id)
        found.first_played_at = utcnow() - timedelta(minutes=30)
        film_row = session.get_one(Title, film.id)
        film_row.runtime_seconds = 6000
    # The viewer watched 15 minutes of a 100-minute film: a qualified view (10 minutes).
    _watch(ticket_id, film.id, seconds=900)

    answer = _notify(
        client,
        apple_notification(
            stores.chain, "CONSUMPTION_REQUEST", signed, consumption_reason="UNINTENDED_PURCHASE"
        ),
    )
    outcomes = run_jobs(CONSUMPTION_JOB)

    assert answer.json()["status"] == "handled"
    assert outcomes == ["done"]
    assert len(stores.fake.consumption) == 1
    transaction_id, sent = stores.fake.consumption[0]
    assert transaction_id == "2000000000000013"
    assert sent == {
        "customerConsented": True,
        "sampleContentProvided": False,
        "deliveryStatus": "DELIVERED",
        "consumptionPercentage": 15000,
        "refundPreference": "DECLINE",
    }
    assert ledger(ticket_id) == [("sale", 1299, "USD", 390)]


def _watch(ticket_id: str, title_id: str, *, seconds: int) -> None:
    """Heartbeats of one session covering ``seconds`` of the film, a minute at a time."""
    start = utcnow() - timedelta(seconds=seconds + 60)
    with unit_of_work() as session:
        found = session.get_one(Ticket, ticket_id)
        record_view_started(
            session,
            playback_session_id="s" * 32,
            ticket_id=ticket_id,
            viewer_id=found.viewer_id,
            title_id=title_id,
            territory="US",
            at=start,
        )
        for n in range(1, seconds // 60 + 1):
            record_heartbeat(
                session,
                playback_session_id="s" * 32,
                ticket_id=ticket_id,
                viewer_id=found.viewer_id,
                title_id=title_id,
                territory="US",
                seq=n,
                watched_seconds=60.0,
                position_seconds=60.0 * n,
                at=start + timedelta(seconds=60 * n),
                runtime_seconds=6000,
            )


def test_box_office_reports_gross_and_the_payable_after_commission(
    client: TestClient, stores: Stores, film: Title, configure: Any
) -> None:
    configure(boxoffice_reporting_currencies="USD")
    _bought(client, stores, "2000000000000014")
    day = utcnow().date()
    days = (day - timedelta(days=1), day, day + timedelta(days=1))
    with unit_of_work() as session:
        # USD needs a rate of the day too (ECB's reference rates, per euro).
        fx = "Date,USD\n" + "".join(f"{d.isoformat()},1.10\n" for d in days)
        boxoffice.load_rates(session, fx, source="test")
        for d in days:
            rollup.rollup_day(session, d)
        report = reports.build_report(
            session,
            reports.ReportQuery(day - timedelta(days=1), day + timedelta(days=1)),
        )

    totals = report.totals
    assert totals.tickets_sold == 1
    assert [(m.currency, m.gross_minor, m.fees_minor) for m in totals.local] == [("USD", 1299, 390)]
    usd = totals.converted["USD"]
    assert (usd.gross_minor, usd.fees_minor, usd.net_minor) == (1299, 390, 909)
    # 70 % of the net after Apple's commission: 636.3, rounded half-to-even.
    assert usd.studio_payable_minor == 636


@pytest.mark.embedded_only  # a rule checked before any SQL differs
def test_staff_cannot_refund_a_store_ticket_the_store_holds_the_money(
    client: TestClient, stores: Stores, film: Title
) -> None:
    ticket_id, _ = _bought(client, stores, "2000000000000015")
    finance = auth_header(create_user("finance@example.com", Role.finance))

    answer = client.post(
        f"/v1/finance/tickets/{ticket_id}/refunds",
        json={"reason": "viewer asked us"},
        headers=finance | {"Idempotency-Key": "refund-store-0001"},
    )

    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "store_refund_only"
    assert ledger(ticket_id) == [("sale", 1299, "USD", 390)]


def test_a_refund_that_arrives_before_the_purchase_refuses_the_purchase(
    client: TestClient, stores: Stores, film: Title
) -> None:
    # The app crashed before sending the purchase; Apple refunded it meanwhile. The app now
    # sends the transaction it kept from before the refund (no revocation date in it).
    kept = stores.chain.sign(apple_transaction("2000000000000017"))
    refunded = stores.chain.sign(apple_transaction("2000000000000017", revoked_ms=now_ms()))
    early = _notify(client, apple_notification(stores.chain, "REFUND", refunded))

    late = buy_apple(client, create_user("ana@example.com"), kept)

    assert early.json()["status"] == "ignored"
    assert late.status_code == 409
    assert late.json()["code"] == "store_purchase_revoked"
    assert count(Ticket) == 0
    assert count(LedgerEntry) == 0
