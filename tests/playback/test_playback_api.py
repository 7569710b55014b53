"""Playback through the API as an app sees it: start, grants, playlists, rotated keys,
media, heartbeats, stop, and every refusal with the code the app branches on."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import m3u8
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from drm.playlists import KEY_ID
from tests.playback.conftest import Viewing


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def started(viewing: Viewing, **body: Any) -> dict[str, Any]:
    response = viewing.start(**body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def variant_lines(viewing: Viewing, body: dict[str, Any]) -> tuple[str, list[str]]:
    master = viewing.client.get(
        path_of(body["master_playlist_url"]), headers=viewing.grant_headers(body["token"])
    )
    assert master.status_code == 200, master.text
    uris = [line for line in master.text.splitlines() if line and not line.startswith("#")]
    return master.text, uris


def key_uri(body: dict[str, Any], key_id: str) -> str:
    return f"/v1/playback/sessions/{body['session_id']}/keys/{key_id}"


def decrypt(segment: bytes, key: bytes, sequence: int) -> bytes:
    """Whole-segment AES-128 as HLS defines it: IV = media sequence number."""
    cipher = Cipher(algorithms.AES(key), modes.CBC(sequence.to_bytes(16, "big"))).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(cipher.update(segment) + cipher.finalize()) + unpadder.finalize()


def test_a_paying_viewer_plays_the_encrypted_title_with_rotated_keys(viewing: Viewing) -> None:
    body = started(viewing)
    assert {a["role"] for a in body["audio"]} == {"original", "dub", "commentary"}
    assert [s["language"] for s in body["subtitles"]] == ["en"]
    assert body["key_periods"] == [0, 1]  # at the start: this period and the next one
    c, headers = viewing.client, viewing.grant_headers(body["token"])
    master, variants = variant_lines(viewing, body)
    assert master.startswith("#EXTM3U")
    assert 'NAME="Deutsch"' in master
    assert "TYPE=SUBTITLES" in master
    assert len(variants) == 2
    assert all(f"/v1/playback/sessions/{body['session_id']}/playlists/" in v for v in variants)

    variant = c.get(variants[0], headers=headers)
    assert variant.status_code == 200
    assert variant.headers["cache-control"] == "no-store"
    lines = variant.text.splitlines()
    # One key per 4 s key period of a 12 s film in 2 s segments: 3 keys, changing every
    # second segment, in the order the release's outputs record them.
    keys_in_order = [
        found
        for line in lines
        if line.startswith("#EXT-X-KEY")
        for found in re.findall(r"/keys/([0-9a-f]{32})", line)
    ]
    assert keys_in_order == viewing.key_ids[:3]
    segments = [line for line in lines if line and not line.startswith("#")]
    assert len(segments) == 6
    media = f"/v1/playback/sessions/{body['session_id']}/media/video_"
    assert all(s.startswith(media) for s in segments), segments[:2]

    for index, key_id in enumerate(viewing.key_ids[:2]):
        key = c.get(key_uri(body, key_id), headers=headers)
        assert key.status_code == 200, key.text
        assert len(key.content) == 16
        assert key.headers["cache-control"] == "no-store"
        segment = c.get(segments[2 * index], headers=headers)
        assert segment.status_code == 200, segment.text
        assert segment.content[4:8] not in (b"moof", b"styp"), "segments are not stored clear"
        clear = decrypt(segment.content, key.content, 2 * index)
        assert clear[4:8] in (b"moof", b"styp", b"sidx"), clear[:16]
        # The key of one period does not open the next one.
        if index == 0:
            wrong = c.get(segments[2], headers=headers).content
            try:
                opened = decrypt(wrong, key.content, 2)
            except ValueError:
                opened = b""
            assert opened[4:8] not in (b"moof", b"styp", b"sidx")

    # Subtitles are a granted rendition too.
    subs = [m.uri for m in m3u8.loads(master).media if m.type == "SUBTITLES"]
    assert len(subs) == 1
    cues = c.get(str(subs[0]), headers=headers)
    assert cues.status_code == 200, cues.text
    vtt = [line for line in cues.text.splitlines() if line and not line.startswith("#")]
    assert c.get(vtt[0], headers=headers).text.startswith("WEBVTT")

    # Without the grant: nothing.
    assert c.get(segments[0]).json()["code"] == "not_authenticated"


def test_grants_are_bound_to_their_session_viewer_and_device(viewing: Viewing) -> None:
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
    master = path_of(mine["master_playlist_url"])
    refused = c.get(master, headers={"Authorization": f"Bearer {theirs['token']}"})
    assert (refused.status_code, refused.json()["code"]) == (401, "grant_session_mismatch")
    # A login token is not a grant.
    assert c.get(master, headers=viewing.headers).json()["code"] == "invalid_grant"
    # Nobody may start playback on my ticket.
    assert viewing.start(other_headers).json()["code"] == "ticket_not_found"
    # A second player with my grant on another device gets no key, and no playlist.
    key = key_uri(mine, viewing.key_id)
    bearer = {"Authorization": f"Bearer {mine['token']}"}
    assert c.get(key, headers=bearer).json()["code"] == "device_required"
    elsewhere = c.get(key, headers=bearer | {"X-Device-Id": "laptop-9"})
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "device_mismatch")
    assert c.get(master, headers=bearer | {"X-Device-Id": "x"}).json()["code"] == "device_mismatch"
    assert c.get(key, headers=viewing.grant_headers(mine["token"])).status_code == 200
    # By query (players without headers): the grant is carried into every URL, media too.
    by_query = c.get(master + f"?token={mine['token']}")
    assert by_query.status_code == 200
    variant = next(v for v in by_query.text.splitlines() if v.startswith("/v1/"))
    assert variant.endswith(f"?token={mine['token']}")
    segment = next(s for s in c.get(variant).text.splitlines() if s and not s.startswith("#"))
    assert segment.endswith(f"?token={mine['token']}")
    assert c.get(segment).status_code == 200


def test_a_grant_opens_only_its_release_renditions_and_key_periods(viewing: Viewing) -> None:
    from dataclasses import replace

    from drm import grants

    body = started(viewing)
    c, headers = viewing.client, viewing.grant_headers(body["token"])
    sid = body["session_id"]
    # Period 2 (8-12 s) is not open at the start...
    late = c.get(key_uri(body, viewing.key_ids[2]), headers=headers)
    assert (late.status_code, late.json()["code"]) == (403, "key_not_granted")
    # ...until the viewer is near it: the heartbeat's grant opens periods 1-2, not 0.
    beat = c.post(
        path_of(body["heartbeat_url"]),
        json={"seq": 1, "position_seconds": 9.0, "watched_seconds": 0.0},
        headers=headers,
    )
    assert beat.status_code == 200, beat.text
    assert beat.json()["key_periods"] == [1, 2]
    moved = viewing.grant_headers(beat.json()["token"])
    assert c.get(key_uri(body, viewing.key_ids[2]), headers=moved).status_code == 200
    assert c.get(key_uri(body, viewing.key_ids[0]), headers=moved).status_code == 403
    # A key id of another film: never served.
    assert c.get(key_uri(body, "0" * 32), headers=moved).json()["code"] == "key_not_granted"

    media = f"/v1/playback/sessions/{sid}/media"
    assert c.get(f"{media}/video_540p/seg_00001.m4s", headers=moved).status_code == 200
    # Not a rendition (the release's poster), a climb out of the release, a forged grant:
    # refused.
    for path in ("images/poster.jpg", "video_540p/../images/poster.jpg", "master.m3u8"):
        refused = c.get(f"{media}/{path}", headers=moved)
        assert refused.status_code in (403, 404), (path, refused.text)
    grant = grants.decode(beat.json()["token"])
    # A grant naming only the 270p rendition opens nothing of the 540p one, and a grant for
    # another release's folder cannot reach this release's files.
    narrow = grants.encode(replace(grant, renditions=("video_270p",)))
    assert (
        c.get(
            f"{media}/video_270p/seg_00001.m4s", headers=viewing.grant_headers(narrow)
        ).status_code
        == 200
    )
    other = c.get(f"{media}/video_540p/seg_00001.m4s", headers=viewing.grant_headers(narrow))
    assert (other.status_code, other.json()["code"]) == (403, "media_not_granted")
    elsewhere = grants.encode(replace(grant, hls_prefix="hls/another-release/1"))
    assert (
        c.get(
            f"{media}/video_540p/seg_00001.m4s", headers=viewing.grant_headers(elsewhere)
        ).status_code
        == 404
    )
    forged = grants.encode(replace(grant, renditions=("images",)), secret=b"not our secret")
    assert (
        c.get(f"{media}/images/poster.jpg", headers=viewing.grant_headers(forged)).json()["code"]
        == "invalid_grant"
    )
    # Starting where the viewer left off opens the periods there.
    resumed = started(viewing, position_seconds=9.0)
    assert resumed["key_periods"] == [1, 2]


def test_one_stream_per_ticket_and_another_device_can_take_it(
    viewing: Viewing, configure: Any
) -> None:
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
    old = viewing.client.post(
        path_of(first["refresh_url"]), headers=viewing.grant_headers(first["token"])
    )
    assert (old.status_code, old.json()["code"]) == (410, "session_ended")
    # The tablet takes the stream: the phone's session ends now, its grant runs out.
    taken = viewing.start(tablet, take_over=True)
    assert taken.status_code == 201, taken.text
    with unit_of_work() as session:
        assert session.get_one(PlaybackSession, again["session_id"]).end_reason == "taken_over"
    stop = viewing.client.post(
        path_of(taken.json()["stop_url"]),
        headers={"Authorization": f"Bearer {taken.json()['token']}"},
    )
    assert stop.status_code == 204
    # A session that stops sending heartbeats ends by itself and frees the slot.
    on_phone = started(viewing)
    with unit_of_work() as session:
        row = session.get_one(PlaybackSession, on_phone["session_id"])
        row.last_heartbeat_at -= timedelta(seconds=121)
    assert viewing.start(tablet).status_code == 201
    configure(playback_streams_per_ticket="2")
    assert started(viewing)["session_id"]


def test_heartbeats_renew_the_grant_and_count_once(viewing: Viewing) -> None:
    from sqlalchemy import func, select

    from boxoffice.models import ViewStart
    from core.db import unit_of_work
    from drm import grants

    body = started(viewing)
    c, headers = viewing.client, viewing.grant_headers(body["token"])

    def view_starts() -> int:
        with unit_of_work() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(ViewStart)
                    .where(ViewStart.playback_session_id == body["session_id"])
                )
                or 0
            )

    # Keys write nothing: the view starts at the first heartbeat.
    assert c.get(key_uri(body, viewing.key_id), headers=headers).status_code == 200
    assert view_starts() == 0
    beat = {"seq": 1, "position_seconds": 2.5, "watched_seconds": 2.0}
    first = c.post(path_of(body["heartbeat_url"]), json=beat, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["recorded"] is True
    renewed = grants.decode(first.json()["token"])
    assert renewed.expires_at >= grants.decode(body["token"]).expires_at
    assert renewed.session_id == body["session_id"]
    again = c.post(path_of(body["heartbeat_url"]), json=beat, headers=headers)
    assert again.json()["recorded"] is False  # a retried heartbeat is not counted twice
    assert view_starts() == 1
    refreshed = c.post(
        path_of(body["refresh_url"]), json={"position_seconds": 5.0}, headers=headers
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["key_periods"] == [0, 2]
    fresh = viewing.grant_headers(refreshed.json()["token"])
    assert c.get(path_of(body["master_playlist_url"]), headers=fresh).status_code == 200
    bad = c.post(path_of(body["heartbeat_url"]), json={"seq": -1}, headers=fresh)
    assert bad.json()["code"] == "invalid_input"


def test_key_requests_are_rate_limited_per_session(viewing: Viewing, configure: Any) -> None:
    configure(playback_key_requests_per_minute="3")
    body = started(viewing)
    headers = viewing.grant_headers(body["token"])
    codes = [
        viewing.client.get(key_uri(body, viewing.key_id), headers=headers).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]


def test_start_refusals_have_codes(viewing: Viewing) -> None:
    from tests.helpers import IP_IN, client_from

    with client_from(IP_IN["JP"]) as in_japan:
        assert viewing.start(client=in_japan).json()["code"] == "not_licensed_in_country"
    anonymous = viewing.client.post("/v1/playback/sessions", json={"ticket_id": viewing.ticket_id})
    assert anonymous.status_code == 401


def test_key_id_pattern_in_packaged_playlists_is_the_routes() -> None:
    assert KEY_ID.search("http://x/v1/playback/keys/" + "a" * 32)
