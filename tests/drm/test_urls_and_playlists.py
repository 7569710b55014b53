"""Media URLs under a grant (API-served, CloudFront, S3 presigned) and per-session playlist
rewriting."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from core.settings import MediaDelivery, Settings
from drm.grants import Grant
from drm.playlists import SessionUrls, compile_playlist, render
from drm.urls import media_signer

KEY_ID = "ab" * 16
SID = "cd" * 16


def a_grant(**changes: object) -> Grant:
    values: dict[str, object] = {
        "session_id": SID,
        "ticket_id": "t1",
        "viewer_id": "v1",
        "title_id": "f1",
        "release_id": "r1",
        "hls_prefix": "hls/r1/1",
        "master": "master.m3u8",
        "country": "US",
        "device_id": "phone-1",
        "renditions": ("audio_0_en", "subs_0_en", "video_540p"),
        "key_periods": (0, 1),
        "key_ids": (KEY_ID,),
        "expires_at": int(time.time()) + 60,
    }
    values.update(changes)
    return Grant(**values)  # type: ignore[arg-type]


def long_playlist(segments: int) -> str:
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:6",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        '#EXT-X-MAP:URI="video_540p/init.mp4"',
        f'#EXT-X-KEY:METHOD=AES-128,URI="http://127.0.0.1:8000/v1/playback/keys/{KEY_ID}",KEYFORMAT="identity"',
    ]
    for n in range(segments):
        lines += ["#EXTINF:6.000,", f"video_540p/seg_{n + 1:05d}.m4s"]
    return "\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n"


def test_every_segment_is_under_the_grant_and_the_key_points_at_the_session() -> None:
    template = compile_playlist(long_playlist(3), "video_540p.m3u8")
    assert template.folders == frozenset({"video_540p"})
    sign = media_signer(a_grant(), settings=Settings())
    text = render(template, SessionUrls(SID, sign))
    media = f"/v1/playback/sessions/{SID}/media/video_540p/"
    assert f'#EXT-X-MAP:URI="{media}init.mp4"' in text
    assert f"\n{media}seg_00003.m4s\n" in text
    assert f'URI="/v1/playback/sessions/{SID}/keys/{KEY_ID}"' in text
    # Players without headers: the grant rides along in every URL.
    carried = render(template, SessionUrls(SID, media_signer(a_grant(), "?token=g"), "?token=g"))
    assert f"{media}seg_00001.m4s?token=g" in carried
    assert f"/keys/{KEY_ID}?token=g" in carried


def test_a_master_keeps_its_renditions_and_points_them_at_the_session() -> None:
    master = "\n".join(
        [
            "#EXTM3U",
            '#EXT-X-MEDIA:TYPE=AUDIO,URI="audio_1_de.m3u8",GROUP-ID="audio",LANGUAGE="de",NAME="Deutsch",DEFAULT=NO,AUTOSELECT=YES',
            '#EXT-X-MEDIA:TYPE=SUBTITLES,URI="subs_0_en/subtitles.m3u8",GROUP-ID="subs",LANGUAGE="en",NAME="English"',
            '#EXT-X-STREAM-INF:BANDWIDTH=1500000,AUDIO="audio",SUBTITLES="subs"',
            "video_540p.m3u8",
            '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI="video_540p_iframes.m3u8"',
        ]
    )
    text = render(compile_playlist(master, "master.m3u8"), SessionUrls(SID, str, "?token=t"))
    base = f"/v1/playback/sessions/{SID}/playlists/"
    assert f'URI="{base}audio_1_de.m3u8?token=t"' in text
    assert 'NAME="Deutsch"' in text
    assert f'URI="{base}subs_0_en/subtitles.m3u8?token=t"' in text
    assert f"\n{base}video_540p.m3u8?token=t\n" in text
    assert f'URI="{base}video_540p_iframes.m3u8?token=t"' in text


def test_playlists_that_escape_the_release_folder_are_refused() -> None:
    with pytest.raises(ValueError, match="escapes"):
        compile_playlist("#EXTM3U\n#EXTINF:6,\n../../other/seg.m4s\n", "video.m3u8")
    with pytest.raises(ValueError, match="unexpected"):
        compile_playlist("#EXTM3U\n#EXTINF:6,\nhttp://evil.example/seg.m4s\n", "video.m3u8")


def test_a_two_hour_playlist_is_rendered_whole() -> None:
    # Its speed is measured by benchmarks/playback.py, not here.
    template = compile_playlist(long_playlist(1200), "video_540p.m3u8")
    text = render(template, SessionUrls(SID, media_signer(a_grant(), settings=Settings())))
    assert text.count("/media/video_540p/") == 1201  # 1,200 segments and the init segment


def test_cloudfront_urls_point_at_the_release_folder_on_the_cdn() -> None:
    settings = Settings(
        media_delivery=MediaDelivery.cloudfront, cloudfront_domain="d123.cloudfront.net"
    )
    url = media_signer(a_grant(), "?token=g", settings=settings)("video_540p/seg_00001.m4s")
    # The edge function (infra/edge/grant-check.js) checks the grant against this path.
    assert url == "https://d123.cloudfront.net/hls/r1/1/video_540p/seg_00001.m4s?token=g"


def test_s3_presigned_segment_urls() -> None:
    import boto3
    from botocore.config import Config

    from core.storage import S3Store

    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        config=Config(signature_version="s3v4"),
    )
    url = S3Store("media", client).presign_get("hls/r1/1/video_540p/seg_00001.m4s", 3600)
    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["3600"]
    assert "X-Amz-Signature" in query
