"""The license proxy: the built-in ClearKey server, the three vendor back-ends against
loopback servers speaking their formats, the entitlement they are sent, and every bad input
refused with a code before anything is forwarded.

The proxy's checks do not depend on how the release is protected, so most tests use the
playback tests' shared release (both profiles: the replay guard lives in Redis in the
services profile); what only a cbcs release has (no raw keys, the DASH manifest) uses the
cbcs release, in the embedded profile.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import time
from typing import Any

import pytest

from drm import keys as content_keys
from tests.drm.vendor_servers import (
    FAIRPLAY_SECRET,
    PLAYREADY_SECRET,
    WIDEVINE_IV,
    WIDEVINE_KEY,
    WIDEVINE_PROVIDER,
    VendorServers,
    license_for,
    vendor_servers,
)
from tests.playback.conftest import Viewing, refund


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def clearkey_request(*kids_hex: str) -> bytes:
    return json.dumps(
        {"kids": [b64url(bytes.fromhex(k)) for k in kids_hex], "type": "temporary"}
    ).encode()


def widevine_challenge() -> bytes:
    return b"\x08\x01\x12\x40" + os.urandom(64)


def playready_challenge() -> bytes:
    nonce = base64.b64encode(os.urandom(16)).decode()
    return (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope '
        'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '<AcquireLicense xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols">'
        f"<challenge><Challenge><LA><Nonce>{nonce}</Nonce></LA></Challenge></challenge>"
        "</AcquireLicense></soap:Body></soap:Envelope>"
    ).encode()


def fairplay_spc() -> bytes:
    payload = os.urandom(96)
    return (
        struct.pack(">II", 1, 0)
        + os.urandom(16 + 128 + 20)
        + struct.pack(">I", len(payload))
        + payload
    )


def start(viewing: Viewing) -> dict[str, Any]:
    started = viewing.start()
    assert started.status_code == 201, started.text
    return dict(started.json())


def post_license(
    viewing: Viewing, system: str, body: bytes, grant: str | None, device: str | None = None
) -> Any:
    headers = viewing.grant_headers(grant, device) if grant is not None else {}
    return viewing.client.post(f"/v1/playback/license/{system}", content=body, headers=headers)


@pytest.fixture
def vendors(configure: Any) -> Any:
    with vendor_servers() as servers:
        configure(
            drm_widevine_license_url=f"{servers.base_url}/widevine",
            drm_widevine_provider=WIDEVINE_PROVIDER,
            drm_widevine_signing_key=WIDEVINE_KEY.hex(),
            drm_widevine_signing_iv=WIDEVINE_IV.hex(),
            drm_playready_license_url=f"{servers.base_url}/playready",
            drm_playready_auth_key=PLAYREADY_SECRET,
            drm_fairplay_license_url=f"{servers.base_url}/fairplay",
            drm_fairplay_auth_key=FAIRPLAY_SECRET,
            drm_hardware_min_height="540",
            drm_hdcp_min_height="400",
        )
        yield servers


@pytest.mark.embedded_only  # the cbcs release is transcoded for the embedded profile only
def test_clearkey_license_opens_only_the_granted_key_periods(drm_viewing: Viewing) -> None:
    started = start(drm_viewing)
    assert started["protection"] == "cbcs"
    assert started["dash_manifest_url"].endswith("/manifest.mpd")
    grant = started["token"]
    first, last = started["key_periods"]
    granted = drm_viewing.key_ids[first : last + 1]
    answer = post_license(drm_viewing, "clearkey", clearkey_request(*granted), grant)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    jwks = answer.json()
    assert jwks["type"] == "temporary"
    for entry, kid in zip(jwks["keys"], granted, strict=True):
        assert entry["kty"] == "oct"
        assert entry["kid"] == b64url(bytes.fromhex(kid))
        key = base64.urlsafe_b64decode(entry["k"] + "==")
        assert key == content_keys.load_key(kid)[0]
    # The last period is beyond the window the grant opens at the start of the film.
    beyond = post_license(drm_viewing, "clearkey", clearkey_request(drm_viewing.key_ids[-1]), grant)
    assert beyond.status_code == 403
    assert beyond.json()["code"] == "key_not_granted"
    # A cbcs release gives no raw key from the key route: licenses only.
    raw = drm_viewing.client.get(
        f"/v1/playback/sessions/{started['session_id']}/keys/{granted[0]}",
        headers=drm_viewing.grant_headers(grant),
    )
    assert raw.status_code == 403
    assert raw.json()["code"] == "license_required"


@pytest.mark.embedded_only
def test_session_manifest_and_playlists_point_at_the_session(drm_viewing: Viewing) -> None:
    started = start(drm_viewing)
    headers = drm_viewing.grant_headers(started["token"])
    mpd = drm_viewing.client.get(started["dash_manifest_url"], headers=headers)
    assert mpd.status_code == 200, mpd.text
    assert mpd.headers["content-type"].startswith("application/dash+xml")
    media = f"/v1/playback/sessions/{started['session_id']}/media/"
    assert f"<BaseURL>{media}</BaseURL>" in mpd.text
    assert mpd.text.count("<Period ") == len(drm_viewing.key_ids)
    # Segments are numbered on the film's timeline: key period 1 starts at segment 2.
    segment = drm_viewing.client.get(f"{media}video_180p/p1_seg_00002.m4s", headers=headers)
    assert segment.status_code == 200
    master = drm_viewing.client.get(started["master_playlist_url"], headers=headers)
    variant_url = next(x for x in master.text.splitlines() if x and not x.startswith("#"))
    variant = drm_viewing.client.get(variant_url, headers=headers).text
    # FairPlay, PlayReady and Widevine key lines stay; no "identity" line names a raw key.
    assert 'KEYFORMAT="com.apple.streamingkeydelivery"' in variant
    assert "identity" not in variant
    assert variant.count("#EXT-X-MAP:") == len(drm_viewing.key_ids)


BAD_CHALLENGES = [
    ("clearkey", b"not json", 400, "invalid_challenge"),
    ("clearkey", b'{"kids": ["AAAA"]}', 400, "invalid_challenge"),
    ("clearkey", b"", 400, "invalid_challenge"),
    ("widevine", b"\x00garbage-not-a-signed-message", 400, "invalid_challenge"),
    ("playready", b"<x>not soap</x>", 400, "invalid_challenge"),
    ("playready", b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', 400, "invalid_challenge"),
    ("fairplay", b"\x00\x00\x00\x01short", 400, "invalid_challenge"),
    ("clearkey", b"{" + b" " * (70 * 1024) + b"}", 413, "challenge_too_large"),
]


def test_malformed_and_oversized_challenges_are_refused_unforwarded(
    viewing: Viewing, vendors: VendorServers
) -> None:
    grant = start(viewing)["token"]
    for system, body, status, code in BAD_CHALLENGES:
        answer = post_license(viewing, system, body, grant)
        assert answer.status_code == status, (system, body[:40], answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == code
    assert vendors.received == []


def test_no_challenge_is_forwarded_without_a_valid_grant(
    viewing: Viewing, vendors: VendorServers
) -> None:
    grant = start(viewing)["token"]
    forged = grant[:-4] + ("AAAA" if not grant.endswith("AAAA") else "BBBB")
    for token, device, status, code in [
        (None, None, 401, "not_authenticated"),
        (forged, None, 401, "invalid_grant"),
        (grant, "another-phone", 403, "device_mismatch"),
    ]:
        answer = post_license(viewing, "widevine", widevine_challenge(), token, device)
        assert answer.status_code == status, answer.text
        assert answer.json()["code"] == code
    unknown = post_license(viewing, "primetime", widevine_challenge(), grant)
    assert unknown.status_code == 422
    assert vendors.received == []


def test_vendor_back_ends_get_their_format_and_the_entitlement(
    viewing: Viewing, vendors: VendorServers
) -> None:
    started = start(viewing)
    grant = started["token"]
    first, last = started["key_periods"]
    granted = viewing.key_ids[first : last + 1]

    challenge = widevine_challenge()
    answer = post_license(viewing, "widevine", challenge, grant)
    assert answer.status_code == 200, answer.text
    assert answer.content == license_for(challenge)
    sent = vendors.of("/widevine")[0].decoded
    assert base64.b64decode(sent["payload"]) == challenge
    assert sent["provider"] == WIDEVINE_PROVIDER
    assert [base64.b64decode(s["key_id"]).hex() for s in sent["content_key_specs"]] == granted
    # With hardware from 540 lines, the 540p rung needs HW_SECURE_ALL (5) and HDCP 2.2, the
    # 270p rung plays with software security (1) and no output protection.
    bands = sent["content_key_specs"][0]["video_resolution_constraints"]
    assert [(b["security_level"], b["required_output_protection"]["hdcp"]) for b in bands] == [
        (1, "HDCP_NONE"),
        (5, "HDCP_V2_2"),
    ]
    duration = sent["policy_overrides"]["license_duration_seconds"]
    assert 0 < duration <= 48 * 3600

    challenge = playready_challenge()
    answer = post_license(viewing, "playready", challenge, grant)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    assert base64.b64encode(license_for(challenge)).decode() in answer.text
    entitlement = vendors.of("/playready")[0].decoded
    assert entitlement["content_keys"] == granted
    assert {r["height"]: r["min_security_level"] for r in entitlement["rungs"]} == {
        540: 3000,
        270: 2000,
    }

    spc = fairplay_spc()
    answer = post_license(viewing, "fairplay", spc, grant)
    assert answer.status_code == 200, answer.text
    assert answer.content == license_for(spc)
    assert vendors.of("/fairplay")[0].decoded["asset_id"] == viewing.release_id

    # The same challenge again is a replay: refused, and not forwarded a second time.
    again = post_license(viewing, "fairplay", spc, grant)
    assert again.status_code == 409
    assert again.json()["code"] == "challenge_replayed"
    assert len(vendors.of("/fairplay")) == 1


def test_a_vendor_that_is_off_or_down_is_a_clear_refusal(viewing: Viewing, configure: Any) -> None:
    grant = start(viewing)["token"]
    off = post_license(viewing, "widevine", widevine_challenge(), grant)
    assert off.status_code == 404
    assert off.json()["code"] == "license_system_off"
    configure(drm_fairplay_license_url="http://127.0.0.1:9/none", drm_fairplay_auth_key="k" * 40)
    down = post_license(viewing, "fairplay", fairplay_spc(), grant)
    assert down.status_code == 503
    assert down.json()["code"] == "license_server_unavailable"


def test_a_refunded_ticket_gets_no_license_once_its_grant_ends(
    viewing: Viewing, configure: Any
) -> None:
    # Three seconds: long enough that the first license is asked for inside the grant even on a
    # loaded machine (whole seconds: a one-second grant can end a moment after it is issued).
    configure(playback_grant_seconds="3")
    started = start(viewing)
    issued = time.monotonic()
    grant = started["token"]
    kid = viewing.key_ids[0]
    assert post_license(viewing, "clearkey", clearkey_request(kid), grant).status_code == 200
    refund(viewing.client, viewing)
    refreshed = viewing.client.post(
        f"/v1/playback/sessions/{started['session_id']}/token",
        headers=viewing.grant_headers(grant),
    )
    assert refreshed.status_code == 403
    assert refreshed.json()["code"] == "ticket_refunded"
    time.sleep(max(0.0, issued + 3.1 - time.monotonic()))
    late = post_license(viewing, "clearkey", clearkey_request(kid), grant)
    assert late.status_code == 401
    assert late.json()["code"] == "grant_expired"
