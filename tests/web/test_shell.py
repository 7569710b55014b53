"""The web apps' shells and assets: served by the API, in the caller's language, with the
apps' security headers, and nothing outside web/ reachable."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.routes.web import APPS, ui_locale
from tests.playback.conftest import LiveServer


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-TW,zh;q=0.9", "zh-Hant"),
        ("zh-CN", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("ru-RU,en;q=0.5", "ru"),
        ("es-MX", "es"),
        ("it-CH", "it"),
        ("de-DE", "en"),
        ("", "en"),
        ("x;;;,q=abc", "en"),
    ],
)
def test_the_ui_language_follows_accept_language(header: str, expected: str) -> None:
    assert ui_locale(header) == expected


def test_each_app_shell_is_served_in_the_callers_language_with_its_policy(client: Any) -> None:
    for app in APPS:
        response = client.get(f"/{app}", headers={"Accept-Language": "zh-TW"})
        assert response.status_code == 200
        assert '<html lang="zh-Hant"' in response.text
        assert f'src="/web/{app}/app.js"' in response.text
        csp = response.headers["content-security-policy"]
        assert "script-src 'self';" in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert "Accept-Language" in response.headers["vary"]


def test_assets_are_served_by_type_and_nothing_outside_web(client: Any) -> None:
    ok = client.get("/web/shared/api.js")
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/javascript")
    for path in (
        "/web/../pyproject.toml",
        "/web/%2e%2e/pyproject.toml",
        "/web/shared/missing.js",
        "/web/studio/index.html",  # shells only through /studio, with the language set
        "/web/shared",
    ):
        refused = client.get(path)
        assert refused.status_code in {404, 422}, path
        assert refused.headers["content-type"].startswith("application/problem+json"), path


def test_every_ui_language_has_every_shared_text() -> None:
    import json

    from api.routes.web import UI_LOCALES, WEB_ROOT

    english = json.loads((WEB_ROOT / "i18n" / "shared" / "en.json").read_text())
    for app in ("shared", *APPS):
        reference = json.loads((WEB_ROOT / "i18n" / app / "en.json").read_text())
        for locale in UI_LOCALES:
            texts = json.loads((WEB_ROOT / "i18n" / app / f"{locale}.json").read_text())
            missing = sorted(set(reference) - set(texts))
            assert not missing, f"{app}/{locale}.json lacks {missing}"
    assert "auth.sign_in" in english


def test_the_shells_load_their_modules_in_chromium(web: LiveServer, page_for: Any) -> None:
    from playwright.sync_api import expect

    page = page_for(locale="ru")
    for app in APPS:
        page.goto(f"{web.base_url}/{app}")
        # Waits with the locator API: the apps' policy forbids eval, so no wait_for_function.
        expect(page.locator("h1")).to_have_text("Карманный кинотеатр")
        assert page.evaluate("document.documentElement.lang") == "ru"
    response = httpx.get(f"{web.base_url}/web/shared/i18n.js", timeout=5)
    assert response.status_code == 200
