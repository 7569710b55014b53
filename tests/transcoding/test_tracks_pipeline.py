"""Masters as studios send them, through the API and the pipeline's own jobs, checked as a
player would: the master playlist's EXT-X-MEDIA renditions, each audio rendition decrypted
and decoded (which tone is in which channel), the WebVTT text.

Each audio stream of a generated master is a sine of its own frequency, so a rendition
that carried the wrong stream (or the first stream twice) is caught by its pitch.
"""

from __future__ import annotations

import itertools
import random
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import m3u8
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import func, select
from sqlalchemy.orm import object_session

from accounts.models import Role
from catalog import tracks as catalog_tracks
from catalog.models import Release, ReleaseStatus, Title
from core import jobs
from core.db import unit_of_work
from core.outbox import OutboxJob
from core.settings import get_settings
from core.storage import get_store
from drm import keys
from tests.helpers import auth_header, create_studio, create_user
from tests.transcoding.conftest import ffmpeg
from tests.transcoding.test_release_flow import StudioSide, new_release, studio, upload_file
from transcoding import detection, service, track_publishing
from transcoding import tasks as registered_jobs
from transcoding.models import EncodeChunk, TranscodeRun

assert registered_jobs.__name__  # importing the module registers the pipeline's jobs
__all__ = ["studio"]
pytestmark = pytest.mark.slow

JOBS = (
    detection.DETECT_JOB,
    service.PREPARE_JOB,
    service.CHUNK_JOB,
    service.PACKAGE_JOB,
    track_publishing.REPUBLISH_JOB,
)
ZH_SRT = "1\n00:00:01,000 --> 00:00:03,000\n你好\uff0c电影。\n\n2\n00:00:04,000 --> 00:00:05,500\n第二句。\n"
# Eleven seconds: the pinned FFmpeg cannot make a thumbnail sprite of a master much
# shorter than ten, and the sprite is not what these tests are about.
SECONDS = 11
VIDEO = ["-f", "lavfi", "-i", f"testsrc2=s=320x180:r=24:d={SECONDS}"]
PCM_8K_STEREO = ["-ac", "2", "-ar", "8000", "-f", "s16le", "-"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "24", "-pix_fmt", "yuv420p"]


def _tone(hz: int, seconds: int = SECONDS) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=f={hz}:d={seconds}:sample_rate=48000"]


