"""Studios set store products and price points per title and territory through the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from accounts.models import Role
from tests.helpers import auth_header, create_studio, create_title, create_user

pytestmark = pytest.mark.usefixtures("db")


def test_a_studio_sets_lists_and_removes_its_store_products(client: TestClient) -> None:
    studio = create_studio()
    boss = auth_header(create_user("boss@studio.example", Role.studio, studio.id))
    title = create_title(studio.id)
    base = f"/v1/studio/titles/{title.id}/store-products"

    put = client.put(
        f"{base}/app_store/us",
        json={"product_id": "film.the_film.us", "amount_minor": 1299, "currency": "usd"},
        headers=boss,
    )
    listed = client.get(base, headers=boss)
    removed = client.delete(f"{base}/app_store/US", headers=boss)

    assert put.status_code == 200, put.text
    assert {
        k: put.json()[k] for k in ("store", "territory", "product_id", "amount_minor", "currency")
    } == {
        "store": "app_store",
        "territory": "US",
        "product_id": "film.the_film.us",
        "amount_minor": 1299,
        "currency": "USD",
    }
    assert [i["product_id"] for i in listed.json()["items"]] == ["film.the_film.us"]
    assert removed.status_code == 204
    assert client.get(base, headers=boss).json()["items"] == []


BAD: list[tuple[str, dict[str, object], int, str]] = [
    (
        "amazon/US",
        {"product_id": "p1", "amount_minor": 1, "currency": "USD"},
        422,
        "store_unknown",
    ),
    (
        "app_store/XX",
        {"product_id": "p1", "amount_minor": 1, "currency": "USD"},
        422,
        "unknown_country",
    ),
    (
        "app_store/US",
        {"product_id": "p1", "amount_minor": 1, "currency": "ZZZ"},
        422,
        "unknown_currency",
    ),
    (
        "app_store/US",
        {"product_id": "bad id!", "amount_minor": 1, "currency": "USD"},
        422,
        "invalid_input",
    ),
    (
        "app_store/US",
        {"product_id": "p1", "amount_minor": 0, "currency": "USD"},
        422,
        "invalid_input",
    ),
    (
        "app_store/US",
        {"product_id": "p1", "amount_minor": 15, "currency": "KWD"},
        422,
        "store_price_invalid",
    ),
]


@pytest.mark.embedded_only  # validation does not depend on the database
def test_bad_store_products_are_refused(client: TestClient) -> None:
    studio = create_studio()
    boss = auth_header(create_user("boss@studio.example", Role.studio, studio.id))
    title = create_title(studio.id)

    for path, body, status, code in BAD:
        answer = client.put(
            f"/v1/studio/titles/{title.id}/store-products/{path}", json=body, headers=boss
        )

        assert (answer.status_code, answer.json()["code"]) == (status, code), (path, body)
    assert client.get(f"/v1/studio/titles/{title.id}/store-products", headers=boss).json() == {
        "items": []
    }


def test_one_product_id_sells_one_title_per_storefront(client: TestClient) -> None:
    studio = create_studio()
    boss = auth_header(create_user("boss@studio.example", Role.studio, studio.id))
    first, second = create_title(studio.id, "first"), create_title(studio.id, "second")
    body = {"product_id": "film.shared", "amount_minor": 499, "currency": "USD"}
    assert (
        client.put(
            f"/v1/studio/titles/{first.id}/store-products/google_play/US", json=body, headers=boss
        ).status_code
        == 200
    )

    taken = client.put(
        f"/v1/studio/titles/{second.id}/store-products/google_play/US", json=body, headers=boss
    )

    assert taken.status_code == 409
    assert taken.json()["code"] == "store_product_taken"


@pytest.mark.embedded_only  # tests/api/test_studio_scope.py covers every backend
def test_another_studios_title_is_not_found(client: TestClient) -> None:
    mine, theirs = create_studio("Mine"), create_studio("Theirs")
    boss = auth_header(create_user("boss@mine.example", Role.studio, mine.id))
    title = create_title(theirs.id)

    answer = client.put(
        f"/v1/studio/titles/{title.id}/store-products/app_store/US",
        json={"product_id": "p1", "amount_minor": 100, "currency": "USD"},
        headers=boss,
    )

    assert answer.status_code == 404
    assert answer.json()["code"] == "title_not_found"
