"""Masters as studios send them: teasers of a second, VFR phone clips with dropouts,
anamorphic SD. Real FFmpeg on small generated media; frames and sizes read back from the
output."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from core.settings import get_settings
from tests.transcoding.conftest import ffmpeg, ffprobe_json
from transcoding import pipeline
from transcoding.encode import encode_ladder
from transcoding.images import make_poster, make_thumbnail_sprite
from transcoding.policy import check_master

pytestmark = [pytest.mark.slow, pytest.mark.backend_agnostic]

FULL_RATE = 30
VFR_SECONDS = 3


@dataclass(frozen=True)
class OddMasters:
    teaser: Path  # 1 s, 320x180, 24 fps
    trailer: Path  # 3 s, 320x180, 24 fps
    vfr: Path  # 3 s at 30 fps, every other frame dropped in [1 s, 2 s): avg 25 fps
    pal: Path  # 2 s PAL 720x576, SAR 16:15 (shown 768x576)


def _frame_luma_master(path: Path) -> None:
    """Frame n is flat grey at luma 16 + 2n, so each output frame says which source frame
    it came from; frames of the middle second are dropped every other one."""
    ffmpeg(
        "-f", "lavfi",
        "-i", f"nullsrc=s=320x180:r={FULL_RATE}:d={VFR_SECONDS},"
        "geq=lum='16+2*N':cb=128:cr=128,select='not(between(t,1,1.999)*mod(n,2))'",
        "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0",
        "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip


@pytest.fixture(scope="session")
def odd_masters(tmp_path_factory: pytest.TempPathFactory) -> OddMasters:
    d = tmp_path_factory.mktemp("odd-masters")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    teaser, trailer = d / "teaser.mp4", d / "trailer.mp4"
    for path, seconds in ((teaser, 1), (trailer, 3)):
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=320x180:r=24:d={seconds}", *x264, str(path))
    vfr = d / "vfr.mp4"
    _frame_luma_master(vfr)
    pal = d / "pal.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=720x576:r=25:d=2,setsar=16/15", *x264, str(pal)
    )  # fmt: skip
    return OddMasters(teaser=teaser, trailer=trailer, vfr=vfr, pal=pal)


def _video_info(path: Path) -> dict[str, str]:
    streams = json.loads(
        ffprobe_json(
            "-count_frames",
            "-show_entries",
            "stream=width,height,sample_aspect_ratio,r_frame_rate,nb_read_frames",
            str(path),
        )
    )["streams"]
    return {k: str(v) for k, v in streams[0].items()}


def _source_luma(n: int) -> float:
    """Source frame n's luma (16 + 2n, limited range) as full-range grey reads it."""
    return 2 * n * 255 / 219


def _frame_lumas(path: Path) -> list[float]:
    """Mean full-range grey of every decoded frame."""
    video = _video_info(path)
    width, height = int(video["width"]), int(video["height"])
    raw = subprocess.run(
        [get_settings().ffmpeg_path, "-v", "error", "-i", str(path), "-f", "rawvideo",
         "-pix_fmt", "gray", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    size = width * height
    return [sum(raw[i : i + size]) / size for i in range(0, len(raw), size)]


def test_vfr_master_keeps_every_frame_where_it_ran_at_full_rate(
    odd_masters: OddMasters, tmp_path: Path
) -> None:
    probe = check_master(odd_masters.vfr)
    video = probe.primary_video
    assert video is not None
    assert video.variable_frame_rate
    assert video.avg_frame_rate == Fraction(25)  # what the old rule snapped to
    ladder = pipeline.plan(probe)
    assert ladder.frame_rate == FULL_RATE
    result = encode_ladder(probe, ladder, tmp_path)
    for rendition in result.renditions:
        info = _video_info(rendition.path)
        assert info["r_frame_rate"] == "30/1"
        assert int(info["nb_read_frames"]) == FULL_RATE * VFR_SECONDS
    lumas = _frame_lumas(result.renditions[0].path)
    full_rate = [*range(0, FULL_RATE), *range(2 * FULL_RATE, 3 * FULL_RATE)]
    # Output frame n is source frame n wherever the source ran at 30 fps: none dropped.
    off = [n for n in full_rate if abs(lumas[n] - _source_luma(n)) > 1.0]
    assert off == [], [(n, round(lumas[n], 1), round(_source_luma(n), 1)) for n in off]
    # In the dropout second each kept frame is shown twice (held, not interpolated).
    dropout = range(FULL_RATE, 2 * FULL_RATE)
    assert all(abs(lumas[n] - _source_luma(n - n % 2)) <= 1.0 for n in dropout)


def test_anamorphic_pal_gives_monotonic_rates_and_display_aspect_images(
    odd_masters: OddMasters, tmp_path: Path
) -> None:
    probe = check_master(odd_masters.pal)
    rungs = pipeline.plan(probe).rungs
    assert [(r.name, r.width, r.height) for r in rungs] == [
        ("576p", 768, 576),
        ("540p", 720, 540),
        ("360p", 480, 360),
        ("234p", 312, 234),
    ]
    rates = [r.bitrate for r in rungs]
    assert rates == sorted(rates, reverse=True)
    assert len(set(rates)) == len(rates)
    poster = _video_info(make_poster(probe, tmp_path / "poster.jpg"))
    assert (poster["width"], poster["height"]) == ("768", "576")  # 4:3 as shown, not 5:4
    assert poster.get("sample_aspect_ratio", "1:1") in ("1:1", "0:1")
    sprite = make_thumbnail_sprite(probe, tmp_path / "sprite")
    assert (sprite.tile_width, sprite.tile_height) == (160, 120)


@pytest.mark.parametrize(("which", "thumbnails"), [("teaser", 4), ("trailer", 10)])
def test_short_masters_get_a_poster_and_a_sprite_sized_to_their_length(
    odd_masters: OddMasters, tmp_path: Path, which: str, thumbnails: int
) -> None:
    probe = check_master(getattr(odd_masters, which))
    poster = _video_info(make_poster(probe, tmp_path / "poster.jpg"))
    assert (poster["width"], poster["height"]) == ("320", "180")
    sprite = make_thumbnail_sprite(probe, tmp_path / "sprite")
    cues = [
        line for line in sprite.vtt.read_text().splitlines() if "#xywh=" in line
    ]  # one per thumbnail
    assert len(cues) == thumbnails
    assert sprite.interval == pytest.approx((probe.duration or 0) / thumbnails, abs=0.06)
    sheet = _video_info(sprite.images[0])
    # One row of exactly as many tiles as thumbnails, not a 10x10 sheet of black.
    assert (sheet["width"], sheet["height"]) == (str(160 * min(thumbnails, 10)), "90")
    last = cues[-1].rsplit("=", 1)[1].split(",")
    assert int(last[0]) + int(last[2]) <= int(sheet["width"])
