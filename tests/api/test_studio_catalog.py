"""Studios manage their own titles, windows and prices; bad licensing data is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from accounts.models import Role
from core.db import utcnow
from tests.helpers import IP_IN, auth_header, client_from, create_studio, create_user

NOW = utcnow()


def iso(dt: datetime) -> str:
    return dt.isoformat()


@pytest.fixture
def studio_headers(db: None) -> dict[str, str]:
    studio = create_studio("Lantern Films")
    return auth_header(create_user("ops@lantern.example", Role.studio, studio.id))


def make_title(
    client: TestClient, headers: dict[str, str], slug: str = "the-lantern-keeper"
) -> str:
    response = client.post(
        "/v1/studio/titles",
        headers=headers,
        json={
            "slug": slug,
            "original_title": "守燈人",
            "original_language": "zh-hant",
            "runtime_seconds": 6240,
            "genres": ["Drama"],
            "trailer_url": "https://cdn.example/trailer.m3u8",
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def window(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "territory_mode": "listed",
        "countries": ["US", "CA"],
        "starts_at": iso(NOW - timedelta(days=1)),
        "ends_at": iso(NOW + timedelta(days=120)),
        "prices": [
            {"country": "US", "amount_minor": 1299, "currency": "USD"},
            {"country": "CA", "amount_minor": 1599, "currency": "CAD"},
        ],
    }
    return body | overrides


def problem(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return str(response.json()["code"])


def test_a_studio_puts_a_title_on_sale_and_viewers_see_it(
    client: TestClient, studio_headers: dict[str, str]
) -> None:
    title_id = make_title(client, studio_headers)
    response = client.put(
        f"/v1/studio/titles/{title_id}/localizations/en-us",
        headers=studio_headers,
        json={"name": "The Lantern Keeper", "synopsis": "A keeper of lanterns."},
    )
    assert response.json()["locale"] == "en-US"
    created = client.post(
        f"/v1/studio/titles/{title_id}/windows", headers=studio_headers, json=window()
    )
    assert created.status_code == 201, created.text
    window_id = created.json()["id"]
    put = client.put(
        f"/v1/studio/titles/{title_id}/windows/{window_id}/prices/us",
        headers=studio_headers,
        json={"amount_minor": 999, "currency": "usd"},
    )
    assert put.json()["prices"][1] == {"country": "US", "amount_minor": 999, "currency": "USD"}

    detail = client.get(f"/v1/studio/titles/{title_id}", headers=studio_headers).json()
    assert detail["original_language"] == "zh-Hant"
    assert detail["genres"] == ["drama"]
    assert [w["countries"] for w in detail["windows"]] == [["CA", "US"]]

    with client_from(IP_IN["US"]) as us:
        item = us.get("/v1/titles", headers={"Accept-Language": "en-US"}).json()["items"][0]
    assert (item["name"], item["price"]["amount_minor"]) == ("The Lantern Keeper", 999)
    assert item["trailer_url"] == "https://cdn.example/trailer.m3u8"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"countries": ["US", "XY"]}, "unknown_country"),
        (
            {"prices": [{"country": "US", "amount_minor": 1299, "currency": "USX"}]},
            "unknown_currency",
        ),
        (
            {"prices": [{"country": "US", "amount_minor": 0, "currency": "USD"}]},
            "price_not_positive",
        ),
        (
            {"prices": [{"country": "US", "amount_minor": -5, "currency": "USD"}]},
            "price_not_positive",
        ),
        (
            {"prices": [{"country": "FR", "amount_minor": 999, "currency": "EUR"}]},
            "price_outside_territory",
        ),
        (
            # ISK goes to the provider as two decimals of whole krónur: 1,050 is 10.50 kr.
            {"prices": [{"country": "US", "amount_minor": 1050, "currency": "ISK"}]},
            "price_not_chargeable",
        ),
        (
            {"prices": [{"country": "US", "amount_minor": 4995, "currency": "KWD"}]},
            "price_not_chargeable",
        ),
        (
            {"prices": [{"country": "US", "amount_minor": 1, "currency": "USD"}] * 2},
            "duplicate_price",
        ),
        ({"ends_at": iso(NOW - timedelta(days=2))}, "end_before_start"),
        ({"countries": []}, "territories_empty"),
        ({"starts_at": "2030-01-01T00:00:00"}, "invalid_input"),  # no time zone
        ({"territory_mode": "everywhere"}, "invalid_input"),
    ],
)
def test_bad_licensing_data_is_refused_with_a_stable_code(
    client: TestClient, studio_headers: dict[str, str], overrides: dict[str, Any], code: str
) -> None:
    title_id = make_title(client, studio_headers)
    response = client.post(
        f"/v1/studio/titles/{title_id}/windows", headers=studio_headers, json=window(**overrides)
    )
    assert problem(response, 422) == code
    detail = client.get(f"/v1/studio/titles/{title_id}", headers=studio_headers).json()
    assert detail["windows"] == []  # nothing half-written stays behind


def test_overlapping_windows_for_the_same_territory_are_refused(
    client: TestClient, studio_headers: dict[str, str]
) -> None:
    title_id = make_title(client, studio_headers)
    url = f"/v1/studio/titles/{title_id}/windows"
    assert client.post(url, headers=studio_headers, json=window()).status_code == 201
    # Same time, a worldwide window that does not exclude the US: overlaps.
    worldwide = window(territory_mode="worldwide_except", countries=["CA"], prices=[])
    assert (
        problem(client.post(url, headers=studio_headers, json=worldwide), 422) == "window_overlap"
    )
    # Excluding both US and CA: no overlap.
    rest = window(territory_mode="worldwide_except", countries=["US", "CA"], prices=[])
    assert client.post(url, headers=studio_headers, json=rest).status_code == 201
    # The same territories right after the first window ends: fine (windows are half-open).
    after = window(starts_at=iso(NOW + timedelta(days=120)), ends_at=iso(NOW + timedelta(days=200)))
    assert client.post(url, headers=studio_headers, json=after).status_code == 201


def test_moving_a_window_onto_another_is_refused(
    client: TestClient, studio_headers: dict[str, str]
) -> None:
    title_id = make_title(client, studio_headers)
    url = f"/v1/studio/titles/{title_id}/windows"
    client.post(url, headers=studio_headers, json=window())
    later = window(starts_at=iso(NOW + timedelta(days=200)), ends_at=iso(NOW + timedelta(days=300)))
    second = client.post(url, headers=studio_headers, json=later).json()["id"]
    moved = client.patch(
        f"{url}/{second}",
        headers=studio_headers,
        json={"starts_at": iso(NOW + timedelta(days=100))},
    )
    assert problem(moved, 422) == "window_overlap"
    shrink = client.patch(f"{url}/{second}", headers=studio_headers, json={"countries": ["US"]})
    assert problem(shrink, 422) == "price_outside_territory"  # CA still has a price


def test_another_studios_title_is_not_found(
    client: TestClient, studio_headers: dict[str, str]
) -> None:
    title_id = make_title(client, studio_headers)
    rival = auth_header(create_user("ops@rival.example", Role.studio, create_studio("Rival").id))
    assert (
        problem(client.get(f"/v1/studio/titles/{title_id}", headers=rival), 404)
        == "title_not_found"
    )
    assert (
        problem(
            client.post(f"/v1/studio/titles/{title_id}/windows", headers=rival, json=window()), 404
        )
        == "title_not_found"
    )
    assert client.get("/v1/studio/titles", headers=rival).json()["total"] == 0


def test_viewers_cannot_use_the_studio_api(client: TestClient) -> None:
    viewer = auth_header(create_user("viewer@example.com"))
    assert problem(client.get("/v1/studio/titles", headers=viewer), 403) == "role_forbidden"
    assert problem(client.get("/v1/studio/titles"), 401) == "not_authenticated"


def test_title_validation(client: TestClient, studio_headers: dict[str, str]) -> None:
    make_title(client, studio_headers)
    base: dict[str, Any] = {"slug": "x-film", "original_title": "X", "original_language": "en"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"slug": "the-lantern-keeper"}, 409, "slug_taken"),
        ({"slug": "Bad Slug"}, 422, "invalid_slug"),
        ({"original_language": "klingon!"}, 422, "invalid_locale"),
        ({"genres": ["not a genre"]}, 422, "invalid_genre"),
        ({"runtime_seconds": 0}, 422, "invalid_runtime"),
        ({"trailer_url": "javascript:alert(1)"}, 422, "invalid_input"),
    ]
    for change, status, code in cases:
        response = client.post("/v1/studio/titles", headers=studio_headers, json=base | change)
        assert problem(response, status) == code, change


def test_a_festival_section_limits_where_and_when(
    client: TestClient, studio_headers: dict[str, str]
) -> None:
    title_id = make_title(client, studio_headers)
    client.post(
        f"/v1/studio/titles/{title_id}/windows",
        headers=studio_headers,
        json=window(
            territory_mode="worldwide_except",
            countries=[],
            prices=[
                {"country": "US", "amount_minor": 999, "currency": "USD"},
                {"country": "FR", "amount_minor": 899, "currency": "EUR"},
            ],
        ),
    )
    section = client.post(
        "/v1/studio/collections",
        headers=studio_headers,
        json={
            "slug": "online-panorama",
            "name": "Online Panorama",
            "starts_at": iso(NOW - timedelta(hours=1)),
            "ends_at": iso(datetime(2099, 1, 1, tzinfo=UTC)),
            "territory_mode": "listed",
            "countries": ["US", "CA"],
        },
    )
    assert section.status_code == 201, section.text
    with client_from(IP_IN["FR"]) as fr:
        assert fr.get("/v1/titles").json()["total"] == 1  # not in the section yet
        member = client.put(
            f"/v1/studio/collections/{section.json()['id']}/titles/{title_id}",
            headers=studio_headers,
        )
        assert member.json()["title_ids"] == [title_id]
        assert fr.get("/v1/titles").json()["total"] == 0  # the section gates it now
    with client_from(IP_IN["US"]) as us:
        assert us.get("/v1/titles", params={"collection": "online-panorama"}).json()["total"] == 1
    bad = client.post(
        "/v1/studio/collections",
        headers=studio_headers,
        json={"slug": "x", "name": "X", "countries": ["US"]},
    )
    assert problem(bad, 422) == "territory_mode_required"


def test_editing_and_removing_what_was_published(
    client: TestClient, studio_headers: dict[str, str]
) -> None:
    title_id = make_title(client, studio_headers)
    base = f"/v1/studio/titles/{title_id}"
    patched = client.patch(
        base,
        headers=studio_headers,
        json={
            "original_title": "守燈人 (2026)",
            "genres": ["mystery", "drama"],
            "clear_trailer": True,
        },
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["genres"], patched.json()["trailer_url"]) == (["drama", "mystery"], None)
    assert (
        problem(client.patch(base, headers=studio_headers, json={"slug": "x"}), 422)
        == "invalid_input"
    )

    client.put(f"{base}/localizations/fr", headers=studio_headers, json={"name": "Le Gardien"})
    assert client.delete(f"{base}/localizations/fr", headers=studio_headers).status_code == 204
    gone = client.delete(f"{base}/localizations/fr", headers=studio_headers)
    assert problem(gone, 404) == "localization_not_found"

    window_id = client.post(f"{base}/windows", headers=studio_headers, json=window()).json()["id"]
    with client_from(IP_IN["CA"]) as ca:
        assert ca.get("/v1/titles").json()["total"] == 1
        left = client.delete(f"{base}/windows/{window_id}/prices/CA", headers=studio_headers)
        assert [p["country"] for p in left.json()["prices"]] == ["US"]
        assert ca.get("/v1/titles").json()["total"] == 0  # licensed there, but not offered
    assert client.delete(f"{base}/windows/{window_id}", headers=studio_headers).status_code == 204
    assert client.get(base, headers=studio_headers).json()["windows"] == []
    missing = client.delete(f"{base}/windows/{window_id}", headers=studio_headers)
    assert problem(missing, 404) == "window_not_found"
