"""Ladder, chunk and subtitle planning: pure functions, no FFmpeg."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.errors import InvalidInput
from transcoding.cadence import full_rate_interval
from transcoding.chunking import Chunk, chunk_lengths, plan_chunks, pool_makespan
from transcoding.encode import build_ladder_command
from transcoding.ladder import DEFAULT_PROFILE, LadderProfile, load_profile, plan_ladder
from transcoding.probe import ProbeResult, VideoStream
from transcoding.subtitles import parse_subtitles, to_webvtt


def source(
    width: int,
    height: int,
    *,
    rate: Fraction = Fraction(24),
    avg: Fraction | None = None,
    rotation: int = 0,
    sar: Fraction = Fraction(1),
    field_order: str = "progressive",
) -> ProbeResult:
    video = VideoStream(
        index=0,
        codec="h264",
        profile="High",
        width=width,
        height=height,
        pix_fmt="yuv420p",
        bit_depth=8,
        sample_aspect_ratio=sar,
        field_order=field_order,
        rotation=rotation,
        r_frame_rate=rate,
        avg_frame_rate=avg or rate,
        duration=60.0,
        language=None,
    )
    return ProbeResult(
        path=Path("m.mp4"), format_name="mov", duration=60.0, size=1, bit_rate=None, video=(video,)
    )


def sizes(probe: ProbeResult, profile: LadderProfile = DEFAULT_PROFILE) -> list[tuple[int, int]]:
    return [(r.width, r.height) for r in plan_ladder(probe, profile).rungs]


def test_16_9_2k_master_gets_the_full_ladder() -> None:
    assert sizes(source(2560, 1440)) == [
        (2560, 1440),
        (1920, 1080),
        (1280, 720),
        (960, 540),
        (640, 360),
        (416, 234),
    ]


def test_scope_2k_master_tops_out_at_2048_wide() -> None:
    assert sizes(source(2048, 858)) == [
        (2048, 858),
        (1920, 804),
        (1280, 536),
        (960, 402),
        (640, 268),
        (416, 174),
    ]


def test_never_upscales_and_keeps_1080p_rate() -> None:
    plan = plan_ladder(source(1920, 1080))
    assert plan.rungs[0].name == "1080p"
    assert (plan.rungs[0].width, plan.rungs[0].bitrate) == (1920, 6_000_000)
    assert all(r.width <= 1920 for r in plan.rungs)


def test_capped_vbr_follows_the_profile() -> None:
    rung = plan_ladder(source(1920, 1080)).rungs[0]
    assert rung.maxrate == 6_600_000
    assert rung.bufsize == 12_000_000


def test_rotation_is_applied_before_sizing() -> None:
    assert sizes(source(1920, 1080, rotation=90))[:2] == [(1080, 1920), (720, 1280)]


def test_anamorphic_pal_uses_display_aspect() -> None:
    plan = plan_ladder(source(720, 576, sar=Fraction(16, 15), field_order="tt"))
    assert plan.deinterlace
    assert (plan.source_width, plan.source_height) == (768, 576)
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in plan.rungs)


def test_source_just_above_a_rung_adds_no_native_rung() -> None:
    assert sizes(source(1000, 562))[0] == (960, 540)
    # ...but one well above the next rung down is offered at its own size.
    assert sizes(source(1600, 900))[0] == (1600, 900)


def test_gop_from_frame_rate() -> None:
    assert plan_ladder(source(1280, 720, rate=Fraction(24))).gop_frames == 48
    ntsc = plan_ladder(source(1280, 720, rate=Fraction(30000, 1001)))
    assert ntsc.gop_frames == 60
    assert plan_ladder(source(1280, 720, rate=Fraction(120))).frame_rate == Fraction(60)


def test_vfr_is_made_constant_at_its_nominal_rate_not_its_average() -> None:
    # A 30 fps phone clip with dropouts averages 25.4: the old rule (the standard rate
    # nearest the average) encoded it at 25 and dropped every sixth frame where it ran at 30.
    dropouts = source(1280, 720, rate=Fraction(30), avg=Fraction(254, 10))
    assert dropouts.primary_video is not None
    assert dropouts.primary_video.variable_frame_rate
    assert plan_ladder(dropouts).frame_rate == Fraction(30)
    # The measured cadence wins over r_frame_rate, and is snapped when close to a standard:
    # 29.9707 fps (29.97 in a 1/15360 time base) is 29.97, 12.5 fps stays 12.5.
    assert plan_ladder(dropouts, cadence=Fraction(15360 * 2, 1025)).frame_rate == Fraction(
        30000, 1001
    )
    assert plan_ladder(dropouts, cadence=Fraction(25, 2)).frame_rate == Fraction(25, 2)
    # An r_frame_rate that is a time base (Matroska 1000/1) is not a frame rate: the average
    # is all that is left without a measured cadence.
    timebase = source(1280, 720, rate=Fraction(1000), avg=Fraction(29_940, 1000))
    assert plan_ladder(timebase).frame_rate == Fraction(30000, 1001)
    # Above the profile's maximum, still halved.
    assert plan_ladder(source(1280, 720, rate=Fraction(120), avg=Fraction(100))).frame_rate == 60


def test_full_rate_interval_is_the_shortest_common_interval() -> None:
    # 30 fps in a 1/15360 time base (512 ticks), a stretch at 15 fps (1024), one 4-frame gap.
    pts = list(range(0, 512 * 40, 512))
    pts += list(range(pts[-1] + 1024, pts[-1] + 1024 * 20, 1024))
    pts += [pts[-1] + 2048 + 512 * i for i in range(20)]
    assert full_rate_interval(pts) == 512
    # 29.97 in the same time base jitters between 512 and 513 ticks: the group's mean.
    jitter = [round(i * 15360 * 1001 / 30000) for i in range(300)]
    assert full_rate_interval(jitter) == pytest.approx(15360 * 1001 / 30000, rel=1e-3)
    assert full_rate_interval([0, 512, 1024]) is None  # too few frames to tell


@pytest.mark.parametrize(
    "probe",
    [
        source(720, 576, sar=Fraction(16, 15)),  # PAL 4:3 anamorphic: 768x576
        source(720, 576, sar=Fraction(64, 45)),  # PAL 16:9 anamorphic: 1024x576
        source(720, 480, sar=Fraction(10, 11)),  # NTSC 4:3: 654x480
        source(2048, 858),
        source(1920, 1080, rotation=90),
        source(1000, 562),
        source(1440, 1080),
        source(640, 480),
    ],
    ids=["pal-4:3", "pal-16:9", "ntsc", "scope", "portrait", "just-above", "hdv", "vga"],
)
def test_bits_follow_pixels_and_names_follow_sizes(probe: ProbeResult) -> None:
    rungs = plan_ladder(probe).rungs
    for larger, smaller in itertools.pairwise(rungs):
        assert larger.pixels > smaller.pixels
        assert larger.bitrate >= smaller.bitrate, (larger, smaller)
    assert [r.name for r in rungs] == [f"{min(r.width, r.height)}p" for r in rungs]


def test_pal_anamorphic_top_rung_gets_more_bits_than_the_one_below() -> None:
    rungs = plan_ladder(source(720, 576, sar=Fraction(16, 15))).rungs
    assert [(r.name, r.width, r.height) for r in rungs[:2]] == [
        ("576p", 768, 576),
        ("540p", 720, 540),
    ]
    # (The old rule rated 768x576 by the 720p box's share, 1440k, below 720x540's 1500k.)
    assert rungs[0].bitrate > rungs[1].bitrate > rungs[2].bitrate
    # 768x576 has fewer pixels than the full 960x540 box, so fewer bits than its 2000k.
    assert rungs[1].bitrate < rungs[0].bitrate < 2_000_000


def test_sixteen_by_nine_rungs_get_exactly_the_quoted_rate() -> None:
    rates = {r.name: r.bitrate for r in plan_ladder(source(2560, 1440)).rungs}
    assert rates == {
        "1440p": 12_000_000,
        "1080p": 6_000_000,
        "720p": 3_000_000,
        "540p": 2_000_000,
        "360p": 730_000,
        "234p": 145_000,
    }


def test_profiles_are_configuration() -> None:
    profile = load_profile(
        '{"name": "mobile", "codec": "hevc", "preset": "medium",'
        ' "rungs": [{"name": "720p", "height": 720, "bitrate_kbps": 2000}]}'
    )
    assert profile.codec == "hevc"
    assert sizes(source(1920, 1080), profile) == [(1280, 720)]
    assert load_profile(DEFAULT_PROFILE.model_dump()) == DEFAULT_PROFILE
    with pytest.raises(ValidationError):
        load_profile({"gop_seconds": 4, "segment_seconds": 6})
    with pytest.raises(ValidationError):
        load_profile({"rungs": [], "surprise": 1})


# ---------------------------------------------------------------------------------- chunks
def test_short_films_are_one_chunk() -> None:
    assert len(plan_chunks(20, workers=8)) == 1


def test_long_film_gets_two_chunks_per_worker() -> None:
    chunks = plan_chunks(7200, workers=8)
    assert len(chunks) == 24  # 7200 / 16 = 450 s, capped at 300 s
    assert chunks[1].start == 300


@given(
    duration=st.floats(min_value=0.5, max_value=6 * 3600),
    workers=st.integers(min_value=1, max_value=64),
)
def test_chunks_cover_the_film_on_segment_boundaries(duration: float, workers: int) -> None:
    chunks = plan_chunks(duration, workers)
    assert chunks[0].start == 0
    assert chunks[-1].duration is None
    for before, after in itertools.pairwise(chunks):
        assert before.duration is not None
        assert before.start + before.duration == pytest.approx(after.start)
        assert before.duration >= 12
        assert before.duration % 6 == 0
    assert chunks[-1].start < duration
    lengths = chunk_lengths(chunks, duration)
    assert max(lengths[:-1], default=0) - min(lengths[:-1], default=0) <= 6


def test_a_feature_is_spread_evenly_over_a_large_pool() -> None:
    # 2 hours on 64 workers: two chunks per worker, 54 or 60 s each, longer ones first.
    chunks = plan_chunks(7200, workers=64)
    lengths = chunk_lengths(chunks, 7200)
    assert len(chunks) == 128
    assert sum(lengths) == 7200
    assert set(lengths) == {54, 60}
    assert lengths == sorted(lengths, reverse=True)
    # The pool finishes within one segment of a perfect split (7200 / 64 = 112.5 s of film
    # per worker); equal 60 s chunks (120 of them) would need two full chunks: 120 s.
    assert pool_makespan(lengths, 64) == 114
    assert pool_makespan([60.0] * 120, 64) == 120
    # An odd length: a partial last segment rides with the last chunk.
    odd = plan_chunks(5400.5, workers=32, chunks_per_worker=1)
    assert len(odd) == 32
    assert chunk_lengths(odd, 5400.5)[-1] == pytest.approx(168.5)
    assert max(chunk_lengths(odd, 5400.5)) == 174


def test_chunk_length_stays_between_its_bounds() -> None:
    assert len(plan_chunks(7200, workers=1)) == 24  # at most 300 s each
    assert len(plan_chunks(600, workers=500)) == 50  # at least 12 s each
    assert plan_chunks(600, workers=500)[1].start == 12


# ------------------------------------------------------------------------------ subtitles
def test_srt_to_webvtt() -> None:
    cues = parse_subtitles(
        "\ufeff1\r\n00:00:01,500 --> 00:00:02,000\r\n<font color=red>Hi</font> --> there\r\n\r\n"
    )
    assert [(c.start, c.end, c.text) for c in cues] == [(1.5, 2.0, "Hi -> there")]
    assert to_webvtt(cues) == "WEBVTT\n\n00:00:01.500 --> 00:00:02.000\nHi -> there\n"


@pytest.mark.parametrize(
    "text",
    [
        "1\n00:00:01,000 -> 00:00:02,000\nno arrow\n",
        "1\n00:00:03,000 --> 00:00:02,000\nbackwards\n",
        "1\n00:61:00,000 --> 00:62:00,000\nminutes\n",
    ],
)
def test_broken_subtitles_say_which_block(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_subtitles(text)
    assert info.value.code == "invalid_subtitles"
    assert "block 1" in info.value.detail


def test_every_ffmpeg_run_is_locked_to_local_files() -> None:
    probe = source(1920, 1080)
    plan = plan_ladder(probe, load_profile({"codec": "hevc"}))
    argv, files = build_ladder_command(
        probe, plan, Path("/out"), chunk=Chunk(index=1, start=12.0, duration=12.0)
    )
    at = argv.index("-i")
    before_input = argv[:at]
    assert before_input[before_input.index("-protocol_whitelist") + 1] == "file"
    assert before_input[before_input.index("-format_whitelist") + 1] == "mov"
    assert before_input[before_input.index("-ss") + 1] == "12.000000"
    assert before_input[before_input.index("-t") + 1] == "12.000000"
    assert argv.count("libx265") == len(plan.rungs) == len(files)
    assert argv.count("hvc1") == len(plan.rungs)
    assert "split=5" in argv[argv.index("-filter_complex") + 1]  # 1080p master: 5 rungs
