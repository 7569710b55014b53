"""The direct lane (api/direct.py) answers exactly as the router would, for every kind of
key and playlist request, and is labelled like the declared routes in metrics."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from api.routes import playback as routes
from tests.playback.conftest import Viewing
from tests.playback.test_playback_api import bearer, path_of, started

SIGNATURE = re.compile(r"exp=\d+&sig=[0-9a-f]+")


def answer(response: Any) -> tuple[Any, ...]:
    kind = response.headers.get("content-type", "")
    if response.status_code != 200:
        body = response.json()
        return response.status_code, kind, body["code"], body.get("errors") is not None
    text = SIGNATURE.sub("exp&sig", response.content.decode("latin-1"))
    return 200, kind, response.headers.get("cache-control"), response.headers.get("pragma"), text


def test_direct_and_routed_answers_are_the_same(viewing: Viewing) -> None:
    mine = started(viewing)
    sid, token = mine["session_id"], mine["token"]
    prefix = f"/v1/playback/sessions/{sid}"
    key = f"{prefix}/keys/{viewing.key_id}"
    master = path_of(mine["master_playlist_url"])
    routed_client = TestClient(create_app(direct_lane=False), raise_server_exceptions=False)
    variants = [
        line
        for line in viewing.client.get(master, headers=bearer(token)).text.splitlines()
        if line and not line.startswith("#")
    ]
    requests: list[tuple[str, dict[str, str]]] = [
        (key, bearer(token)),
        (f"{prefix}/keys/{viewing.key_id.upper()}", bearer(token)),
        (f"{key}?token={token}", {}),
        (key, {}),  # no token
        (key, bearer("not-a-jwt")),
        (key, bearer(token) | {"X-Device-Id": "someone-elses-phone"}),
        (key, bearer(token) | {"X-Device-Id": "x" * 201}),  # over the declared limit
        (f"{key}?token={'x' * 4097}", {}),  # over the declared limit
        (f"{prefix}/keys/{'0' * 32}", bearer(token)),  # another film's (unknown) key
        (f"{prefix}/keys/not-hex", bearer(token)),  # not the declared pattern
        (f"{key}%0A", bearer(token)),  # a trailing newline is not part of the pattern
        (f"/v1/playback/sessions/{'0' * 32}/keys/{viewing.key_id}", bearer(token)),
        (master, bearer(token)),
        (f"{master}?token={token}", {}),
        (path_of(variants[0]), bearer(token)),
        (f"{prefix}/playlists/../../etc/passwd.m3u8", bearer(token)),
        (f"{prefix}/playlists/v/init.mp4", bearer(token)),
    ]
    repeated = [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer not-a-jwt")]
    with routed_client:
        for path, headers in requests:
            direct = viewing.client.get(path, headers=headers)
            routed = routed_client.get(path, headers=headers)
            assert answer(direct) == answer(routed), path
        for pair in (repeated, repeated[::-1]):  # the first of repeated headers counts
            direct = viewing.client.get(key, headers=pair)
            assert answer(direct) == answer(routed_client.get(key, headers=pair))
    assert answer(viewing.client.get(key, headers=bearer(token)))[0] == 200


def test_direct_routes_are_declared_and_labelled_by_their_template(viewing: Viewing) -> None:
    paths = create_app().openapi()["paths"]
    for route in routes.DIRECT:
        assert "get" in paths[route.path.replace(":path}", "}")], route.path
        assert route.pattern.pattern.startswith(f"^{routes.PREFIX}")
    body = started(viewing)
    key = f"/v1/playback/sessions/{body['session_id']}/keys/{viewing.key_id}"
    assert viewing.client.get(key, headers=bearer(body["token"])).status_code == 200
    refused = viewing.client.get(key, headers={"X-Request-Id": "trace-me-1"})
    assert refused.headers["x-request-id"] == "trace-me-1"
    assert refused.json()["request_id"] == "trace-me-1"
    metrics = viewing.client.get("/metrics").text
    template = "/v1/playback/sessions/{session_id}/keys/{key_id}"
    assert f'route="{template}",status="200"' in metrics
    assert f'route="{template}",status="401"' in metrics


class RouterReached(Exception):
    pass


async def router_must_not_be_reached(scope: Any, receive: Any, send: Any) -> None:
    raise RouterReached(scope["path"])


def test_keys_and_playlists_are_served_without_the_router(viewing: Viewing) -> None:
    import pytest

    from api.direct import DirectDispatch

    body = started(viewing)
    lane = DirectDispatch(
        router_must_not_be_reached,
        prefix=routes.PREFIX,
        routes=routes.DIRECT,
        parse=routes.call_from_scope,
    )
    client = TestClient(lane)  # no lifespan: only the lane and a router that must stay idle
    prefix = f"/v1/playback/sessions/{body['session_id']}"
    key = client.get(f"{prefix}/keys/{viewing.key_id}", headers=bearer(body["token"]))
    assert (key.status_code, len(key.content)) == (200, 16)
    master = client.get(path_of(body["master_playlist_url"]), headers=bearer(body["token"]))
    assert master.text.startswith("#EXTM3U")
    refused = client.get(f"{prefix}/keys/{viewing.key_id}")  # no token: a problem, still here
    assert refused.json()["code"] == "not_authenticated"
    with pytest.raises(RouterReached):  # what the lane is not sure about goes on
        client.get(f"{prefix}/keys/not-hex", headers=bearer(body["token"]))