# ------------------------------------------------------------------------------ helpers
def run_jobs(release_id: str, done: Callable[[Release], bool], timeout: float = 240) -> None:
    """Run the pipeline's jobs in-process, in order, until ``done`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with unit_of_work() as session:
            release = session.get_one(Release, release_id)
            if done(release):
                return
            assert release.status is not ReleaseStatus.failed, release.failure_reason
            job = session.scalars(
                select(OutboxJob)
                .where(
                    OutboxJob.task.in_(JOBS),
                    OutboxJob.finished_at.is_(None),
                    OutboxJob.failed_at.is_(None),
                )
                .order_by(OutboxJob.created_at)
                .limit(1)
            ).first()
            next_job = (job.id, job.task, dict(job.args)) if job is not None else None
        if next_job is None:
            time.sleep(0.1)
            continue
        outcome, _ = jobs.run_job(next_job[1], next_job[0], next_job[2])
        # A failed job shows as a failed release on the next turn (asserted above).
        assert outcome in ("done", "skipped", "failed"), (next_job[1], outcome)
    raise AssertionError("the jobs did not finish in time")


def transcode(side: StudioSide, release_id: str) -> dict[str, Any]:
    started = side.client.post(f"/v1/studio/releases/{release_id}/transcode", headers=side.headers)
    assert started.status_code == 202, started.text
    run_jobs(release_id, lambda r: r.status is ReleaseStatus.ready)
    body = side.client.get(f"/v1/studio/releases/{release_id}", headers=side.headers).json()
    assert isinstance(body, dict)
    return body


@dataclass(frozen=True)
class Published:
    master_key: str
    prefix: str
    key: bytes
    media: list[dict[str, str]]

    def of(self, kind: str) -> list[dict[str, str]]:
        return [m for m in self.media if m["TYPE"] == kind]


def published(release_id: str) -> Published:
    with unit_of_work() as session:
        release = session.get_one(Release, release_id)
        assert release.master_playlist_key
        assert release.hls_prefix
        master_key, prefix = release.master_playlist_key, release.hls_prefix
        key = keys.release_key(session, release_id).key
    text = get_store().get_bytes(master_key).decode()
    return Published(master_key, prefix, key, [_attributes(m) for m in m3u8.loads(text).media])


def _attributes(media: m3u8.Media) -> dict[str, str]:
    """A rendition's attributes by their HLS names, as a player's menu reads them."""
    named = {
        "TYPE": media.type,
        "URI": media.uri,
        "GROUP-ID": media.group_id,
        "LANGUAGE": media.language,
        "NAME": media.name,
        "DEFAULT": media.default,
        "AUTOSELECT": media.autoselect,
        "FORCED": media.forced,
        "CHANNELS": media.channels,
        "CHARACTERISTICS": media.characteristics,
    }
    return {k: str(v) for k, v in named.items() if v is not None}


def _decrypt(data: bytes, key: bytes, sequence: int) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(sequence.to_bytes(16, "big"))).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def decode_audio(pub: Published, playlist: str, tmp: Path) -> list[list[int]]:
    """Fetch a rendition as a player does (init segment, then each segment decrypted with
    the key and IV = its media sequence number) and decode it: samples per channel."""
    store = get_store()
    text = store.get_bytes(f"{pub.prefix}/{playlist}").decode()
    folder = playlist.rsplit("/", 1)[0] if "/" in playlist else ""
    base = f"{pub.prefix}/{folder}/" if folder else f"{pub.prefix}/"
    parsed = m3u8.loads(text)
    sequence = parsed.media_sequence or 0
    data = b""
    init: str | None = None
    for segment in parsed.segments:
        if segment.init_section is not None and segment.init_section.uri != init:
            init = segment.init_section.uri
            data += store.get_bytes(base + str(init))
        data += _decrypt(store.get_bytes(base + str(segment.uri)), pub.key, sequence)
        sequence += 1
    joined = tmp / f"{playlist.replace('/', '_')}.mp4"
    joined.write_bytes(data)
    raw = subprocess.run(
        [*(get_settings().ffmpeg_path, "-v", "error", "-i", str(joined)), *PCM_8K_STEREO],
        check=True,
        capture_output=True,
    ).stdout
    samples = struct.unpack(f"<{len(raw) // 2}h", raw)
    return [list(samples[0::2]), list(samples[1::2])]


def pitch(samples: list[int], rate: int = 8000) -> float:
    """Frequency of a pure tone from its zero crossings (the middle, away from fades)."""
    middle = samples[len(samples) // 4 : len(samples) * 3 // 4]
    crossings = sum(1 for a, b in itertools.pairwise(middle) if (a < 0) != (b < 0))
    return crossings / 2 / (len(middle) / rate)


def webvtt_text(pub: Published, playlist: str) -> str:
    store = get_store()
    folder = playlist.rsplit("/", 1)[0]
    text = store.get_bytes(f"{pub.prefix}/{playlist}").decode()
    return "".join(
        store.get_bytes(f"{pub.prefix}/{folder}/{line}").decode()
        for line in text.splitlines()
        if line and not line.startswith("#")
    )


def set_original_language(title_id: str, language: str) -> None:
    with unit_of_work() as session:
        session.get_one(Title, title_id).original_language = language


def tracks(side: StudioSide, release_id: str) -> list[dict[str, Any]]:
    response = side.client.get(f"/v1/studio/releases/{release_id}/tracks", headers=side.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list)
    return body


def has_tracks(release: Release) -> bool:
    session = object_session(release)
    assert session is not None
    return bool(catalog_tracks.tracks(session, release.id))


def _close(value: float, expected: float) -> bool:
    return abs(value - expected) / expected < 0.05


# -------------------------------------------------------------------------------- tests
@pytest.mark.backend_agnostic
def test_mkv_with_zho_and_eng_audio_and_srt_then_a_relabel_without_reencoding(
    studio: StudioSide, tmp_path: Path
) -> None:
    srt = tmp_path / "zh.srt"
    srt.write_text(ZH_SRT, encoding="utf-8")
    master = tmp_path / "film.mkv"
    ffmpeg(
        *VIDEO, *_tone(440), *_tone(660), "-i", str(srt),
        "-map", "0", "-map", "1", "-map", "2", "-map", "3", *X264,
        "-c:a", "aac", "-ac", "2", "-c:s", "srt",
        "-metadata:s:a:0", "language=zho", "-metadata:s:a:1", "language=eng",
        "-metadata:s:s:0", "language=chi", "-metadata:s:s:0", "title=简体中文",
        str(master),
    )  # fmt: skip
    set_original_language(studio.title_id, "zh")
    release_id = new_release(studio)
    upload_file(studio, release_id, master, "master")
    body = transcode(studio, release_id)
    assert body["warnings"] == []

    pub = published(release_id)
    audio = pub.of("AUDIO")
    assert [(m["LANGUAGE"], m["NAME"], m["DEFAULT"]) for m in audio] == [
        ("zh", "Chinese", "YES"),
        ("en", "English", "NO"),
    ]
    tones = {m["LANGUAGE"]: decode_audio(pub, m["URI"], tmp_path) for m in audio}
    assert _close(pitch(tones["zh"][0]), 440), "the zh rendition carries the zho stream"
    assert _close(pitch(tones["en"][0]), 660), "the en rendition carries the eng stream"
    (subs,) = pub.of("SUBTITLES")
    assert (subs["LANGUAGE"], subs["NAME"], subs["FORCED"]) == ("zh-Hans", "简体中文", "NO")
    assert "你好\uff0c电影。" in webvtt_text(pub, subs["URI"])
    with unit_of_work() as session:
        langs = {(t.kind.value, t.language) for t in session.get_one(Title, studio.title_id).tracks}
    assert langs == {("audio", "zh"), ("audio", "en"), ("subtitle", "zh-Hans")}

    # The studio relabels the English track; the playlists are republished, nothing encoded.
    listed = tracks(studio, release_id)
    english = next(t for t in listed if t["language"] == "en")
    assert (english["source"], english["role"], english["detected_language"]) == (
        "stream:2",
        "dub",
        "eng",
    )
    audio_playlist = get_store().get_bytes(f"{pub.prefix}/{english['playlist']}")
    with unit_of_work() as session:
        runs_before = session.scalar(select(func.count()).select_from(TranscodeRun))
        chunks_before = session.scalar(select(func.count()).select_from(EncodeChunk))
    changed = studio.client.patch(
        f"/v1/studio/releases/{release_id}/tracks/{english['id']}",
        json={"language": "en-GB", "name": "English (UK dub)", "is_default": True},
        headers=studio.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["edited"] is True
    run_jobs(release_id, lambda r: r.master_playlist_key != pub.master_key, timeout=60)

    after = published(release_id)
    assert [(m["LANGUAGE"], m["NAME"], m["DEFAULT"]) for m in after.of("AUDIO")] == [
        ("zh", "Chinese", "NO"),
        ("en-GB", "English (UK dub)", "YES"),
    ]
    assert get_store().get_bytes(f"{pub.prefix}/{english['playlist']}") == audio_playlist
    assert get_store().exists(pub.master_key), "the old master stays for players holding it"
    with unit_of_work() as session:
        release = session.get_one(Release, release_id)
        assert release.attempt == 1
        assert session.scalar(select(func.count()).select_from(TranscodeRun)) == runs_before
        assert session.scalar(select(func.count()).select_from(EncodeChunk)) == chunks_before
        assert {a["language"] for a in release.outputs["audio"]} == {"zh", "en-GB"}


@pytest.mark.backend_agnostic
def test_mp4_with_a_mov_text_subtitle(studio: StudioSide, tmp_path: Path) -> None:
    srt = tmp_path / "zh.srt"
    srt.write_text(ZH_SRT, encoding="utf-8")
    master = tmp_path / "film.mp4"
    ffmpeg(
        *VIDEO, *_tone(440), "-i", str(srt), "-map", "0", "-map", "1", "-map", "2", *X264,
        "-c:a", "aac", "-ac", "2", "-c:s", "mov_text",
        "-metadata:s:a:0", "language=eng", "-metadata:s:s:0", "language=zho",
        "-disposition:s:0", "forced", str(master),
    )  # fmt: skip
    release_id = new_release(studio)
    upload_file(studio, release_id, master, "master")
    transcode(studio, release_id)
    pub = published(release_id)
    (subs,) = pub.of("SUBTITLES")
    assert (subs["LANGUAGE"], subs["FORCED"]) == ("zh", "YES")
    vtt = webvtt_text(pub, subs["URI"])
    assert "第二句。" in vtt
    assert "00:00:04.000 --> 00:00:05.500" in vtt


@pytest.mark.backend_agnostic
def test_mxf_op1a_with_four_mono_pcm_tracks_becomes_two_stereo_tracks(
    studio: StudioSide, tmp_path: Path
) -> None:
    master = tmp_path / "film.mxf"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=640x360:r=25:d={SECONDS}",
        *_tone(300), *_tone(400), *_tone(500), *_tone(600),
        "-map", "0", "-map", "1", "-map", "2", "-map", "3", "-map", "4",
        "-c:v", "dnxhd", "-profile:v", "dnxhr_lb", "-pix_fmt", "yuv422p",
        "-c:a", "pcm_s24le", "-f", "mxf", str(master),
    )  # fmt: skip
    release_id = new_release(studio)
    upload_file(studio, release_id, master, "master")
    body = transcode(studio, release_id)
    # MXF carries no language: both tracks get the title's and the studio is told.
    assert [w["code"] for w in body["warnings"]] == ["audio_language_untagged"] * 2
    listed = tracks(studio, release_id)
    assert [(t["source"], t["channel_layout"], t["language"]) for t in listed] == [
        ("streams:1+2", "stereo", "en"),
        ("streams:3+4", "stereo", "en"),
    ]
    pub = published(release_id)
    first, second = (decode_audio(pub, m["URI"], tmp_path) for m in pub.of("AUDIO"))
    assert [round(pitch(c), -1) for c in first] == [300, 400]
    assert [round(pitch(c), -1) for c in second] == [500, 600]


@pytest.mark.backend_agnostic
def test_mxf_avc_intra_with_two_mono_tracks(studio: StudioSide, tmp_path: Path) -> None:
    master = tmp_path / "avc_intra.mxf"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=640x360:r=25:d={SECONDS}", *_tone(300), *_tone(400),
        "-map", "0", "-map", "1", "-map", "2",
        # AVC-Intra class: every frame an IDR, High 4:2:2 Intra, 10-bit.
        "-c:v", "libx264", "-preset", "ultrafast", "-x264-params", "keyint=1",
        "-profile:v", "high422", "-pix_fmt", "yuv422p10le",
        "-c:a", "pcm_s24le", "-f", "mxf", str(master),
    )  # fmt: skip
    release_id = new_release(studio)
    upload_file(studio, release_id, master, "master")
    transcode(studio, release_id)
    listed = tracks(studio, release_id)
    assert [(t["source"], t["codec"], t["channel_layout"]) for t in listed] == [
        ("streams:1+2", "pcm_s24le", "stereo")
    ]
    pub = published(release_id)
    (audio,) = pub.of("AUDIO")
    assert [round(pitch(c), -1) for c in decode_audio(pub, audio["URI"], tmp_path)] == [300, 400]


@pytest.mark.backend_agnostic
def test_a_studio_channel_map_regroups_the_mono_tracks(studio: StudioSide, tmp_path: Path) -> None:
    release_id = new_release(studio)
    url = f"/v1/studio/releases/{release_id}/channel-map"
    c = studio.client
    assert c.get(url, headers=studio.headers).json()["groups"] is None
    bad = c.put(url, json={"groups": [[1, 2, 3]]}, headers=studio.headers)
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_input")
    ok = c.put(url, json={"groups": [[2, 1]]}, headers=studio.headers)
    assert ok.status_code == 200, ok.text
    master = tmp_path / "film.mxf"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=640x360:r=25:d={SECONDS}", *_tone(300), *_tone(400),
        *_tone(500), "-map", "0", "-map", "1", "-map", "2", "-map", "3",
        "-c:v", "mpeg2video", "-b:v", "2M", "-c:a", "pcm_s16le", "-f", "mxf", str(master),
    )  # fmt: skip
    upload_file(studio, release_id, master, "master")
    body = transcode(studio, release_id)
    assert "audio_not_in_channel_map" in {w["code"] for w in body["warnings"]}
    pub = published(release_id)
    (only,) = pub.of("AUDIO")
    assert [round(pitch(ch), -1) for ch in decode_audio(pub, only["URI"], tmp_path)] == [400, 300]


@pytest.mark.backend_agnostic
def test_mpeg_ps_archive(studio: StudioSide, tmp_path: Path) -> None:
    master = tmp_path / "archive.vob"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=720x576:r=25:d={SECONDS}", *_tone(550),
        "-c:v", "mpeg2video", "-b:v", "3M", "-c:a", "mp2", "-ac", "2", "-f", "vob", str(master),
    )  # fmt: skip
    release_id = new_release(studio)
    upload_file(studio, release_id, master, "master")
    body = transcode(studio, release_id)
    assert body["outputs"]["variants"], "the picture was packaged"
    pub = published(release_id)
    (audio,) = pub.of("AUDIO")
    assert audio["LANGUAGE"] == "en"
    assert _close(pitch(decode_audio(pub, audio["URI"], tmp_path)[0]), 550)


@pytest.mark.backend_agnostic
def test_a_bitmap_subtitle_is_listed_with_a_warning(studio: StudioSide, tmp_path: Path) -> None:
    sup = tmp_path / "fr.sup"
    sup.write_bytes(pgs_display_set(90000, show=True) + pgs_display_set(270000, show=False))
    master = tmp_path / "film.mkv"
    ffmpeg(
        *VIDEO, *_tone(440), "-i", str(sup), "-map", "0", "-map", "1", "-map", "2", *X264,
        "-c:a", "aac", "-ac", "2", "-c:s", "copy",
        "-metadata:s:a:0", "language=eng", "-metadata:s:s:0", "language=fre", str(master),
    )  # fmt: skip
    release_id = new_release(studio)
    upload_file(studio, release_id, master, "master")
    body = transcode(studio, release_id)
    assert [w["code"] for w in body["warnings"]] == ["subtitle_needs_ocr"]
    pgs = [t for t in tracks(studio, release_id) if t["kind"] == "subtitle"]
    assert [(t["codec"], t["language"], t["status"]) for t in pgs] == [
        ("hdmv_pgs_subtitle", "fr", "unsupported")
    ]
    assert published(release_id).of("SUBTITLES") == []


def test_track_routes_are_studio_scoped_and_validated(studio: StudioSide, tmp_path: Path) -> None:
    master = tmp_path / "film.mp4"
    srt = tmp_path / "zh.srt"
    srt.write_text(ZH_SRT, encoding="utf-8")
    ffmpeg(
        *VIDEO, *_tone(440), "-i", str(srt), "-map", "0", "-map", "1", "-map", "2", *X264,
        "-c:a", "aac", "-c:s", "mov_text", "-metadata:s:s:0", "language=zho", str(master),
    )  # fmt: skip
    release_id = new_release(studio)
    upload_file(studio, release_id, master, "master")
    # Tracks are detected once the upload is complete: the studio reviews them before a run.
    run_jobs(release_id, has_tracks)
    listed = tracks(studio, release_id)
    audio = next(t for t in listed if t["kind"] == "audio")
    subtitle = next(t for t in listed if t["kind"] == "subtitle")
    c, url = studio.client, f"/v1/studio/releases/{release_id}/tracks"

    rival = create_studio("Rival Films")
    rival_headers = auth_header(create_user("boss@rival.example", Role.studio, rival.id))
    for response in (
        c.get(url, headers=rival_headers),
        c.patch(f"{url}/{audio['id']}", json={"name": "x"}, headers=rival_headers),
        c.put(f"/v1/studio/releases/{release_id}/channel-map", json={"groups": None},
              headers=rival_headers),
    ):  # fmt: skip
        assert (response.status_code, response.json()["code"]) == (404, "release_not_found")
    assert (
        c.patch(f"{url}/{'ab' * 16}", json={"name": "x"}, headers=studio.headers).json()["code"]
        == "track_not_found"
    )
    for body, status, code in (
        ({"language": "english!"}, 422, "invalid_input"),
        ({"language": "qq"}, 422, "invalid_locale"),
        ({"unknown": 1}, 422, "invalid_input"),
        ({"name": 'say "hi"'}, 422, "invalid_input"),
        ({"forced": True}, 422, "track_field_not_applicable"),
        ({"role": "commentary", "is_default": True}, 422, "commentary_not_default"),
    ):
        response = c.patch(f"{url}/{audio['id']}", json=body, headers=studio.headers)
        assert (response.status_code, response.json()["code"]) == (status, code), body
        assert response.headers["content-type"] == "application/problem+json"
    role = c.patch(f"{url}/{subtitle['id']}", json={"role": "dub"}, headers=studio.headers)
    assert role.json()["code"] == "track_field_not_applicable"
    # A correction made before the run is what gets packaged, and survives the run's own
    # detection.
    fixed = c.patch(
        f"{url}/{subtitle['id']}",
        json={"language": "zh-Hant", "name": "繁體中文", "sdh": True},
        headers=studio.headers,
    )
    assert fixed.status_code == 200, fixed.text
    started = c.post(f"/v1/studio/releases/{release_id}/transcode", headers=studio.headers)
    assert started.status_code == 202
    run_jobs(release_id, lambda r: r.status is ReleaseStatus.encoding)
    busy = c.put(
        f"/v1/studio/releases/{release_id}/channel-map", json={"groups": [[1]]},
        headers=studio.headers,
    )  # fmt: skip
    assert (busy.status_code, busy.json()["code"]) == (409, "release_busy")
    run_jobs(release_id, lambda r: r.status is ReleaseStatus.ready)
    (subs,) = published(release_id).of("SUBTITLES")
    assert (subs["LANGUAGE"], subs["NAME"]) == ("zh-Hant", "繁體中文")
    assert "public.accessibility.transcribes-spoken-dialog" in subs["CHARACTERISTICS"]


@pytest.mark.backend_agnostic
def test_random_bytes_never_reach_the_pipeline(studio: StudioSide, tmp_path: Path) -> None:
    noise = tmp_path / "film.vob"
    noise.write_bytes(random.Random(11).randbytes(300_000))
    release_id = new_release(studio)
    upload_file(studio, release_id, noise, "master")
    started = studio.client.post(
        f"/v1/studio/releases/{release_id}/transcode", headers=studio.headers
    )
    assert started.status_code == 202
    run_jobs(release_id, lambda r: r.status is ReleaseStatus.failed, timeout=60)
    body = studio.client.get(f"/v1/studio/releases/{release_id}", headers=studio.headers).json()
    assert body["failure_code"] == "unreadable_media"


# ------------------------------------------------------------------- a PGS bitmap stream
def _pgs_segment(pts: int, kind: int, data: bytes) -> bytes:
    return b"PG" + struct.pack(">IIBH", pts, 0, kind, len(data)) + data


def pgs_display_set(pts: int, *, show: bool) -> bytes:
    """One display set of a Blu-ray (PGS) subtitle: a 4x2 bitmap, or the clear that ends
    it. FFmpeg has no encoder for bitmap subtitles from text, so the bytes are written here
    (presentation, window, palette, object, end segments)."""
    objects = 1 if show else 0
    pcs = struct.pack(">HHBHBBBB", 320, 180, 0x10, 0, 0x80, 0, 0, objects)
    if show:
        pcs += struct.pack(">HBBHH", 0, 0, 0, 10, 10)
    out = _pgs_segment(pts, 0x16, pcs)
    out += _pgs_segment(pts, 0x17, struct.pack(">BBHHHH", 1, 0, 10, 10, 4, 2))
    if show:
        out += _pgs_segment(pts, 0x14, bytes([0, 0, 1, 235, 128, 128, 255]))
        body = struct.pack(">HH", 4, 2) + bytes([1, 1, 1, 1, 0, 0]) * 2
        ods = struct.pack(">HBB", 0, 0, 0xC0) + len(body).to_bytes(3, "big") + body
        out += _pgs_segment(pts, 0x15, ods)
    return out + _pgs_segment(pts, 0x80, b"")
