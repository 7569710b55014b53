"""The viewer storefront (/store) in a real browser, and the API it added: the trailer route,
the app return link of the US link-out, and the page's payment policy.

The journey runs on the real API, database and storage with a release packaged by the real
pipeline (tests/playback's ``packaged_release``: a 12 s encrypted film): open /store in two
languages, search, open a title and its trailer, sign up and confirm the address with the
mailed code, buy with the sandbox card (a double click buys once), play past 5 s, leave,
come back and continue near where the film was left; then the same viewer at 375 px.
"""

from __future__ import annotations

import struct
import subprocess
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.routes.web import app_return_link
from catalog import service as catalog
from core.db import unit_of_work
from core.settings import Settings, get_settings
from core.storage import get_store
from payments.models import LedgerEntry, LedgerKind
from tests.conftest import Configure
from tests.helpers import create_licensed_title, create_studio, mailed_code
from tests.playback.conftest import (
    LiveServer,
    PackagedRelease,
    install_release,
    packaged_release,
)
from tests.web import conftest as web_fixtures
from tests.web.conftest import ALLOWED_CONSOLE_ERRORS
from tickets.models import Ticket

__all__ = ["packaged_release"]  # the session fixture: one transcode shared with tests/playback

PASSWORD = "lantern light at the harbour"
Shot = Callable[[Any, str], Path]


def _trailer_file(directory: Path) -> Path:
    """A 2 s H.264 MP4 made by the pinned FFmpeg (what a studio would upload as trailer)."""
    out = directory / "trailer.mp4"
    subprocess.run(
        [
            get_settings().ffmpeg_path,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=24",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            str(out),
        ],
        check=True,
        timeout=60,
    )
    return out


