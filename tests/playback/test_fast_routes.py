"""The hot paths' lane (api/hot_paths.py) answers exactly as the declared FastAPI routes do:
status, every header (but the per-request id) and body, for successes, refusals and
malformed requests; and it sits inside the app's middleware, built from the declared
routes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from api.app import create_app
from api.hot_paths import HotPaths
from api.middleware import RequestContextMiddleware
from api.routes import playback as routes
from tests.helpers import asgi_request
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


def _decision_answer(response: object) -> tuple[int, list[tuple[str, str]], object]:
    """A decision's answer with what differs by request alone masked: the new grant and its
    times (signed at the second of the request), and the request id."""
    status, headers, body = _answer(response)
    headers = [(k, v) for k, v in headers if k != "content-length"]
    if not body.startswith(b"{"):
        return status, headers, body
    parsed = json.loads(body)
    for field in ("token", "token_expires_at", "alive_until"):
        if field in parsed:
            parsed[field] = "…"
    return status, headers, parsed


def test_fast_and_declared_decisions_answer_the_same(viewing: Viewing) -> None:
    """Heartbeats and refreshes through the lane and through the router: the same status,
    headers and body for good requests, refusals and every kind of malformed body (those the
    lane hands to the router with the body replayed)."""
    declared = TestClient(create_app(fast_hot_paths=False), raise_server_exceptions=False)
    body = started(viewing)
    sid = body["session_id"]
    grant = viewing.grant_headers(body["token"])
    json_type = {"Content-Type": "application/json"}
    beat = f"/v1/playback/sessions/{sid}/heartbeat"
    refresh = f"/v1/playback/sessions/{sid}/token"
    seq = iter(range(1, 1000))

    def fresh_beat() -> bytes:
        # Each client gets its own new seq, so both count (a repeat is its own case below).
        return json.dumps(
            {"seq": next(seq), "position_seconds": 30.0, "watched_seconds": 30.0}
        ).encode()

    ok, invalid, refused = 200, 422, 401
    cases: list[tuple[str, str, dict[str, str], bytes | None, int]] = [
        ("beat", beat, grant | json_type, None, ok),  # a fresh beat per client
        ("repeat", beat, grant | json_type, b'{"seq": 1, "position_seconds": 30, "watched_seconds": 30}', ok),
        ("negative seq", beat, grant | json_type, b'{"seq": -1, "position_seconds": 0, "watched_seconds": 0}', invalid),
        ("extra field", beat, grant | json_type, b'{"seq": 5, "position_seconds": 0, "watched_seconds": 0, "x": 1}', invalid),
        ("missing field", beat, grant | json_type, b'{"seq": 5}', invalid),
        ("malformed", beat, grant | json_type, b'{"seq": ', invalid),
        ("not an object", beat, grant | json_type, b"[1, 2]", invalid),
        ("null", beat, grant | json_type, b"null", invalid),
        ("empty", beat, grant | json_type, b"", invalid),
        ("text/plain", beat, grant | {"Content-Type": "text/plain"}, b'{"seq": 7, "position_seconds": 0, "watched_seconds": 0}', invalid),
        ("no grant", beat, json_type, b'{"seq": 8, "position_seconds": 0, "watched_seconds": 0}', refused),
        ("forged grant", beat, {"Authorization": "Bearer forged.grant"} | json_type, b'{"seq": 9, "position_seconds": 0, "watched_seconds": 0}', refused),
        ("not a session id", f"/v1/playback/sessions/{'X' * 32}/heartbeat", grant | json_type, b'{"seq": 9, "position_seconds": 0, "watched_seconds": 0}', invalid),
        ("refresh", refresh, grant, b"", ok),
        ("refresh, null", refresh, grant | json_type, b"null", ok),
        ("refresh, seek", refresh, grant | json_type, b'{"position_seconds": 1200}', ok),
        ("refresh, seek out of range", refresh, grant | json_type, b'{"position_seconds": -4}', invalid),
        ("refresh, extra", refresh, grant | json_type, b'{"position": 4}', invalid),
    ]  # fmt: skip
    for name, path, headers, content, status in cases:
        answers = []
        for client in (viewing.client, declared):
            sent = fresh_beat() if content is None else content
            answers.append(_decision_answer(client.post(path, headers=headers, content=sent)))
        assert answers[0] == answers[1], name
        assert answers[0][0] == status, (name, answers[0])
    # A refusal through the lane ends the session as through the router.
    other = viewing.client.post(
        f"/v1/playback/sessions/{sid}/heartbeat",
        headers=viewing.grant_headers(body["token"], device="another-device") | json_type,
        content=fresh_beat(),
    )
    assert other.status_code == 403, other.text


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
    assert len(declared) == 6  # keys, media, two playlists; heartbeat and refresh (POST)

    async def no_router(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError(f"the lane passed {scope['path']} on")

    lane = HotPaths(no_router)
    assert {hot.route.path for hot in lane.routes} == declared
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


def _leave_mid_body(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> list[Any]:
    """A POST whose client sends part of its body and goes away; what the app sent back."""
    messages: Iterator[dict[str, Any]] = iter(
        [
            {"type": "http.request", "body": b'{"seq": 1, "position_seconds": 2', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )  # fmt: skip

    async def receive() -> dict[str, Any]:
        return next(messages)

    return asgi_request(app, "POST", path, headers, receive)


def test_a_decision_whose_client_leaves_mid_body_is_not_run(viewing: Viewing) -> None:
    """A partial body is never taken for a whole one: through the lane and through the
    router, nothing is answered and the heartbeat is not counted."""
    body = started(viewing)
    sid = body["session_id"]
    grant = viewing.grant_headers(body["token"])
    headers = [(k.lower().encode(), v.encode()) for k, v in grant.items()]
    headers += [(b"content-type", b"application/json"), (b"host", b"testserver")]
    path = f"/v1/playback/sessions/{sid}/heartbeat"
    for app in (create_app(), create_app(fast_hot_paths=False)):
        assert _leave_mid_body(app, path, headers) == []
    counted = viewing.client.post(
        path, headers=grant, json={"seq": 1, "position_seconds": 2.0, "watched_seconds": 2.0}
    )
    assert counted.status_code == 200
    assert counted.json()["recorded"] is True  # seq 1 had not been counted
