"""A/B forensic watermark, end to end: the real pipeline encodes and packages both
variants, each session's playlists spell its own codeword, a copy captured through those
playlists with FFmpeg, re-encoded at a third of the bitrate and scaled to 720p, names its
session (and ticket and viewer); an unmarked copy names no one. The same for the cbcs
(CMAF) profile: per-period keys, HLS playlists and the DASH manifest choose the session's
variant per segment, and a capture decrypted with the period keys names its session.

The 1,000-session and 1,000-try figures are benchmarks/watermark.py's. Runs once, in the
embedded profile: the pipeline, grants and playlists of a watermarked release run on
PostgreSQL and S3 in tests/playback/test_screeners.py, and what this adds is media work."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from core.settings import get_settings
from drm import keys as content_keys
from drm.watermark import codeword
from pocketcinema.cli import app
from tests.helpers import auth_header, create_licensed_title, create_studio, create_user
from tests.playback.conftest import (
    WATERMARK_CBCS_KEY_PERIOD_SECONDS,
    WATERMARK_SECONDS,
    PackagedRelease,
    buy_ticket,
    install_release,
    running_api,
)
from tests.transcoding.conftest import ffmpeg

pytestmark = [pytest.mark.slow, pytest.mark.backend_agnostic]


def _start(client: TestClient, title_id: str) -> dict[str, Any]:
    viewer = create_user(f"viewer-{uuid.uuid4().hex[:8]}@example.com")
    headers = auth_header(viewer, device_id="phone-1")
    ticket_id, _ = buy_ticket(client, headers, title_id)
    started = client.post("/v1/playback/sessions", json={"ticket_id": ticket_id}, headers=headers)
    assert started.status_code == 201, started.text
    return {**started.json(), "ticket_id": ticket_id, "viewer_id": viewer.id}


def _capture(url: str, out: Path) -> Path:
    """What a pirate does: record the top variant through the session's own playlists."""
    done = subprocess.run(
        [
            get_settings().ffmpeg_path, "-nostdin", "-v", "error", "-y",
            "-protocol_whitelist", "http,tcp,crypto,hls",
            "-headers", "X-Device-Id: phone-1\r\n",
            "-i", url, "-map", "0:v:0", "-c", "copy", str(out),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def _launder(src: Path, out: Path, preset: str = "veryfast") -> Path:
    """Re-encoded at a third of the top rung's bitrate and scaled to 720p."""
    ffmpeg(
        "-i", str(src), "-vf", "scale=1280:720", "-c:v", "libx264", "-preset", preset,
        "-b:v", "200k", "-maxrate", "200k", "-bufsize", "400k", "-an", str(out),
    )  # fmt: skip
    return out


def _detect(path: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["watermark", "detect", str(path)])
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def test_a_laundered_capture_names_its_session_and_an_unmarked_copy_no_one(
    client: TestClient,
    watermarked: tuple[PackagedRelease, Path],
    configure: Any,
    tmp_path: Path,
) -> None:
    packaged, master_file = watermarked
    configure(geo_fallback_country="US")
    studio = create_studio("Leak Pictures")
    title = create_licensed_title(studio.id, slug=f"leak-{uuid.uuid4().hex[:8]}", playable=False)
    install_release(packaged, title.id, studio.id)
    marks = packaged.release["outputs"]["watermark"]
    assert marks["folders"] == ["video_216p"]
    assert marks["segments"] >= WATERMARK_SECONDS - 1
    with running_api(configure) as server:
        sessions = [_start(client, title.id) for _ in range(4)]
        first = sessions[0]
        url = f"{first['master_playlist_url']}?token={first['token']}"
        master = httpx.get(url, timeout=10).text
        top, low = [line for line in master.splitlines() if line.startswith("/v1/")]
        top_list = httpx.get(f"{server.base_url}{top}", timeout=10).text
        low_list = httpx.get(f"{server.base_url}{low}", timeout=10).text
        # The marked rung spells the session's codeword, segment by segment; the other not.
        served = re.findall(r"/media/(video_216p(?:\.b)?)/seg_(\d+)\.m4s", top_list)
        bits = codeword(first["session_id"], len(served))
        assert [int(folder.endswith(".b")) for folder, _ in served] == bits
        assert 0 < sum(bits) < len(bits)
        assert ".b/" not in low_list
        assert "video_108p/seg_" in low_list
        # The other variant of a segment is never this session's.
        index = next(i for i, b in enumerate(bits) if b == 1)
        other = f"{server.base_url}/v1/playback/sessions/{first['session_id']}/media/video_216p/seg_{index + 1:05d}.m4s"
        refused = httpx.get(other, headers={"Authorization": f"Bearer {first['token']}"})
        assert refused.status_code == 403
        assert refused.json()["code"] == "media_not_granted"

        leak = _capture(url, tmp_path / "capture.mp4")

    # Named among the four sessions (the other three are the copies' innocents; copies of
    # other sessions against 1,000 innocents are benchmarks/watermark.py's).
    code, found = _detect(_launder(leak, tmp_path / "leak.mp4"))
    assert code == 0, json.dumps(found)
    assert found["session_id"] == first["session_id"]
    assert found["ticket_id"] == first["ticket_id"]
    assert found["viewer_id"] == first["viewer_id"]
    assert found["confidence"] > 0.999999
    assert found["candidates"] == 4

    # The film without any variant (the studio's master, laundered at the same rate; the
    # fastest preset is enough to show that nothing is read where nothing was written).
    code, found = _detect(_launder(master_file, tmp_path / "unmarked.mp4", "ultrafast"))
    assert code == 1
    assert found["session_id"] is None


def _decrypted_capture(
    client: TestClient, headers: dict[str, str], playlist: str, work: Path
) -> Path:
    """What a pirate with the period keys does with a cbcs stream: fetch every segment the
    session's playlist lists, join each key period (its init segment, then its segments),
    decrypt it with that period's key (FFmpeg ``-decryption_key``) and join the periods."""
    periods: list[tuple[list[str], str, list[str]]] = []  # (key id, init URL, segment URLs)
    for line in playlist.splitlines():
        found = re.search(r'URI="skd://([0-9a-f]{32})"', line)
        if line.startswith("#EXT-X-MAP:"):
            periods.append(([], line.split('URI="', 1)[1].split('"', 1)[0], []))
        elif found:  # the period's key line follows its EXT-X-MAP
            periods[-1][0].append(found.group(1))
        elif line and not line.startswith("#"):
            periods[-1][2].append(line)

    def get(url: str) -> bytes:
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200, (url, answer.text)
        return bytes(answer.content)

    listing = work / "periods.txt"
    clear_parts = []
    for n, (key_ids, init, segments) in enumerate(periods):
        assert len(key_ids) == 1, key_ids
        key_id = key_ids[0]
        encrypted = work / f"p{n}.mp4"
        encrypted.write_bytes(get(init) + b"".join(get(url) for url in segments))
        clear = work / f"clear{n}.mp4"
        ffmpeg(
            "-decryption_key", content_keys.load_key(key_id)[0].hex(), "-i", str(encrypted),
            "-map", "0:v:0", "-c", "copy", str(clear),
        )  # fmt: skip
        clear_parts.append(clear)
    listing.write_text("".join(f"file '{p}'\n" for p in clear_parts))
    capture = work / "capture.mp4"
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(capture))
    return capture


def test_a_cbcs_capture_decrypted_with_the_period_keys_names_its_session(
    client: TestClient,
    watermarked_cbcs: PackagedRelease,
    configure: Any,
    tmp_path: Path,
) -> None:
    configure(geo_fallback_country="US")
    studio = create_studio("Leak Pictures")
    title = create_licensed_title(studio.id, slug=f"leak-{uuid.uuid4().hex[:8]}", playable=False)
    install_release(watermarked_cbcs, title.id, studio.id)
    marks = watermarked_cbcs.release["outputs"]["watermark"]
    assert marks["folders"] == ["video_216p"]
    periods = len(watermarked_cbcs.release["outputs"]["key_periods"]["key_ids"])
    assert periods == WATERMARK_SECONDS // WATERMARK_CBCS_KEY_PERIOD_SECONDS
    sessions = [_start(client, title.id) for _ in range(4)]
    first = sessions[0]
    headers = {"Authorization": f"Bearer {first['token']}", "X-Device-Id": "phone-1"}
    master = client.get(first["master_playlist_url"], headers=headers).text
    top = next(line for line in master.splitlines() if "video_216p" in line)
    top_list = client.get(top, headers=headers).text

    # HLS: the marked rung spells the codeword over all three key periods; segment numbers
    # run on across periods, so a number is a place on the film's timeline.
    served = re.findall(r"/media/(video_216p(?:\.b)?)/p(\d+)_seg_(\d+)\.m4s", top_list)
    assert [int(number) for _, _, number in served] == list(range(1, len(served) + 1))
    assert {int(period) for _, period, _ in served} == set(range(periods))
    bits = codeword(first["session_id"], len(served))
    assert [int(folder.endswith(".b")) for folder, _, _ in served] == bits
    assert 0 < sum(bits) < len(bits)
    assert top_list.count("#EXT-X-MAP:") == periods
    assert "video_216p.b/" not in "".join(re.findall(r"#EXT-X-MAP:[^\n]*", top_list))

    # DASH: the marked rung is a per-segment list spelling the same codeword; the other
    # rung keeps its template.
    mpd = client.get(first["dash_manifest_url"], headers=headers)
    assert mpd.status_code == 200, mpd.text
    listed = re.findall(r'<SegmentURL media="(video_216p(?:\.b)?)/p\d+_seg_(\d+)\.m4s"', mpd.text)
    assert [int(folder.endswith(".b")) for folder, _ in listed] == bits
    assert 'media="video_108p/p0_seg_$Number%05d$.m4s"' in mpd.text
    assert mpd.text.count("<SegmentList") == periods

    # The other variant of a segment is never this session's, whichever bit it is.
    media = f"/v1/playback/sessions/{first['session_id']}/media"
    for wanted in (0, 1):
        index = next(i for i, b in enumerate(bits) if b == wanted)
        period = int(served[index][1])
        folder = "video_216p" if wanted else "video_216p.b"
        refused = client.get(f"{media}/{folder}/p{period}_seg_{index + 1:05d}.m4s", headers=headers)
        assert refused.status_code == 403
        assert refused.json()["code"] == "media_not_granted"

    leak = _decrypted_capture(client, headers, top_list, tmp_path)
    code, found = _detect(_launder(leak, tmp_path / "leak.mp4"))
    assert code == 0, json.dumps(found)
    assert found["session_id"] == first["session_id"]
    assert found["ticket_id"] == first["ticket_id"]
    assert found["candidates"] == 4
    assert found["confidence"] > 0.999999
