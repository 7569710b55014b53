"""What every client sees regardless of route: problem+json, request ids, health, metrics."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Configure
from tests.helpers import client_from, create_licensed_title, create_studio

Client = Any  # TestClient, typed loosely because the fixture yields `object`


@pytest.mark.usefixtures("db")
def test_titles_thin_slice_lists_a_title_on_sale() -> None:
    studio = create_studio()
    title = create_licensed_title(studio.id, slug="spring-river")
    with client_from("8.8.8.8") as us_viewer:  # a US address in the offline IP data
        response = us_viewer.get("/v1/titles")
        assert response.status_code == 200
        body = response.json()
        assert body["total"] == 1
        assert [t["id"] for t in body["items"]] == [title.id]
        assert us_viewer.get(f"/v1/titles/{title.id}").json()["id"] == title.id


def test_unknown_title_is_problem_json_with_code(client: TestClient) -> None:
    response = client.get("/v1/titles/nope", headers={"X-Request-Id": "req-123"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "req-123"
    body = response.json()
    assert body["code"] == "title_not_found"
    assert body["status"] == 404
    assert body["request_id"] == "req-123"
    assert body["instance"] == "/v1/titles/nope"


def test_malformed_query_lists_the_fields(client: TestClient) -> None:
    response = client.get("/v1/titles", params={"limit": "0", "offset": "minus-one"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_input"
    assert {e["field"] for e in body["errors"]} == {"query.limit", "query.offset"}


def test_unknown_route_and_method_are_problem_json(client: TestClient) -> None:
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    wrong_method = client.delete("/v1/titles")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"


def test_request_id_is_generated_when_absent_or_unsafe(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    unsafe = client.get("/healthz", headers={"X-Request-Id": "a b\tc<script>"}).headers[
        "x-request-id"
    ]
    assert unsafe != "a b\tc<script>"


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}


def test_readiness_names_the_failing_dependency(client: TestClient, configure: Configure) -> None:
    # A broker nobody listens on: port 9 (discard) on loopback is closed here.
    configure(broker_url="redis://127.0.0.1:9/0")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["failing"] == ["broker"]
    assert body["checks"]["database"] == "ok"


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/v1/titles/abc")
    client.get("/v1/titles/def")
    text = client.get("/metrics").text
    assert "pocketcinema_http_requests_total" in text
    assert 'route="/v1/titles/{title_id}"' in text
    assert "/v1/titles/abc" not in text, "raw paths would explode the series count"


def test_openapi_documents_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Pocket Cinema"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
    assert {"/healthz", "/readyz", "/metrics", "/v1/titles"} <= set(spec["paths"])


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_work_offline(client: TestClient, page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200
    assert "text/html" in html.headers["content-type"]
    # Nothing is loaded from another origin: every script and stylesheet is ours.
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
    scripts = [a for a in assets if a.endswith((".js", ".css"))]
    assert scripts, html.text
    for url in scripts:
        assert url.startswith("/docs/assets/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100_000, url  # the real bundle, not a placeholder
    assert "openapi.json" in html.text


@pytest.mark.usefixtures("db")
def test_cors_answers_only_the_configured_web_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.app import create_app
    from core.settings import reset_settings_cache

    monkeypatch.setenv("POCKETCINEMA_CORS_ALLOWED_ORIGINS", "https://watch.example.com/")
    reset_settings_cache()
    try:
        with TestClient(create_app(), raise_server_exceptions=False) as web:
            preflight = web.options(
                "/v1/purchases",
                headers={
                    "Origin": "https://watch.example.com",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, idempotency-key",
                },
            )
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == "https://watch.example.com"
            listing = web.get("/v1/titles", headers={"Origin": "https://watch.example.com"})
            assert listing.headers["access-control-allow-origin"] == "https://watch.example.com"
            assert "X-Request-Id" in listing.headers["access-control-expose-headers"]
            stranger = web.get("/v1/titles", headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in stranger.headers
            refused = web.options(
                "/v1/purchases",
                headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
            )
            assert refused.status_code == 400
    finally:
        monkeypatch.delenv("POCKETCINEMA_CORS_ALLOWED_ORIGINS")
        reset_settings_cache()


def test_without_configured_origins_there_is_no_cors(client: TestClient) -> None:
    response = client.get("/v1/titles", headers={"Origin": "https://watch.example.com"})
    assert "access-control-allow-origin" not in response.headers
