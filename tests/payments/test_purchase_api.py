"""POST /v1/purchases: availability re-checked, one ticket and one PaymentIntent per key."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from accounts.models import Role
from tests.helpers import create_licensed_title, create_studio, create_user
from tests.payments.conftest import Configure
from tests.payments.fake_stripe import PUBLISHABLE_KEY, FakeStripe
from tests.payments.support import buy, count
from tickets.models import Ticket

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def film() -> Any:
    return create_licensed_title(create_studio().id)


def test_stripe_purchase_returns_what_the_payment_sheet_needs(
    client: TestClient, stripe_fake: FakeStripe, film: Any
) -> None:
    ana = create_user("ana@example.com")
    response = buy(client, ana, film.id, expected_amount_minor=1299, expected_currency="USD")

    assert response.status_code == 201, response.text
    sheet = response.json()
    intent = stripe_fake.intents[sheet["payment_intent_id"]]
    assert sheet["client_secret"] == intent["client_secret"]
    assert sheet["customer_id"] == intent["customer"]
    assert sheet["ephemeral_key_secret"].startswith("ek_test_")
    assert sheet["publishable_key"] == PUBLISHABLE_KEY
    assert (sheet["amount_minor"], sheet["currency"]) == (1299, "USD")
    assert (intent["amount"], intent["currency"]) == (1299, "usd")
    assert intent["metadata"] == {
        "ticket_id": sheet["ticket"]["id"],
        "title_id": film.id,
        "territory": "US",
        "viewer_id": ana.id,
    }
    assert sheet["ticket"]["state"] == "pending"
    assert sheet["ticket"]["remaining_seconds"] is None


def test_price_follows_the_callers_country(
    client: TestClient, stripe_fake: FakeStripe, film: Any, configure: Configure
) -> None:
    configure(geo_fallback_country="CA")
    response = buy(client, create_user("bo@example.com"), film.id)
    assert response.status_code == 201, response.text
    assert (response.json()["amount_minor"], response.json()["currency"]) == (1599, "CAD")


def test_double_tap_returns_the_same_payment_and_one_ticket(
    client: TestClient, stripe_fake: FakeStripe, film: Any
) -> None:
    ana = create_user("ana@example.com")
    first = buy(client, ana, film.id, key="tap-0123456789")
    second = buy(client, ana, film.id, key="tap-0123456789")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["payment_intent_id"] == first.json()["payment_intent_id"]
    assert second.json()["client_secret"] == first.json()["client_secret"]
    assert second.json()["ticket"]["id"] == first.json()["ticket"]["id"]
    assert stripe_fake.count("POST", "/v1/payment_intents") == 1
    assert count(Ticket) == 1


def test_another_viewer_with_the_same_key_gets_their_own_payment(
    client: TestClient, stripe_fake: FakeStripe, film: Any
) -> None:
    one = buy(client, create_user("ana@example.com"), film.id, key="same-key-123")
    two = buy(client, create_user("bo@example.com"), film.id, key="same-key-123")
    assert one.json()["payment_intent_id"] != two.json()["payment_intent_id"]
    assert count(Ticket) == 2


def test_same_key_with_another_body_is_refused(
    client: TestClient, stripe_fake: FakeStripe, film: Any
) -> None:
    other = create_licensed_title(film.studio_id, slug="another-film")
    ana = create_user("ana@example.com")
    assert buy(client, ana, film.id, key="reuse-key-1").status_code == 201
    response = buy(client, ana, other.id, key="reuse-key-1")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "idempotency_key_reused"
    assert count(Ticket) == 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "invalid_input"),
        ({"Idempotency-Key": "short"}, "invalid_input"),
        ({"Idempotency-Key": "has spaces in it"}, "invalid_input"),
    ],
)
def test_idempotency_key_is_required_and_validated(
    client: TestClient, film: Any, headers: dict[str, str], code: str
) -> None:
    from tests.helpers import auth_header

    ana = create_user("ana@example.com")
    response = client.post(
        "/v1/purchases", json={"title_id": film.id}, headers=auth_header(ana) | headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert count(Ticket) == 0


@pytest.mark.parametrize(
    ("country", "status", "code"),
    [("DE", 403, "not_licensed_in_country"), (None, 403, "country_unknown")],
)
def test_purchase_outside_the_licence_is_refused(
    client: TestClient,
    stripe_fake: FakeStripe,
    film: Any,
    configure: Configure,
    country: str | None,
    status: int,
    code: str,
) -> None:
    configure(geo_fallback_country=country)
    response = buy(client, create_user("ana@example.com"), film.id)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert count(Ticket) == 0
    assert stripe_fake.intents == {}


def test_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(
    client: TestClient, film: Any, configure: Configure
) -> None:
    configure(geo_fallback_country="DE")  # the peer (loopback) is in an unlicensed country
    from tests.helpers import auth_header

    ana = create_user("ana@example.com")
    headers = auth_header(ana) | {
        "Idempotency-Key": "spoof-key-123",
        "X-Forwarded-For": "8.8.8.8",
        "CloudFront-Viewer-Country": "US",
    }
    response = client.post("/v1/purchases", json={"title_id": film.id}, headers=headers)
    assert response.json()["code"] == "not_licensed_in_country"


def test_changed_price_is_refused_with_the_new_price(client: TestClient, film: Any) -> None:
    response = buy(client, create_user("ana@example.com"), film.id, expected_amount_minor=999)
    assert response.status_code == 409
    assert response.json()["code"] == "price_changed"
    assert (response.json()["price_minor"], response.json()["currency"]) == (1299, "USD")


def test_only_viewers_buy(client: TestClient, film: Any) -> None:
    studio_user = create_user("s@example.com", Role.studio, film.studio_id)
    response = buy(client, studio_user, film.id)
    assert (response.status_code, response.json()["code"]) == (403, "role_forbidden")


def test_unknown_title_is_404(client: TestClient) -> None:
    response = buy(client, create_user("ana@example.com"), "0" * 32)
    assert (response.status_code, response.json()["code"]) == (404, "title_not_found")


def test_provider_outage_leaves_no_ticket_behind(
    client: TestClient, stripe_fake: FakeStripe, film: Any
) -> None:
    ana = create_user("ana@example.com")
    stripe_fake.fail_next = 50
    response = buy(client, ana, film.id, key="outage-key-1")
    assert (response.status_code, response.json()["code"]) == (502, "payment_provider_error")
    assert count(Ticket) == 0
    stripe_fake.fail_next = 0
    assert buy(client, ana, film.id, key="outage-key-1").status_code == 201


def test_a_title_without_a_ready_release_is_listed_but_not_sold(
    client: TestClient, stripe_fake: FakeStripe, configure: Configure
) -> None:
    configure(geo_fallback_country="US")
    coming = create_licensed_title(create_studio().id, slug="coming-soon", playable=False)
    listed = client.get("/v1/titles").json()["items"]
    assert [(t["slug"], t["playable"]) for t in listed] == [("coming-soon", False)]
    assert client.get(f"/v1/titles/{coming.id}").json()["playable"] is False

    response = buy(client, create_user("early@example.com"), coming.id)
    assert (response.status_code, response.json()["code"]) == (409, "release_not_ready")
    # Refused before any money moved: no ticket, no PaymentIntent.
    assert count(Ticket) == 0
    assert stripe_fake.intents == {}
