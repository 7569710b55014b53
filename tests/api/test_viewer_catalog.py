"""The viewer's catalog: only what is on sale where they are, in their language."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from catalog import service as catalog
from core.db import unit_of_work, utcnow
from tests.conftest import Configure
from tests.helpers import IP_IN, client_from, create_licensed_title, create_studio


@pytest.fixture
def trusted_proxy(configure: Configure) -> str:
    configure(trusted_proxies="10.0.0.0/8")
    return "10.0.0.7"


def slugs(client: TestClient, **params: str) -> list[str]:
    response = client.get("/v1/titles", params=params)
    assert response.status_code == 200, response.text
    return [item["slug"] for item in response.json()["items"]]


def localize(title_id: str) -> None:
    with unit_of_work() as session:
        title = catalog.get_title(session, title_id)
        catalog.put_localization(
            session, title, "en", name="The Lantern Keeper", synopsis="A keeper of lanterns."
        )
        catalog.put_localization(session, title, "zh", name="守灯人", synopsis="简体简介")
        catalog.put_localization(session, title, "zh-Hant", name="守燈人", tagline="燈火")
        catalog.update_title(session, title, catalog.TitleChanges(genres=["drama", "mystery"]))
        catalog.set_track_languages(session, title.id, audio=["zh-Hant", "en"], subtitles=["fr"])
        catalog.index_title(session, title.id)


def test_each_country_sees_its_own_price_and_unlicensed_countries_see_nothing(db: None) -> None:
    create_licensed_title(create_studio().id)
    with client_from(IP_IN["US"]) as us:
        body = us.get("/v1/titles").json()
        assert body["country"] == "US"
        assert body["total"] == 1
        assert body["items"][0]["price"] | {"available_until": None} == {
            "amount_minor": 1299,
            "currency": "USD",
            "country": "US",
            "available_until": None,
        }
    with client_from(IP_IN["CA"]) as ca:
        assert ca.get("/v1/titles").json()["items"][0]["price"]["currency"] == "CAD"
    with client_from(IP_IN["FR"]) as fr:
        assert fr.get("/v1/titles").json() | {"items": None} == {
            "items": None,
            "total": 0,
            "offset": 0,
            "limit": 50,
            "country": "FR",
        }


def test_an_unknown_country_sees_nothing_for_sale(client: TestClient) -> None:
    title = create_licensed_title(create_studio().id)
    body = client.get("/v1/titles").json()  # peer "testclient": no address, no country
    assert (body["country"], body["total"], body["items"]) == (None, 0, [])
    response = client.get(f"/v1/titles/{title.id}")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "country_unknown"


def test_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(
    db: None, trusted_proxy: str
) -> None:
    create_licensed_title(create_studio().id)
    headers = {"X-Forwarded-For": IP_IN["US"], "CF-IPCountry": "US"}
    with client_from(IP_IN["FR"]) as fr:
        assert fr.get("/v1/titles", headers=headers).json()["total"] == 0
    with client_from(trusted_proxy) as proxy:
        assert slugs(proxy) == []  # the proxy itself is in a private network
        response = proxy.get("/v1/titles", headers={"X-Forwarded-For": IP_IN["US"]})
        assert response.json()["country"] == "US"
        assert response.json()["total"] == 1
        response = proxy.get("/v1/titles", headers={"CloudFront-Viewer-Country": "CA"})
        assert response.json()["items"][0]["price"]["currency"] == "CAD"


def test_title_detail_says_why_it_cannot_be_bought(db: None) -> None:
    title = create_licensed_title(create_studio().id)
    with client_from(IP_IN["FR"]) as fr:
        response = fr.get(f"/v1/titles/{title.id}")
        assert (response.status_code, response.json()["code"]) == (403, "not_licensed_in_country")
        missing = fr.get("/v1/titles/does-not-exist")
        assert (missing.status_code, missing.json()["code"]) == (404, "title_not_found")
    with client_from(IP_IN["US"]) as us:
        assert us.get(f"/v1/titles/{title.id}").json()["price"]["amount_minor"] == 1299


def test_a_window_in_the_future_is_not_on_sale_yet(db: None) -> None:
    now = utcnow()
    title = create_licensed_title(
        create_studio().id, starts=now + timedelta(days=3), ends=now + timedelta(days=30)
    )
    with client_from(IP_IN["US"]) as us:
        assert slugs(us) == []
        assert us.get(f"/v1/titles/{title.id}").json()["code"] == "outside_licence_window"


@pytest.mark.parametrize(
    ("accept", "lang", "locale", "name"),
    [
        ("zh-Hant-TW,zh;q=0.8", None, "zh-Hant", "守燈人"),
        ("zh-CN", None, "zh", "守灯人"),
        ("zh-TW", None, "zh-Hant", "守燈人"),
        ("zh-HK,en;q=0.5", None, "zh-Hant", "守燈人"),
        ("zh-Hans", None, "zh", "守灯人"),
        ("fr-CH, fr;q=0.9, de;q=0.7", None, "en", "The Lantern Keeper"),
        ("de;q=0.2, zh;q=0.9", None, "zh", "守灯人"),
        ("en", "zh-Hant", "zh-Hant", "守燈人"),
        (None, None, "en", "The Lantern Keeper"),
    ],
)
def test_metadata_follows_the_language_fallback_chain(
    db: None, accept: str | None, lang: str | None, locale: str, name: str
) -> None:
    title = create_licensed_title(create_studio().id, slug="the-lantern-keeper")
    localize(title.id)
    headers = {"Accept-Language": accept} if accept else {}
    params = {"lang": lang} if lang else {}
    with client_from(IP_IN["US"]) as us:
        listing = us.get("/v1/titles", headers=headers, params=params)
        detail = us.get(f"/v1/titles/{title.id}", headers=headers, params=params)
    assert listing.json()["items"][0]["locale"] == locale
    assert listing.json()["items"][0]["name"] == name
    assert listing.headers["content-language"] == locale
    assert detail.headers["content-language"] == locale
    assert "Accept-Language" in detail.headers["vary"]


def test_without_any_localization_the_original_title_is_shown(db: None) -> None:
    create_licensed_title(create_studio().id, slug="plain-film")
    with client_from(IP_IN["US"]) as us:
        response = us.get("/v1/titles", headers={"Accept-Language": "ja"})
    item = response.json()["items"][0]
    assert (item["name"], item["locale"]) == ("Plain Film", "en")


def test_a_malformed_lang_parameter_is_a_422_with_a_code(db: None) -> None:
    with client_from(IP_IN["US"]) as us:
        response = us.get("/v1/titles", params={"lang": "not a tag!"})
    assert (response.status_code, response.json()["code"]) == (422, "invalid_locale")


def test_filters_search_and_pagination(db: None) -> None:
    studio = create_studio()
    lantern = create_licensed_title(studio.id, slug="the-lantern-keeper")
    localize(lantern.id)
    for n in range(3):
        create_licensed_title(studio.id, slug=f"other-film-{n}")
    with unit_of_work() as session:
        section = catalog.create_collection(
            session,
            studio_id=studio.id,
            slug="online-panorama",
            name="Online Panorama",
            ends_at=utcnow() + timedelta(days=120),
        )
        catalog.add_to_collection(session, section, catalog.get_title(session, lantern.id))
    with client_from(IP_IN["US"]) as us:
        assert slugs(us, genre="drama") == ["the-lantern-keeper"]
        assert slugs(us, genre="comedy") == []
        assert slugs(us, language="zh") == ["the-lantern-keeper"]  # zh-Hant audio
        assert slugs(us, language="fr") == ["the-lantern-keeper"]  # French subtitles
        assert slugs(us, collection="online-panorama") == ["the-lantern-keeper"]
        assert slugs(us, q="燈") == ["the-lantern-keeper"]  # a localized tagline
        assert slugs(us, q="KEEPER of lanterns") == ["the-lantern-keeper"]
        assert slugs(us, collection="no-such-section") == []
        page = us.get("/v1/titles", params={"limit": "2", "offset": "1"}).json()
        assert (page["total"], len(page["items"])) == (4, 2)
        bad = us.get("/v1/titles", params={"limit": "0"})
        assert (bad.status_code, bad.json()["code"]) == (422, "invalid_input")
        collections = us.get("/v1/collections").json()
        assert [c["slug"] for c in collections] == ["online-panorama"]
    with client_from(IP_IN["FR"]) as fr:
        assert fr.get("/v1/collections").json() == collections  # no territory restriction