def _poster(directory: Path) -> Path:
    """A 200x300 PNG poster (a gradient with a grid), written with the standard library."""
    width, height = 200, 300
    rows = b"".join(
        b"\x00"
        + b"".join(
            bytes((255, 255, 255))
            if x % 40 == 0 or y % 40 == 0
            else bytes((30 + y * 150 // height, 40, 120 - y * 80 // height))
            for x in range(width)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    out = directory / "poster.png"
    out.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return out


def _shop(packaged: PackagedRelease | None, media: Path | None) -> dict[str, str]:
    """Two titles on sale in the US, localized in English, Russian and Chinese; the first
    with the packaged release, a stored trailer and a stored English poster."""
    studio = create_studio("Harbour Films")
    film = create_licensed_title(studio.id, slug=f"lanterns-{uuid.uuid4().hex[:6]}", playable=False)
    other = create_licensed_title(studio.id, slug=f"tides-{uuid.uuid4().hex[:6]}")
    with unit_of_work() as session:
        for title_id, texts in (
            (film.id, {"en": "Lanterns", "ru": "Фонари", "zh-Hans": "灯笼"}),
            (other.id, {"en": "Tides of Amélie", "ru": "Приливы Амели", "zh-Hans": "阿梅莉的潮汐"}),
        ):
            title = catalog.get_title(session, title_id)
            for locale, name in texts.items():
                poster = None
                if media is not None and title_id == film.id and locale == "en":
                    poster = f"artwork/{film.id}/en.png"
                    get_store().put_file(poster, _poster(media), "image/png")
                catalog.put_localization(
                    session,
                    title,
                    locale,
                    name=name,
                    synopsis=f"{name}: a night, a port.",
                    artwork_key=poster,
                )
        if media is not None:
            key = f"trailers/{film.id}/trailer.mp4"
            get_store().put_file(key, _trailer_file(media), "video/mp4")
            catalog.update_title(
                session, catalog.get_title(session, film.id), catalog.TitleChanges(trailer_key=key)
            )
    with unit_of_work() as session:
        for title_id in (film.id, other.id):
            catalog.index_title(session, title_id)  # the search-index job, run in-process
    if packaged is not None:
        install_release(packaged, film.id, studio.id)
    return {"film": film.id, "other": other.id}


def _until(page: Any, script: str, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(script)
        if value:
            return value
        page.wait_for_timeout(200)
    raise AssertionError(f"timed out waiting for {what}: {page.evaluate(script)}")


def _tickets_and_sales() -> tuple[int, int]:
    with unit_of_work() as session:
        tickets = session.scalar(select(func.count()).select_from(Ticket)) or 0
        sales = session.scalar(select(func.count()).where(LedgerEntry.kind == LedgerKind.sale))
    return tickets, sales or 0


def _video_time(page: Any) -> float:
    return float(page.evaluate("() => document.getElementById('video').currentTime"))


@pytest.mark.backend_agnostic
def test_the_viewer_journey_browse_buy_play_leave_and_resume(
    web: LiveServer,
    page_for: Any,
    screenshot: Shot,
    configure: Configure,
    packaged_release: PackagedRelease,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from playwright.sync_api import expect

    # The declined card below is shown (and logged) on purpose; nothing else may be.
    monkeypatch.setattr(
        web_fixtures, "ALLOWED_CONSOLE_ERRORS", (*ALLOWED_CONSOLE_ERRORS, "did not go through")
    )
    # Heartbeats every 2 s keep the grant (and its key periods, 4 s each here) ahead of
    # hls.js's buffer, as in tests/playback/test_real_clients.py.
    configure(
        geo_fallback_country="US", playback_heartbeat_seconds="2", playback_key_periods_around="2"
    )
    ids = _shop(packaged_release, tmp_path)

    # The catalog in Russian: the UI and the titles in the viewer's language.
    ru = page_for(locale="ru")
    ru.goto(f"{web.base_url}/store")
    expect(ru.locator(f"[data-title='{ids['film']}'] .name")).to_have_text("Фонари")
    expect(ru.locator("#catalog-heading")).to_have_text("Фильмы")

    # In English; search is case- and accent-insensitive.
    page = page_for(locale="en")
    page.goto(f"{web.base_url}/store")
    expect(page.locator(f"[data-title='{ids['film']}'] .name")).to_have_text("Lanterns")
    expect(page.locator("#count")).to_have_text("2 films on sale")
    poster = page.locator(f"[data-title='{ids['film']}'] img.art")
    expect(poster).to_have_attribute("src", f"/v1/titles/{ids['film']}/artwork?lang=en")
    _until(page, "() => document.querySelector('img.art')?.naturalWidth === 200", "the poster")
    screenshot(page, "store-catalog-1280")
    page.get_by_label("Search films").fill("AMELIE")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#titles .poster")).to_have_count(1)
    expect(page.locator("#titles .poster .name")).to_have_text("Tides of Amélie")
    page.get_by_label("Search films").fill("lanterns")
    page.get_by_label("Search films").press("Enter")
    expect(page.locator("#titles .poster .name")).to_have_text("Lanterns")

    # The title page with its trailer, served by the API where the film is sold.
    page.locator(f"[data-title='{ids['film']}']").click()
    expect(page.locator("#title-name")).to_have_text("Lanterns")
    expect(page.locator("#trailer")).to_have_attribute("src", f"/v1/titles/{ids['film']}/trailer")
    _until(page, "() => document.getElementById('trailer').readyState >= 1", "the trailer")
    assert page.evaluate("() => document.getElementById('trailer').duration") == pytest.approx(
        2, abs=0.2
    )
    screenshot(page, "store-title-1280")

    # Buying needs an account: sign up, confirm the address with the mailed code.
    page.locator("#buy").click()
    page.get_by_role("link", name="Create an account").click()
    email = f"viewer-{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
    page.get_by_role("button", name="Create an account").click()
    expect(page.get_by_role("heading", name="Confirm your e-mail address")).to_be_visible()
    page.get_by_label("Code from the e-mail").fill(mailed_code(email))
    page.get_by_role("button", name="Confirm").click()

    # Back at the checkout: pay with the sandbox card. A double click is one purchase.
    expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
    screenshot(page, "store-checkout-1280")
    page.locator("#pay").dblclick()
    expect(page.locator("#paid")).to_be_visible()
    assert _tickets_and_sales() == (1, 1)

    # Play past 5 s with the player /play shares.
    page.locator("#watch-now").click()
    _until(page, "() => document.getElementById('video')?.currentTime > 5", "5 s played", 60)
    screenshot(page, "store-player-1280")
    left_at = _video_time(page)
    assert (
        page.evaluate(
            "() => window.pocketCinemaStore.errors.filter(e => /key|decrypt/i.test(e) && !/decryptdata unset or changed/.test(e))"
        )
        == []
    )

    # Leave (a last heartbeat records the playhead), come back: continue watching.
    page.locator("#leave").click()
    expect(page.locator("#title-name")).to_have_text("Lanterns")
    page.get_by_role("link", name="Films").click()
    resume = page.locator("[data-resume]")
    expect(resume).to_be_visible()
    resume.click()
    _until(page, "() => document.getElementById('video')?.currentTime > 0", "playing again", 60)
    assert _video_time(page) >= left_at - 1.5, (left_at, _video_time(page))

    # The account: export my data.
    page.get_by_role("link", name="My account").click()
    page.get_by_role("button", name="Export my data").click()
    expect(page.locator("#export-file")).to_be_visible()
    screenshot(page, "store-account-1280")

    # The same viewer on a phone (375 px): sign in, every page fits.
    phone = page_for(locale="en", width=375, height=760)
    # Opened from the mobile app (the US link-out), with a way back into it after paying.
    configure(store_return_schemes="pocketcinema")
    phone.goto(f"{web.base_url}/store?return=pocketcinema://library")
    expect(phone.locator(f"[data-title='{ids['film']}']")).to_be_visible()
    screenshot(phone, "store-catalog-375")
    phone.locator("#nav-sign-in").click()
    phone.get_by_label("E-mail").fill(email)
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    expect(phone.locator("[data-resume]")).to_be_visible()
    phone.locator(f"[data-title='{ids['other']}']").click()
    expect(phone.locator("#title-name")).to_have_text("Tides of Amélie")
    screenshot(phone, "store-title-375")
    phone.locator("#buy").click()
    expect(phone.get_by_role("heading", name="Checkout")).to_be_visible()
    screenshot(phone, "store-checkout-375")
    # A declined card, then another card on the same payment: one more ticket, one more sale.
    phone.get_by_label("Test card").select_option("4000000000000002")
    phone.locator("#pay").click()
    expect(phone.locator("#status")).to_contain_text("(generic_decline)")
    phone.get_by_label("Test card").select_option("pm_card_visa")
    phone.locator("#pay").click()
    expect(phone.locator("#paid")).to_be_visible()
    expect(phone.locator("#back-to-app")).to_have_attribute("href", "pocketcinema://library")
    assert _tickets_and_sales() == (2, 2)
    phone.get_by_role("link", name="Films").click()
    phone.locator("[data-resume]").click()
    _until(phone, "() => document.getElementById('video')?.currentTime > 0", "phone playing", 60)
    screenshot(phone, "store-player-375")
    phone.get_by_role("link", name="My account").click()
    expect(phone.get_by_role("heading", name="Delete my account")).to_be_visible()
    screenshot(phone, "store-account-375")
    for shot in (page, phone):
        width = shot.evaluate("() => document.documentElement.scrollWidth")
        assert width <= shot.viewport_size["width"], width


@pytest.mark.backend_agnostic
def test_account_pages_reset_a_password_and_delete_the_account(
    web: LiveServer, client: TestClient, page_for: Any, configure: Configure
) -> None:
    """Forgot the password: the mailed code sets a new one and signs in; then the viewer
    deletes the account and can no longer sign in."""
    from playwright.sync_api import expect

    from tests.helpers import sign_up

    configure(geo_fallback_country="US")
    email = f"ana-{uuid.uuid4().hex[:6]}@example.com"
    sign_up(client, email, PASSWORD)
    page = page_for(locale="es")
    page.goto(f"{web.base_url}/store#/reset")
    page.get_by_label("Correo electrónico").fill(email)
    page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_label("Código del correo")).to_be_visible()
    page.get_by_label("Código del correo").fill(mailed_code(email))
    page.get_by_label("Contraseña (al menos 10 caracteres)").fill(PASSWORD)
    page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_text(f"Sesión iniciada como {email}")).to_be_visible()
    page.get_by_label("Contraseña", exact=True).fill(PASSWORD)
    page.get_by_label("Entiendo que no se puede deshacer").check()
    page.get_by_role("button", name="Eliminar mi cuenta definitivamente").click()
    expect(page.locator("#nav-sign-in")).to_be_visible()
    refused = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert refused.status_code == 401, refused.text


# --- the API the storefront added -----------------------------------------------------------


def _fetch(client: TestClient, path: str, **headers: str) -> httpx.Response:
    """A stored file through the API: served directly, or (S3, the services profile) a 307
    to a short-lived presigned URL of the object, followed here."""
    served: httpx.Response = client.get(path, headers=headers, follow_redirects=False)
    if served.status_code == 307:
        return httpx.get(served.headers["location"], headers=headers, timeout=10)
    return served


def test_the_trailer_and_artwork_are_served_where_the_title_is_sold_and_only_there(
    client: TestClient, configure: Configure, tmp_path: Path
) -> None:
    configure(geo_fallback_country="US")
    ids = _shop(None, tmp_path)
    served = _fetch(client, f"/v1/titles/{ids['film']}/trailer", Range="bytes=0-99")
    assert served.status_code == 206, served.text
    assert served.content[4:8] == b"ftyp"  # the MP4 as stored, seekable by byte ranges
    assert len(served.content) == 100
    poster = _fetch(client, f"/v1/titles/{ids['film']}/artwork?lang=en")
    assert poster.status_code == 200, poster.text
    assert poster.content.startswith(b"\x89PNG")
    # The Russian text has no stored poster: the artwork follows the text's locale.
    russian = client.get(f"/v1/titles/{ids['film']}/artwork", headers={"Accept-Language": "ru"})
    assert (russian.status_code, russian.json()["code"]) == (404, "artwork_not_found")

    missing = client.get(f"/v1/titles/{ids['other']}/trailer")
    assert (missing.status_code, missing.json()["code"]) == (404, "trailer_not_found")
    unknown = client.get(f"/v1/titles/{uuid.uuid4().hex}/trailer")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "title_not_found")
    # Not sold in France: no trailer there either.
    configure(geo_fallback_country="FR")
    for media in ("trailer", "artwork?lang=en"):
        refused = client.get(f"/v1/titles/{ids['film']}/{media}")
        assert (refused.status_code, refused.json()["code"]) == (403, "not_licensed_in_country")


def test_the_app_return_link_is_only_an_app_url_with_a_configured_scheme(
    client: TestClient, configure: Configure
) -> None:
    schemes = ["pocketcinema"]
    assert app_return_link("pocketcinema://title/42", schemes) == "pocketcinema://title/42"
    assert app_return_link("PocketCinema://paid", schemes) == "PocketCinema://paid"
    for refused in (
        "https://evil.example/pocketcinema://",
        "javascript:alert(1)",
        "//evil.example",
        "otherapp://title/42",
        "pocketcinema",
        "pocketcinema://a b",
        "pocketcinema://x\n",
        None,
        "",
    ):
        assert app_return_link(refused, schemes) is None, refused
    assert app_return_link("pocketcinema://title/42", []) is None

    configure(store_return_schemes="pocketcinema")
    page = client.get("/store", params={"return": 'pocketcinema://paid?x="><script>'})
    assert 'data-return="pocketcinema://paid?x=&quot;&gt;&lt;script&gt;"' in page.text
    assert "<script>" not in page.text.split("<head>")[0]
    web_page = client.get("/store", params={"return": "https://evil.example/"})
    assert "data-return" not in web_page.text
    for scheme in ("https", "javascript", "Bad Scheme"):
        with pytest.raises(ValueError, match="app URL scheme"):
            Settings(store_return_schemes=scheme)


def test_stripe_js_is_allowed_on_the_store_only_with_the_stripe_provider(
    client: TestClient, configure: Configure
) -> None:
    sandbox = client.get("/store").headers["content-security-policy"]
    assert "js.stripe.com" not in sandbox
    assert "media-src 'self' blob: https:;" in sandbox  # trailers from the media CDN
    configure(
        payment_provider="stripe",
        stripe_secret_key="sk_test_x",
        stripe_publishable_key="pk_test_x",
        stripe_webhook_secret="whsec_x",
    )
    stripe = client.get("/store").headers["content-security-policy"]
    assert "script-src 'self' https://js.stripe.com;" in stripe
    assert "frame-src https://js.stripe.com https://hooks.stripe.com;" in stripe
    assert "js.stripe.com" not in client.get("/studio").headers["content-security-policy"]
