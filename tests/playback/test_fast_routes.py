"""The hot paths' lane (api/hot_paths.py) answers exactly as the declared FastAPI routes do:
status, every header (but the per-request id) and body, for successes, refusals and
malformed requests; and it sits inside the app's middleware, built from the declared
routes."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from api.app import create_app
from api.hot_paths import HotPaths
from api.middleware import RequestContextMiddleware
from api.routes import playback as routes
from tests.playback.conftest import Viewing
from tests.playback.test_playback_api import key_uri, path_of, started


def _answer(response: object) -> tuple[int, list[tuple[str, str]], bytes]:
    status = response.status_code  # type: ignore[attr-defined]
    headers = sorted(
        (k.lower(), v)
        for k, v in response.headers.multi_items()  # type: ignore[attr-defined]
        if k.lower() not in ("x-request-id", "date")
    )
    body = response.content  # type: ignore[attr-defined]
    # Problem bodies carry the request id, which is per request by design.
    body = re.sub(rb'"request_id":"[^"]*"', b'"request_id":""', body)
    return status, headers, body


def test_fast_and_declared_routes_answer_the_same(viewing: Viewing) -> None:
    body = started(viewing)
    sid = body["session_id"]
    grant = viewing.grant_headers(body["token"])
    master = path_of(body["master_playlist_url"])
    variant = next(
        line
        for line in viewing.client.get(master, headers=grant).text.splitlines()
        if line.startswith("/v1/")
    )
    media = f"/v1/playback/sessions/{sid}/media"
    requests: list[tuple[str, dict[str, str]]] = [
        (master, grant),
        (master + f"?token={body['token']}", {}),
        (variant, grant),
        (key_uri(body, viewing.key_id), grant),
        (key_uri(body, viewing.key_ids[2]), grant),  # a period not granted
        (key_uri(body, viewing.key_id), {"Authorization": grant["Authorization"]}),  # no device
        (key_uri(body, viewing.key_id), grant | {"X-Device-Id": "laptop"}),
        (key_uri(body, viewing.key_id), {}),  # no grant
        (key_uri(body, viewing.key_id), {"Authorization": "Bearer forged.grant"}),
        (f"{media}/video_540p/seg_00001.m4s", grant),
        (f"{media}/images/poster.jpg", grant),
        (f"{media}/video_540p/seg_99999.m4s", grant),
        (f"/v1/playback/sessions/{sid}/playlists/nope.m3u8", grant),
        (f"/v1/playback/sessions/{'X' * 32}/master.m3u8", grant),  # not a session id
        (f"/v1/playback/sessions/{sid}/keys/not-a-key-id", grant),
        (f"/v1/playback/sessions/{sid}/playlists/{'a' * 301}.m3u8", grant),
        (master + "?token=" + "x" * 5000, {}),
    ]
    declared = TestClient(create_app(fast_hot_paths=False), raise_server_exceptions=False)
    for path, headers in requests:
        fast = viewing.client.get(path, headers=headers)
        assert _answer(fast) == _answer(declared.get(path, headers=headers)), path


def test_the_lane_is_built_from_the_declared_routes_and_is_the_innermost_middleware(
    viewing: Viewing,
) -> None:
    app = create_app()
    # Outermost first: request context (id, logs, metrics, security headers), then CORS and
    # the request limits when configured, the lane last, right before the router.
    layers: list[object] = [m.cls for m in app.user_middleware]
    assert layers[0] is RequestContextMiddleware
    assert layers[-1] is HotPaths
    declared = {
        str(getattr(r, "path", ""))
        for r in routes.router.routes
        if getattr(r, "endpoint", None) in routes.HOT_ENDPOINTS
    }
    assert len(declared) == 4

    async def no_router(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError(f"the lane passed {scope['path']} on")

    lane = HotPaths(no_router)
    assert {route.path for _, route, _ in lane.routes} == declared
    # The lane alone answers a key request, labelled by the declared template.
    body = started(viewing)
    answer = TestClient(lane).get(
        key_uri(body, viewing.key_id), headers=viewing.grant_headers(body["token"])
    )
    assert answer.status_code == 200
    assert len(answer.content) == 16
    # Through the app: the same middleware as every route (request id, metrics by template).
    answer = viewing.client.get(
        key_uri(body, viewing.key_id), headers=viewing.grant_headers(body["token"])
    )
    assert answer.status_code == 200
    assert answer.headers["x-request-id"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    metrics = viewing.client.get("/metrics").text
    assert 'route="/v1/playback/sessions/{session_id}/keys/{key_id}"' in metrics
