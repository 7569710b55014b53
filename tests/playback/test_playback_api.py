"""Playback through the API as an app sees it: start, playlists, key, heartbeats, stop, and
every refusal with the code the app branches on."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from drm.playlists import KEY_ID
from tests.playback.conftest import Viewing


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def started(viewing: Viewing) -> dict[str, Any]:
    response = viewing.start()
    assert response.status_code == 201, response.text
    return dict(response.json())


def variant_lines(viewing: Viewing, body: dict[str, Any]) -> tuple[str, list[str]]:
    master = viewing.client.get(path_of(body["master_playlist_url"]), headers=bearer(body["token"]))
    assert master.status_code == 200, master.text
    uris = [line for line in master.text.splitlines() if line and not line.startswith("#")]
    return master.text, uris


def test_a_paying_viewer_plays_the_encrypted_title(viewing: Viewing) -> None:
    body = started(viewing)
    assert {a["role"] for a in body["audio"]} == {"original", "dub", "commentary"}
    assert [s["language"] for s in body["subtitles"]] == ["en"]
    c, token = viewing.client, body["token"]
    master, variants = variant_lines(viewing, body)
    assert master.startswith("#EXTM3U")
    assert "TYPE=AUDIO" in master
    assert 'NAME="Deutsch"' in master
    assert "TYPE=SUBTITLES" in master
    assert len(variants) == 2
    assert all(f"/v1/playback/sessions/{body['session_id']}/playlists/" in v for v in variants)

    variant = c.get(variants[0], headers=bearer(token))
    assert variant.status_code == 200
    assert variant.headers["cache-control"] == "no-store"
    key_lines = [line for line in variant.text.splitlines() if line.startswith("#EXT-X-KEY")]
    assert key_lines
    assert all("METHOD=AES-128" in k or "METHOD=SAMPLE-AES" in k for k in key_lines)
    key_uri = key_lines[0].split('URI="', 1)[1].split('"', 1)[0]
    assert key_uri == f"/v1/playback/sessions/{body['session_id']}/keys/{viewing.key_id}"
    segments = [line for line in variant.text.splitlines() if line and not line.startswith("#")]
    assert segments
    assert all("exp=" in s and "sig=" in s for s in segments)

    key = c.get(key_uri, headers=bearer(token))
    assert key.status_code == 200, key.text
    assert len(key.content) == 16
    assert key.headers["cache-control"] == "no-store"

    segment = c.get(segments[0])
    assert segment.status_code == 200
    if "METHOD=AES-128" in key_lines[0]:
        # Whole-segment AES-128: IV = media sequence number (0 for the first segment).
        decryptor = Cipher(algorithms.AES(key.content), modes.CBC(bytes(16))).decryptor()
        padded = decryptor.update(segment.content) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        clear = unpadder.update(padded) + unpadder.finalize()
        assert clear[4:8] in (b"moof", b"styp", b"sidx"), clear[:16]
        assert segment.content[4:8] not in (b"moof", b"styp"), "segments are not stored in clear"

    tampered = segments[0].replace("sig=", "sig=0")
    assert c.get(tampered).json()["code"] == "url_signature_invalid"


def test_tokens_are_bound_to_their_session_and_viewer(viewing: Viewing) -> None:
    from tests.helpers import auth_header, create_user
    from tests.playback.conftest import buy_ticket

    mine = started(viewing)
    other = create_user("other@example.com")
    other_headers = auth_header(other, device_id="other-phone")
    other_ticket, _ = buy_ticket(viewing.client, other_headers, viewing.title_id)
    theirs = viewing.client.post(
        "/v1/playback/sessions", json={"ticket_id": other_ticket}, headers=other_headers
    ).json()
    c = viewing.client
    # Another viewer's token on my session: refused.
    refused = c.get(path_of(mine["master_playlist_url"]), headers=bearer(theirs["token"]))
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_session_mismatch"
    # My login token is not a playback token.
    login = c.get(path_of(mine["master_playlist_url"]), headers=viewing.headers)
    assert login.json()["code"] == "invalid_token"
    # Nobody may start playback on my ticket.
    assert (
        c.post(
            "/v1/playback/sessions", json={"ticket_id": viewing.ticket_id}, headers=other_headers
        ).json()["code"]
        == "ticket_not_found"
    )
    # Someone else's device id claimed with my token is refused.
    wrong_device = c.get(
        path_of(mine["master_playlist_url"]), headers=bearer(mine["token"]) | {"X-Device-Id": "x"}
    )
    assert wrong_device.json()["code"] == "device_mismatch"
    # Playlist and key by query token (players without headers): the token is carried along.
    by_query = c.get(path_of(mine["master_playlist_url"]) + f"?token={mine['token']}")
    assert by_query.status_code == 200
    assert f"?token={mine['token']}" in by_query.text


def test_refund_mid_session_refuses_the_next_key_and_playlist(viewing: Viewing) -> None:
    from tests.playback.conftest import refund

    body = started(viewing)
    c, token = viewing.client, body["token"]
    _, variants = variant_lines(viewing, body)
    key_uri = f"/v1/playback/sessions/{body['session_id']}/keys/{viewing.key_id}"
    assert c.get(key_uri, headers=bearer(token)).status_code == 200
    refund(c, viewing)
    key = c.get(key_uri, headers=bearer(token))
    assert (key.status_code, key.json()["code"]) == (403, "ticket_refunded")
    playlist = c.get(variants[0], headers=bearer(token))
    assert playlist.json()["code"] == "ticket_refunded"
    assert (
        c.post(path_of(body["refresh_url"]), headers=bearer(token)).json()["code"]
        == "ticket_refunded"
    )


def test_a_viewer_moved_to_an_unlicensed_country_is_refused(viewing: Viewing) -> None:
    from tests.helpers import IP_IN, client_from

    body = started(viewing)  # from loopback: the US fallback
    key_uri = f"/v1/playback/sessions/{body['session_id']}/keys/{viewing.key_id}"
    with client_from(IP_IN["FR"]) as in_france:
        refused = in_france.get(key_uri, headers=bearer(body["token"]))
        assert (refused.status_code, refused.json()["code"]) == (403, "not_licensed_in_country")
        master = in_france.get(path_of(body["master_playlist_url"]), headers=bearer(body["token"]))
        assert master.json()["code"] == "not_licensed_in_country"
    with client_from(IP_IN["CA"]) as in_canada:  # licensed there too
        assert in_canada.get(key_uri, headers=bearer(body["token"])).status_code == 200


def test_one_stream_per_ticket_until_stopped_or_silent(viewing: Viewing, configure: Any) -> None:
    from datetime import timedelta

    from core.db import unit_of_work
    from tests.helpers import auth_header
    from tickets.models import PlaybackSession

    first = started(viewing)
    tablet = auth_header(viewing.viewer, device_id="tablet-1")
    second = viewing.start(tablet)
    assert (second.status_code, second.json()["code"]) == (403, "stream_limit_reached")
    assert second.json()["limit"] == 1
    # The same phone starting again replaces its own session instead of being refused.
    again = started(viewing)
    assert again["session_id"] != first["session_id"]
    old = viewing.client.get(path_of(first["master_playlist_url"]), headers=bearer(first["token"]))
    assert (old.status_code, old.json()["code"]) == (410, "session_ended")
    # Stop frees the slot for the tablet.
    stop = viewing.client.post(path_of(again["stop_url"]), headers=bearer(again["token"]))
    assert stop.status_code == 204
    on_tablet = viewing.start(tablet)
    assert on_tablet.status_code == 201
    # A session that stops sending heartbeats ends by itself and frees the slot.
    with unit_of_work() as session:
        row = session.get_one(PlaybackSession, on_tablet.json()["session_id"])
        row.last_heartbeat_at -= timedelta(seconds=121)
    assert started(viewing)["session_id"]
    # A higher limit, configured, lets two screens play.
    configure(playback_streams_per_ticket="2")
    assert viewing.start(tablet).status_code == 201


def test_heartbeats_keep_the_session_alive_and_tokens_refresh(viewing: Viewing) -> None:
    body = started(viewing)
    c, token = viewing.client, body["token"]
    beat = {"seq": 1, "position_seconds": 12.5, "watched_seconds": 3.0}
    first = c.post(path_of(body["heartbeat_url"]), json=beat, headers=bearer(token))
    assert first.status_code == 200, first.text
    again = c.post(path_of(body["heartbeat_url"]), json=beat, headers=bearer(token))
    assert again.json()["recorded"] is False  # a retried heartbeat is not counted twice
    refreshed = c.post(path_of(body["refresh_url"]), headers=bearer(token))
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()["token"]
    assert new != token
    assert c.get(path_of(body["master_playlist_url"]), headers=bearer(new)).status_code == 200
    bad = c.post(path_of(body["heartbeat_url"]), json={"seq": -1}, headers=bearer(new))
    assert bad.json()["code"] == "invalid_input"


def test_key_requests_are_rate_limited_per_session(viewing: Viewing, configure: Any) -> None:
    configure(playback_key_requests_per_minute="3")
    body = started(viewing)
    key_uri = f"/v1/playback/sessions/{body['session_id']}/keys/{viewing.key_id}"
    codes = [
        viewing.client.get(key_uri, headers=bearer(body["token"])).status_code for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    # Another film's key id through this session: not found, never another film's key.
    other = viewing.client.get(
        f"/v1/playback/sessions/{body['session_id']}/keys/{'0' * 32}", headers=bearer(body["token"])
    )
    assert other.status_code in (404, 429)


def test_start_refusals_have_codes(viewing: Viewing) -> None:
    from tests.helpers import IP_IN, client_from

    with client_from(IP_IN["JP"]) as in_japan:
        assert viewing.start(client=in_japan).json()["code"] == "not_licensed_in_country"
    assert (
        viewing.client.post(
            "/v1/playback/sessions", json={"ticket_id": viewing.ticket_id}
        ).status_code
        == 401
    )


def test_key_id_pattern_in_packaged_playlists_is_the_routes() -> None:
    assert KEY_ID.search("http://x/v1/playback/keys/" + "a" * 32)


def test_the_first_key_delivery_records_view_started_once(viewing: Viewing) -> None:
    from sqlalchemy import func, select

    from boxoffice.models import ViewStart
    from core.db import unit_of_work

    body = started(viewing)
    key_uri = f"/v1/playback/sessions/{body['session_id']}/keys/{viewing.key_id}"
    for _ in range(3):
        assert viewing.client.get(key_uri, headers=bearer(body["token"])).status_code == 200
    with unit_of_work() as session:
        starts = session.scalar(
            select(func.count())
            .select_from(ViewStart)
            .where(ViewStart.playback_session_id == body["session_id"])
        )
    assert starts == 1
