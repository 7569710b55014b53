"""The license rules as pure functions: how long a license lasts, what each rung demands."""

from __future__ import annotations

import pytest

from drm.license import (
    Hdcp,
    Security,
    clearkey_key_ids,
    clearkey_license,
    license_seconds,
    rung_heights,
    rung_policy,
)

NOW = 1_800_000_000


@pytest.mark.parametrize(
    ("watch_until", "expected"),
    [
        (None, 7200),  # the rental clock has not started: the cap
        (NOW + 600, 600),  # ten minutes of rental left: ten minutes of license
        (NOW + 86_400, 7200),  # a long rental: the cap
        (NOW, 0),  # over
        (NOW - 5, 0),
    ],
)
def test_a_license_never_outlives_the_rental(watch_until: int | None, expected: int) -> None:
    assert license_seconds(now=NOW, watch_until=watch_until, max_seconds=7200) == expected


def test_tall_rungs_need_hardware_and_hdcp_small_ones_play_in_software() -> None:
    rules = {
        h: rung_policy(h, hardware_min_height=1080, hdcp_min_height=720)
        for h in (1440, 1080, 720, 480)
    }
    assert [(r.security, r.hdcp) for r in rules.values()] == [
        (Security.hardware, Hdcp.v2),
        (Security.hardware, Hdcp.v2),
        (Security.software, Hdcp.v1),
        (Security.software, Hdcp.none),
    ]
    assert rung_heights(["video_1080p", "audio_0_en", "video_480p", "subs_0_en"]) == [1080, 480]


def test_clearkey_requests_and_licenses_are_the_w3c_format() -> None:
    kid = "00112233445566778899aabbccddeeff"
    assert clearkey_key_ids(b'{"kids": ["ABEiM0RVZneImaq7zN3u_w"], "type": "temporary"}') == [kid]
    assert clearkey_license([(kid, bytes(16))]) == (
        b'{"keys":[{"kty":"oct","kid":"ABEiM0RVZneImaq7zN3u_w","k":"AAAAAAAAAAAAAAAAAAAAAA"}],'
        b'"type":"temporary"}'
    )
