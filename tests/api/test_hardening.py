"""Security headers on every page and response, nothing internal echoed in errors, and the
500s an attacker found answered as 4xx problem+json."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from accounts.models import Role
from api.app import create_app
from core.errors import NotAuthenticated
from core.settings import reset_settings_cache
from drm import grants
from tests.helpers import auth_header, create_studio, create_user


@pytest.mark.parametrize("path", ["/play", "/docs", "/redoc"])
def test_html_pages_carry_a_content_security_policy(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in page.headers  # plain http: no HSTS


def test_the_player_page_runs_only_its_own_scripts(client: TestClient) -> None:
    policy = client.get("/play").headers["content-security-policy"]
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert script_src.split() == ["script-src", "'self'"]


@pytest.mark.parametrize("path", ["/openapi.json", "/healthz", "/v1/titles/nope", "/v1/me"])
def test_every_response_says_nosniff(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers  # not HTML


@pytest.fixture
def tls_client(db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("POCKETCINEMA_BASE_URL", "https://api.pocketcinema.example")
    reset_settings_cache()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client
    monkeypatch.undo()
    reset_settings_cache()


def test_hsts_when_served_over_tls(tls_client: TestClient, client: TestClient) -> None:
    assert "max-age=31536000" in tls_client.get("/play").headers["strict-transport-security"]
    assert "strict-transport-security" in tls_client.get("/healthz").headers
    # A request that itself came over https, whatever base_url says.
    https = TestClient(create_app(), base_url="https://testserver")
    assert "strict-transport-security" in https.get("/healthz").headers


def test_a_storage_key_is_not_echoed_in_a_422(client: TestClient) -> None:
    studio = create_studio("Echo Films")
    headers = auth_header(create_user("ops@echo.example", Role.studio, studio.id))
    answer = client.post(
        "/v1/studio/titles",
        headers=headers,
        json={
            "slug": "echo",
            "original_title": "Echo",
            "original_language": "en",
            "trailer_key": "media/../../var/secrets/kek.json",
        },
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_storage_key"
    assert "kek" not in answer.text
    assert "secrets" not in answer.text


def test_an_admin_naming_a_missing_studio_gets_a_422(client: TestClient) -> None:
    admin = create_user("root@pocketcinema.example", Role.admin)
    answer = client.post(
        "/v1/studio/titles",
        headers=auth_header(admin),
        json={
            "slug": "orphan",
            "original_title": "Orphan",
            "original_language": "en",
            "studio_id": "no-such-studio",
        },
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "studio_not_found")


def test_a_huge_runtime_is_refused(client: TestClient) -> None:
    studio = create_studio("Long Films")
    headers = auth_header(create_user("ops@long.example", Role.studio, studio.id))
    answer = client.post(
        "/v1/studio/titles",
        headers=headers,
        json={
            "slug": "forever",
            "original_title": "Forever",
            "original_language": "en",
            "runtime_seconds": 10**30,
        },
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "invalid_input")


@pytest.mark.parametrize("expiry", ["1e400", "10" + "0" * 30, '"soon"'])
def test_a_playback_grant_with_a_huge_or_odd_expiry_is_refused(db: None, expiry: str) -> None:
    # Even signed with our own secret (only we can sign one), a grant whose expiry is not a
    # sane integer is refused with a code, never a 500.
    body = (
        '{"sid":"s","tid":"t","vid":"v","tt":"f","rel":"r","pre":"hls/r/1","mst":"m.m3u8",'
        f'"c":"US","dev":"d","ren":[],"kp":[0,0],"keys":[],"exp":{expiry}}}'
    )
    payload = base64.urlsafe_b64encode(body.encode()).rstrip(b"=").decode()
    token = f"{payload}.{grants._mac(grants._secret(), payload)}"
    with pytest.raises(NotAuthenticated) as refused:
        grants.decode(token)
    assert refused.value.code in ("invalid_grant", "grant_expired")
