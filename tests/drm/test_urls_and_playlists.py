"""Signed media URLs (HMAC, S3 presigned, CloudFront) and per-session playlist rewriting."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from core.errors import Forbidden
from core.settings import MediaDelivery, Settings
from drm.playlists import SessionUrls, compile_playlist, render
from drm.urls import api_signer, cloudfront_signer, verify_media_signature

KEY_ID = "ab" * 16
SID = "cd" * 16


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


def test_every_segment_is_signed_and_the_key_points_at_the_session() -> None:
    template = compile_playlist(long_playlist(3), "video_540p.m3u8")
    text = render(template, SessionUrls(SID, api_signer(SID, settings=Settings())))
    assert f'URI="/v1/playback/sessions/{SID}/keys/{KEY_ID}"' in text
    assert "127.0.0.1:8000" not in text
    urls = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(urls) == 3
    init = text.split('#EXT-X-MAP:URI="', 1)[1].split('"', 1)[0]
    for url in [init, *urls]:
        parts = urlsplit(url)
        rel = parts.path.split("/media/", 1)[1]
        query = parse_qs(parts.query)
        assert rel.startswith("video_540p/")
        verify_media_signature(SID, int(query["exp"][0]), query["sig"][0])
    # One signature per session and expiry covers the session's release folder (the media
    # route maps the session to that folder), so every URL of the playlist carries it.
    assert len({parse_qs(urlsplit(u).query)["sig"][0] for u in urls}) == 1
    query = parse_qs(urlsplit(urls[0]).query)
    with pytest.raises(Forbidden) as other_session:
        verify_media_signature("ef" * 16, int(query["exp"][0]), query["sig"][0])
    assert other_session.value.code == "url_signature_invalid"
    with pytest.raises(Forbidden) as longer:
        verify_media_signature(SID, int(query["exp"][0]) + 60, query["sig"][0])
    assert longer.value.code == "url_signature_invalid", "the expiry cannot be extended"
    with pytest.raises(Forbidden) as late:
        verify_media_signature(
            SID, int(query["exp"][0]), query["sig"][0], now=int(query["exp"][0]) + 1
        )
    assert late.value.code == "url_expired"


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


def test_a_two_hour_playlist_is_signed_whole() -> None:
    # Its speed is measured by benchmarks/playback.py (signing_1200_segments_ms), not here.
    template = compile_playlist(long_playlist(1200), "video_540p.m3u8")
    text = render(template, SessionUrls(SID, api_signer(SID, settings=Settings())))
    assert text.count("sig=") == 1201  # 1,200 segments and the init segment


def test_cloudfront_urls_carry_a_policy_cloudfront_can_verify(tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "cf.pem"
    pem.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    settings = Settings(
        media_delivery=MediaDelivery.cloudfront,
        cloudfront_domain="d123.cloudfront.net",
        cloudfront_key_pair_id="K2JCJMDEHXQW5F",
        cloudfront_private_key_file=pem,
    )
    sign = cloudfront_signer("hls/r1/1", settings=settings)
    url = sign("video_540p/seg_00001.m4s")
    parts = urlsplit(url)
    assert parts.netloc == "d123.cloudfront.net"
    assert parts.path == "/hls/r1/1/video_540p/seg_00001.m4s"
    query = parse_qs(parts.query)
    assert query["Key-Pair-Id"] == ["K2JCJMDEHXQW5F"]

    def unb64(value: str) -> bytes:  # CloudFront's URL-safe base64 variant
        return base64.b64decode(value.replace("-", "+").replace("_", "=").replace("~", "/"))

    policy = unb64(query["Policy"][0])
    statement = json.loads(policy)["Statement"][0]
    assert statement["Resource"] == "https://d123.cloudfront.net/hls/r1/1/*"
    assert statement["Condition"]["DateLessThan"]["AWS:EpochTime"] > time.time() + 3600
    # What CloudFront does with the public key: verify RSA-SHA1 over the policy.
    private.public_key().verify(
        unb64(query["Signature"][0]),
        policy,
        padding.PKCS1v15(),
        hashes.SHA1(),  # noqa: S303
    )
    other = urlsplit(sign("audio_0_en/seg_00001.m4s"))
    assert parse_qs(other.query)["Signature"] == query["Signature"]


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
