"""Every studio route sees only the caller's studio: enumerated from the OpenAPI document, so
a new route with a studio-owned id in its path is covered (or fails here until it is)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from accounts.models import Role
from accounts.service import Principal, studio_scope
from api.app import create_app
from catalog import service as catalog
from core.db import read_only, utcnow
from core.scope import StudioScope
from tests.helpers import auth_header, create_studio, create_title, create_user

NOW = utcnow()
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)  # the signature is what the artwork routes check
# Path parameters that name a studio's rows; the others (a locale, a country, a part number)
# only narrow inside one of those.
OWNED = {
    "title_id",
    "window_id",
    "collection_id",
    "release_id",
    "upload_id",
    "track_id",
    "screener_id",
}
# Routes with a body get a valid one, so what answers is the scope and not validation.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/studio/titles"): {
        "slug": "intruders",
        "original_title": "Intruder's own",
        "original_language": "en",
    },
    ("post", "/v1/studio/collections"): {"slug": "intruders", "name": "Intruder's own"},
    ("put", "/v1/studio/webhook"): {"url": None},
    ("patch", "/v1/studio/titles/{title_id}"): {"original_title": "Taken"},
    ("put", "/v1/studio/titles/{title_id}/localizations/{locale}"): {"name": "Taken"},
    ("post", "/v1/studio/titles/{title_id}/windows"): {
        "territory_mode": "listed",
        "countries": ["FR"],
        "starts_at": NOW.isoformat(),
        "ends_at": (NOW + timedelta(days=9)).isoformat(),
    },
    ("patch", "/v1/studio/titles/{title_id}/windows/{window_id}"): {"countries": ["FR"]},
    ("put", "/v1/studio/titles/{title_id}/windows/{window_id}/prices/{country}"): {
        "amount_minor": 1,
        "currency": "USD",
    },
    ("put", "/v1/studio/titles/{title_id}/store-products/{store}/{country}"): {
        "product_id": "film.taken",
        "amount_minor": 99,
        "currency": "USD",
    },
    ("put", "/v1/studio/collections/{collection_id}"): {"name": "Taken"},
    ("post", "/v1/studio/titles/{title_id}/releases"): {"label": "Taken"},
    ("post", "/v1/studio/releases/{release_id}/uploads"): {
        "kind": "master",
        "filename": "taken.mov",
        "size_bytes": 1024,
    },
    ("post", "/v1/studio/uploads/{upload_id}/part-urls"): {"parts": [{"number": 1}]},
    ("patch", "/v1/studio/releases/{release_id}/tracks/{track_id}"): {"name": "Taken"},
    ("put", "/v1/studio/releases/{release_id}/channel-map"): {"groups": None},
    ("post", "/v1/studio/titles/{title_id}/screeners"): {
        "email": "buyer@intruder.example",
        "expires_at": (NOW + timedelta(days=9)).isoformat(),
        "view_limit": 1,
    },
}


@dataclass
class Owner:
    headers: dict[str, str]
    ids: dict[str, str]


def _created(response: httpx.Response) -> str:
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


@pytest.fixture
def owner(client: TestClient) -> Owner:
    """Studio A with one of everything a studio owns, made through the API."""
    studio = create_studio("Owner Films")
    headers = auth_header(create_user("ops@owner.example", Role.studio, studio.id))
    title_id = _created(
        client.post(
            "/v1/studio/titles",
            headers=headers,
            json={"slug": "owned", "original_title": "Owned", "original_language": "en"},
        )
    )
    window_id = _created(
        client.post(
            f"/v1/studio/titles/{title_id}/windows",
            headers=headers,
            json=BODIES[("post", "/v1/studio/titles/{title_id}/windows")]
            | {"prices": [{"country": "FR", "amount_minor": 999, "currency": "EUR"}]},
        )
    )
    collection_id = _created(
        client.post(
            "/v1/studio/collections", headers=headers, json={"slug": "owned", "name": "Owned"}
        )
    )
    release_id = _created(
        client.post(f"/v1/studio/titles/{title_id}/releases", headers=headers, json={})
    )
    upload_id = _created(
        client.post(
            f"/v1/studio/releases/{release_id}/uploads",
            headers=headers,
            json=BODIES[("post", "/v1/studio/releases/{release_id}/uploads")],
        )
    )
    # A poster in English, so the artwork routes have something to hide from an intruder.
    localized = client.put(
        f"/v1/studio/titles/{title_id}/localizations/en", headers=headers, json={"name": "Owned"}
    )
    assert localized.status_code == 200, localized.text
    poster = client.put(
        f"/v1/studio/titles/{title_id}/localizations/en/artwork",
        headers=headers | {"Content-Type": "image/png"},
        content=PNG,
    )
    assert poster.status_code == 200, poster.text
    screener_id = _created(
        client.post(
            f"/v1/studio/titles/{title_id}/screeners",
            headers=headers,
            json=BODIES[("post", "/v1/studio/titles/{title_id}/screeners")],
        )
    )
    ids = {
        "screener_id": screener_id,
        "title_id": title_id,
        "window_id": window_id,
        "collection_id": collection_id,
        "release_id": release_id,
        "upload_id": upload_id,
        # The release has no tracks before a run; the release's scope answers first anyway.
        "track_id": "0" * 32,
        "locale": "en",
        "country": "FR",
        "store": "app_store",
        "number": "1",
    }
    return Owner(headers, ids)


def _studio_routes() -> list[tuple[str, str]]:
    paths = create_app().openapi()["paths"]
    return [
        (method, path)
        for path, operations in paths.items()
        if path.startswith("/v1/studio/")
        for method in operations
    ]


def _call(client: TestClient, method: str, path: str, ids: dict[str, str], headers: Any) -> Any:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    missing = [n for n in names if n not in ids]
    assert not missing, f"{method.upper()} {path}: teach this test the parameter(s) {missing}"
    url = path.format(**{n: ids[n] for n in names})
    if method == "put" and path.endswith("/parts/{number}"):
        return client.put(url, headers=headers, content=b"part")
    if method == "put" and path.endswith("/artwork"):
        return client.put(url, headers=headers | {"Content-Type": "image/png"}, content=PNG)
    body = BODIES.get((method, path))
    params = {"date_from": NOW.date().isoformat(), "date_to": NOW.date().isoformat()}
    if "boxoffice" in path:
        params["title_id"] = ids["title_id"]
    return client.request(method.upper(), url, headers=headers, json=body, params=params)


def test_another_studios_ids_are_not_found_on_every_studio_route(
    client: TestClient, owner: Owner
) -> None:
    intruder_studio = create_studio("Intruder Films")
    intruder = auth_header(create_user("ops@intruder.example", Role.studio, intruder_studio.id))
    checked = 0
    for method, path in _studio_routes():
        response = _call(client, method, path, owner.ids, intruder)
        if any(f"{{{name}}}" in path for name in OWNED) or "boxoffice" in path:
            assert response.status_code == 404, (method, path, response.text)
            checked += 1
        else:
            # Listings and studio settings: the intruder's own, never the owner's rows.
            assert response.status_code < 400, (method, path, response.text)
            assert not any(v in response.text for v in owner.ids.values() if len(v) > 8), path
    assert checked >= 18
    # The owner is answered on the same ids: the 404s above are the scope, not bad ids.
    for method, path in _studio_routes():
        if method == "get":
            mine = _call(client, method, path, owner.ids, owner.headers)
            assert mine.status_code == 200, (path, mine.text)


@pytest.mark.parametrize(
    ("role", "studio_id", "expected"),
    [
        (Role.admin, None, StudioScope.all_studios()),
        (Role.admin, "s1", StudioScope.all_studios()),
        (Role.finance, None, StudioScope.all_studios()),
        (Role.studio, "s1", StudioScope.one("s1")),
        (Role.studio, None, StudioScope.nothing()),
        (Role.viewer, "s1", StudioScope.nothing()),
    ],
)
def test_one_function_decides_the_scope(
    role: Role, studio_id: str | None, expected: StudioScope
) -> None:
    assert studio_scope(Principal("u1", role, studio_id, None)) == expected


def test_the_scope_in_sql(db: None) -> None:
    mine, theirs = create_studio("Mine"), create_studio("Theirs")
    create_title(mine.id, slug="mine")
    create_title(theirs.id, slug="theirs")

    def slugs(scope: StudioScope) -> list[str]:
        with read_only() as session:
            rows, _ = catalog.list_studio_titles(session, scope, offset=0, limit=10)
            return sorted(t.slug for t in rows)

    assert slugs(StudioScope.all_studios()) == ["mine", "theirs"]
    assert slugs(StudioScope.one(mine.id)) == ["mine"]
    assert slugs(StudioScope.nothing()) == []
    assert slugs(StudioScope.all_studios().narrowed(theirs.id)) == ["theirs"]
    assert slugs(StudioScope.one(mine.id).narrowed(theirs.id)) == []


def test_admins_and_finance_see_every_studio(client: TestClient, owner: Owner) -> None:
    admin = auth_header(create_user("admin@example.com", Role.admin))
    finance = auth_header(create_user("finance@example.com", Role.finance))
    title = client.get(f"/v1/studio/titles/{owner.ids['title_id']}", headers=admin)
    assert title.status_code == 200, title.text
    day = NOW.date().isoformat()
    for who in (admin, finance):
        report = client.get(
            "/v1/finance/boxoffice/report",
            headers=who,
            params={"date_from": day, "date_to": day, "title_id": owner.ids["title_id"]},
        )
        assert report.status_code == 200, report.text
