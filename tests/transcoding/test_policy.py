"""Probe and input policy: real files (small, FFmpeg-made) and hostile inputs."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import pytest

from core.errors import InvalidInput
from tests.transcoding.conftest import Masters, ffmpeg
from transcoding.ladder import plan_ladder
from transcoding.policy import (
    MASTER_DEMUXERS,
    PolicyLimits,
    check_audio_sidecar,
    check_master,
    check_subtitle_sidecar,
)
from transcoding.probe import parse_probe_json, probe
from transcoding.tools import ToolFailed

pytestmark = [pytest.mark.slow, pytest.mark.backend_agnostic]


def refused(path: Path, limits: PolicyLimits | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        check_master(path, limits or PolicyLimits())
    # Nothing from the host may leak into the reason either.
    assert "root:" not in info.value.detail
    return info.value


# --------------------------------------------------------------------------- real masters
def test_hd_master_is_accepted_and_described(masters: Masters) -> None:
    result = check_master(masters.hd)
    assert "mp4" in result.format_names
    assert result.duration == pytest.approx(12.0, abs=0.1)
    video = result.primary_video
    assert video is not None
    assert (video.codec, video.width, video.height, video.bit_depth) == ("h264", 1920, 1080, 8)
    assert video.frame_rate == Fraction(24)
    assert not video.interlaced
    assert not video.variable_frame_rate
    assert [(a.codec, a.channels, a.language) for a in result.audio] == [("aac", 2, "eng")]


def test_2k_master_plans_a_2560x1440_top_rung(masters: Masters) -> None:
    plan = plan_ladder(check_master(masters.qhd))
    assert [(r.width, r.height) for r in plan.rungs][:2] == [(2560, 1440), (1920, 1080)]
    assert plan.gop_frames == 48


def test_phone_rotation_is_read_from_the_display_matrix(masters: Masters) -> None:
    video = check_master(masters.phone).primary_video
    assert video is not None
    assert video.rotation in (90, 270)
    assert video.display_size == (360, 640)


def test_interlaced_mpeg2_in_ts_without_audio(masters: Masters) -> None:
    result = check_master(masters.interlaced)
    video = result.primary_video
    assert video is not None
    assert result.format_name == "mpegts"
    assert video.interlaced
    assert video.display_size == (768, 576)  # SAR 16:15 applied
    assert result.audio == ()


def test_ten_bit_five_one_and_embedded_subtitles(masters: Masters) -> None:
    result = check_master(masters.ten_bit)
    video = result.primary_video
    assert video is not None
    assert video.bit_depth == 10
    assert result.audio[0].channels == 6
    assert [(s.codec, s.language, s.is_text) for s in result.subtitles] == [("subrip", "eng", True)]


def test_audio_sidecars(masters: Masters) -> None:
    assert check_audio_sidecar(masters.dub_wav).audio[0].channels == 2
    assert check_audio_sidecar(masters.commentary_wav).audio[0].channels == 1
    with pytest.raises(InvalidInput) as info:
        check_audio_sidecar(masters.hd)
    assert info.value.code == "unexpected_video_stream"


def test_subtitle_sidecars_are_parsed_by_our_code(masters: Masters) -> None:
    assert len(check_subtitle_sidecar(masters.srt_en)) == 2
    assert len(check_subtitle_sidecar(masters.vtt_fr)) == 2


def test_limits_give_stable_codes(masters: Masters) -> None:
    assert refused(masters.hd, PolicyLimits(max_duration=10)).code == "duration_too_long"
    assert refused(masters.qhd, PolicyLimits(max_width=1920)).code == "resolution_too_large"
    assert refused(masters.hd, PolicyLimits(max_streams=1)).code == "too_many_streams"
    assert refused(masters.hd, PolicyLimits(max_file_size=1000)).code == "file_too_large"


def test_vfr_is_detected_from_r_and_avg_frame_rate() -> None:
    data = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "10", "size": "1"},
        "streams": [
            {
                "index": 0,
                "codec_type": "video",
                "codec_name": "hevc",
                "width": 1920,
                "height": 1080,
                "pix_fmt": "yuv420p10le",
                "r_frame_rate": "60/1",
                "avg_frame_rate": "28971/1000",
                "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}],
            }
        ],
    }
    video = parse_probe_json(data, Path("x.mov")).primary_video
    assert video is not None
    assert video.variable_frame_rate
    assert video.bit_depth == 10
    assert video.rotation == 270
    assert video.display_size == (1080, 1920)


# ------------------------------------------------------------------------- hostile inputs
def test_hls_playlist_pointing_at_etc_passwd_is_refused(tmp_path: Path) -> None:
    hostile = tmp_path / "movie.mp4"  # the extension lies, as an attacker's would
    hostile.write_text(
        "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    )
    assert refused(hostile).code == "playlist_not_allowed"
    # Even past the sniffing, the demuxer allowlist never lets the hls demuxer run.
    with pytest.raises(ToolFailed) as info:
        probe(hostile, allowed_formats=MASTER_DEMUXERS)
    assert "root:" not in str(info.value)


def test_ffconcat_list_is_refused(tmp_path: Path) -> None:
    hostile = tmp_path / "movie.mov"
    hostile.write_text("ffconcat version 1.0\nfile /etc/passwd\n")
    assert refused(hostile).code == "playlist_not_allowed"


def test_avi_with_an_embedded_playlist_is_refused(tmp_path: Path) -> None:
    avi = tmp_path / "movie.avi"
    playlist = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\nfile:///etc/passwd\n"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", "-c:v", "mpeg4",
        "-metadata", f"comment={playlist}", str(avi),
    )  # fmt: skip
    assert refused(avi).code == "embedded_playlist"


def test_plain_avi_is_an_unsupported_container(tmp_path: Path) -> None:
    avi = tmp_path / "movie.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", "-c:v", "mpeg4", "-f", "avi", str(avi)
    )
    error = refused(avi)
    assert error.code == "unsupported_container"
    assert "avi" in error.detail


def test_truncated_upload_is_refused(tmp_path: Path, masters: Masters) -> None:
    data = masters.hd.read_bytes()  # moov at the end, as FFmpeg writes by default
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert refused(cut).code == "unreadable_media"

    faststart = tmp_path / "faststart.mp4"
    ffmpeg("-i", str(masters.hd), "-c", "copy", "-movflags", "+faststart", str(faststart))
    data = faststart.read_bytes()
    cut_fs = tmp_path / "cut_faststart.mp4"
    cut_fs.write_bytes(data[: len(data) * 6 // 10])
    assert refused(cut_fs).code == "truncated_file"


def test_zero_byte_and_text_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert refused(empty).code == "empty_file"
    text = tmp_path / "notes.mov"
    text.write_text("just some notes\n" * 10)
    assert refused(text).code == "not_media"


def test_audio_only_file_is_not_a_master(masters: Masters, tmp_path: Path) -> None:
    m4a = tmp_path / "audio.m4a"
    ffmpeg("-i", str(masters.dub_wav), "-c:a", "aac", str(m4a))
    assert refused(m4a).code == "no_video_stream"
    shutil.copy(masters.dub_wav, tmp_path / "dub.mov")
    assert refused(tmp_path / "dub.mov").code == "unsupported_container"
