"""The quality-measured ladder: scores against the master, per-title rates, HEVC renditions
beside H.264, and the profile switches that give back today's fixed ladder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from tests.transcoding.conftest import KeyServer, ffmpeg, ffprobe_json
from tests.transcoding.test_pipeline import CLIENT_PROTOCOLS, KEY, KEY_ID, framemd5, hashes
from transcoding import pipeline
from transcoding.chunking import Chunk
from transcoding.encode import RenditionFile, build_ladder_command, encode_ladder
from transcoding.ladder import (
    DEFAULT_PROFILE,
    LadderPlan,
    LadderProfile,
    PerTitleSpec,
    RungSpec,
    load_profile,
    plan_ladder,
    shape_rates,
)
from transcoding.package import ContentKey, PackageResult, package_hls, variants_of
from transcoding.per_title import Trial, measure_rates, rate_for_target, without_unprofitable_hevc
from transcoding.policy import check_master
from transcoding.probe import ProbeResult
from transcoding.quality import (
    clamped_lead_in,
    lead_in_chunk,
    lead_in_frames,
    sample_windows,
    score_renditions,
    score_window,
)
from transcoding.steps import Step

from .test_planning import source

# --- planning: pure ----------------------------------------------------------------------


def test_default_ladder_adds_hevc_beside_the_upper_h264_rungs() -> None:
    plan = plan_ladder(source(2560, 1440))
    assert [r.name for r in plan.hevc_rungs] == ["1440p-hevc", "1080p-hevc"]
    assert all(r.codec.value == "hevc" for r in plan.hevc_rungs)
    assert all(r.codec.value == "h264" for r in plan.rungs)
    # Without per-title rates an HEVC rendition gets Apple's HEVC share of the H.264 rate.
    assert plan.hevc_rungs[1].bitrate == round(0.75 * plan.rungs[1].bitrate)
    argv, files = build_ladder_command(source(2560, 1440), plan, Path("/out"))
    assert [f.path.name for f in files][-2:] == ["1440p-hevc.mp4", "1080p-hevc.mp4"]
    assert argv.count("libx265") == 2
    assert argv.count("hvc1") == 2


def test_profile_switches_off_give_todays_ladder() -> None:
    fixed = LadderProfile(preset="veryfast", per_title=None, hevc_rungs_min_height=None)
    plan = plan_ladder(source(1920, 1080), fixed, rates={"1080p": 1_000_000, "720p": 500_000})
    assert plan.hevc_rungs == ()
    assert [(r.name, r.bitrate, r.preset) for r in plan.rungs] == [
        ("1080p", 6_000_000, "veryfast"),
        ("720p", 3_000_000, "veryfast"),
        ("540p", 2_000_000, "veryfast"),
        ("360p", 730_000, "veryfast"),
        ("234p", 145_000, "veryfast"),
    ]
    # A rung's own preset wins over the profile's.
    custom = load_profile(
        {"rungs": [{"name": "1080p", "height": 1080, "bitrate_kbps": 6000, "preset": "faster"}]}
    )
    assert plan_ladder(source(1920, 1080), custom).rungs[0].preset == "faster"


def test_per_title_rates_are_capped_floored_and_monotonic() -> None:
    caps = [6_000_000, 3_000_000, 2_000_000, 730_000]
    # Over the cap, under the floor (15 % of the cap), and a small rung asking for more
    # than the rung above it gets.
    assert shape_rates(caps, [9_000_000, 100_000, 1_500_000, 700_000], 0.15) == [
        6_000_000,
        450_000,
        450_000,
        450_000,
    ]
    plan = plan_ladder(
        source(1920, 1080), rates={"1080p": 2_500_000, "720p": 2_600_000, "1080p-hevc": 10**9}
    )
    rates = {r.name: r.bitrate for r in plan.renditions}
    assert rates["1080p"] == 2_500_000
    assert rates["720p"] == 2_500_000  # never above the larger rung
    assert rates["540p"] == 2_000_000  # not measured: keeps its cap
    assert rates["1080p-hevc"] == 6_000_000  # capped at the H.264 rung's cap
    for rung in plan.renditions:
        assert rung.maxrate == round(rung.bitrate * 1.1)  # peak within Apple's 110 %
        assert rung.bufsize == 2 * rung.bitrate
    assert plan.gop_frames == plan_ladder(source(1920, 1080)).gop_frames


def test_an_hevc_rendition_at_rate_0_is_not_made() -> None:
    plan = plan_ladder(source(2560, 1440), rates={"1080p-hevc": 0, "1080p": 4_000_000})
    assert [r.name for r in plan.hevc_rungs] == ["1440p-hevc"]
    assert [r.name for r in plan.rungs] == ["1440p", "1080p", "720p", "540p", "360p", "234p"]
    assert {r.name: r.bitrate for r in plan.rungs}["1080p"] == 4_000_000
    # Every step plans again from the run's stored rates, the 0 among them: the same ladder.
    assert plan_ladder(source(2560, 1440), rates={"1080p-hevc": 0, "1080p": 4_000_000}) == plan


@pytest.mark.parametrize(
    ("hevc_rate", "h264_rate", "hevc_at_cap", "h264_at_cap", "kept"),
    [
        (3_000_000, 4_000_000, 44.0, 43.0, True),  # fewer bits for the target: what HEVC is for
        (6_000_000, 5_500_000, 44.6, 46.2, False),  # needs more bits (flat animation)
        (6_000_000, 6_000_000, 36.0, 35.0, True),  # both at the cap, HEVC the better picture
        (6_000_000, 6_000_000, 35.0, 35.0, False),  # both at the cap, no better
        (900_000, 900_000, 50.0, 49.0, True),  # both at the floor, HEVC better at the cap
    ],
)
def test_hevc_is_kept_only_where_it_saves_bits_on_this_title(
    hevc_rate: int, h264_rate: int, hevc_at_cap: float, h264_at_cap: float, kept: bool
) -> None:
    shaped = plan_ladder(source(1920, 1080)).with_rates(
        {"1080p": h264_rate, "720p": 3_000_000, "1080p-hevc": hevc_rate}
    )
    rates = without_unprofitable_hevc(shaped, {"1080p": h264_at_cap, "1080p-hevc": hevc_at_cap})
    assert (rates["1080p-hevc"] != 0) is kept
    assert rates["1080p"] == h264_rate  # the H.264 ladder is never touched
    planned = plan_ladder(source(1920, 1080), rates=rates)
    assert [r.name for r in planned.hevc_rungs] == (["1080p-hevc"] if kept else [])


def test_rate_for_target_reads_the_curve() -> None:
    trials = [Trial(1_000_000, 36.0), Trial(4_000_000, 40.0)]
    assert rate_for_target(trials, 38.0) == pytest.approx(2_000_000)
    assert rate_for_target(trials, 42.0) == pytest.approx(8_000_000)  # the plan caps it
    # Noise: more bits buy nothing measurable, so the target is out of reach: the most.
    assert rate_for_target([Trial(1e6, 27.0), Trial(4e6, 27.0)], 40.0) == 4e6


def test_sampled_windows_start_on_gops_and_spread_over_the_film() -> None:
    windows = sample_windows(7200.0, count=6, seconds=4.0, gop_seconds=2.0)
    assert len(windows) == 6
    assert all(w.start % 2.0 == 0 and w.duration == 4.0 for w in windows)
    assert windows[0].start < 1200 < windows[1].start
    assert windows[-1].start > 6000
    assert sample_windows(10.0, count=6, seconds=4.0, gop_seconds=2.0) == [Chunk(0, 0.0, None)]


def test_probe_lead_in_is_whole_gops_and_stops_at_the_film_start() -> None:
    assert PerTitleSpec().lead_in_seconds > 0  # the probe warms the encoder up by default
    gop = 2.0
    assert clamped_lead_in(Chunk(2, 10.0, 2.0), 4.0, gop_seconds=gop) == 4.0
    assert clamped_lead_in(Chunk(2, 10.0, 2.0), 3.0, gop_seconds=gop) == 4.0  # whole GOPs
    assert clamped_lead_in(Chunk(1, 2.0, 2.0), 4.0, gop_seconds=gop) == 2.0  # film start
    assert clamped_lead_in(Chunk(0, 0.0, 2.0), 4.0, gop_seconds=gop) == 0.0  # at t=0: none
    assert clamped_lead_in(Chunk(0, 0.0, None), 4.0, gop_seconds=gop) == 0.0  # probed whole
    assert clamped_lead_in(Chunk(2, 10.0, 2.0), 0.0, gop_seconds=gop) == 0.0  # turned off
    assert lead_in_chunk(Chunk(2, 10.0, 2.0), 4.0) == Chunk(2, 6.0, 6.0)
    assert lead_in_chunk(Chunk(2, 10.0, 2.0), 0.0) == Chunk(2, 10.0, 2.0)
    # The frames before the lead-in's end, exactly, whatever the rate.
    assert lead_in_frames(2.0, Fraction(24)) == 48
    assert lead_in_frames(2.0, Fraction(30000, 1001)) == 60  # 59.94 frames: 60 start before
    assert lead_in_frames(20.0, Fraction(30000, 1001)) == 600  # 599.4
    assert lead_in_frames(4.0, Fraction(25)) == 100


# --- real FFmpeg on short clips ----------------------------------------------------------

SMALL = LadderProfile(
    name="test",
    preset="superfast",
    hevc_preset="superfast",
    segment_seconds=2,
    rungs=(
        RungSpec(name="360p", height=360, bitrate_kbps=800),
        RungSpec(name="180p", height=180, bitrate_kbps=250),
    ),
    hevc_rungs_min_height=360,
)


def make_clip(path: Path, graph: str, seconds: int = 4) -> ProbeResult:
    ffmpeg(
        "-f", "lavfi", "-i", graph, "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10",
        "-g", "24", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return check_master(path)


@dataclass(frozen=True)
class HevcRelease:
    probe: ProbeResult
    plan: LadderPlan
    renditions: tuple[RenditionFile, ...]
    package: PackageResult


@pytest.fixture(scope="module")
def hevc_release(tmp_path_factory: pytest.TempPathFactory, key_server: KeyServer) -> HevcRelease:
    work = tmp_path_factory.mktemp("hevc")
    probe = make_clip(work / "master.mp4", "testsrc2=s=640x360:r=24")
    plan = plan_ladder(probe, SMALL)
    renditions = encode_ladder(probe, plan, work / "video").renditions
    (key_server.root / "keys").mkdir(exist_ok=True)
    (key_server.root / "keys" / KEY_ID.hex()).write_bytes(KEY)
    key = ContentKey(KEY, KEY_ID, key_server.base_url + "/keys/{key_id}")
    package = package_hls(
        renditions, work / "hls", duration=probe.duration or 0, segment_seconds=2, key=key
    )
    return HevcRelease(probe, plan, renditions, package)


def _stream(path: Path) -> dict[str, object]:
    data = json.loads(ffprobe_json("-select_streams", "v:0", "-show_streams", str(path)))
    stream: dict[str, object] = data["streams"][0]
    return stream


@pytest.mark.slow
@pytest.mark.backend_agnostic
def test_hevc_rendition_is_listed_with_codecs_from_its_stream_and_plays(
    hevc_release: HevcRelease, tmp_path: Path
) -> None:
    out = hevc_release.package.out_dir
    master = hevc_release.package.master_playlist
    variants = {v.playlist: v for v in variants_of(master)}
    assert set(variants) == {"video_360p.m3u8", "video_180p.m3u8", "video_360p-hevc.m3u8"}
    # SDR Main: nothing to supplement
    assert "SUPPLEMENTAL-CODECS" not in master.read_text(encoding="utf-8")
    for uri, variant in variants.items():
        folder = out / uri.removesuffix(".m3u8")
        # What a player would fetch: the init segment and the first (decrypted) segment.
        sample = tmp_path / f"{folder.name}.mp4"
        sample.write_bytes((folder / "init.mp4").read_bytes())
        stream = _stream(sample)
        if uri.endswith("-hevc.m3u8"):
            assert (stream["codec_name"], stream["codec_tag_string"]) == ("hevc", "hvc1")
            assert stream["profile"] == "Main"
            # hvc1.<profile>.<compatibility>.L<level>.<constraints>: level from the stream.
            assert variant.codecs.startswith(f"hvc1.1.6.L{stream['level']}.")
        else:
            assert stream["codec_name"] == "h264"
            assert variant.codecs.startswith("avc1.64")
        assert variant.resolution == f"{stream['width']}x{stream['height']}"
    # The HEVC rendition's bandwidth is measured from its own (smaller) segments.
    assert variants["video_360p-hevc.m3u8"].average_bandwidth < 1_000_000

    playlist = out / "video_360p-hevc.m3u8"
    assert "METHOD=AES-128" in playlist.read_text()
    hevc_file = next(r.path for r in hevc_release.renditions if r.rung.name == "360p-hevc")
    clear = hashes(framemd5(str(hevc_file)).stdout)
    with_key = framemd5(str(playlist), "-protocol_whitelist", CLIENT_PROTOCOLS)
    assert with_key.returncode == 0, with_key.stderr
    assert hashes(with_key.stdout) == clear
    assert len(clear) == 96  # 4 s at 24 fps


@pytest.mark.slow
@pytest.mark.backend_agnostic
def test_scores_follow_the_bits(hevc_release: HevcRelease, tmp_path: Path) -> None:
    probe, plan = hevc_release.probe, hevc_release.plan
    starved = plan.with_rates({r.name: r.cap // 8 for r in plan.renditions})
    low = encode_ladder(probe, starved, tmp_path).renditions
    windows = sample_windows(probe.duration or 0, count=2, seconds=1.0, gop_seconds=2.0)
    good = {
        q.rendition: q
        for q in score_renditions(probe, plan, hevc_release.renditions, windows, vmaf=True)
    }
    poor = {q.rendition: q for q in score_renditions(probe, starved, low, windows, vmaf=True)}
    assert set(good) == {"360p", "180p", "360p-hevc"}
    for name, q in good.items():
        assert q.frames == 96  # a film shorter than the windows is scored whole
        assert 25 < q.xpsnr_y < 99
        assert 0.5 < q.ssim_y <= 1
        assert q.xpsnr_y > poor[name].xpsnr_y + 1
        assert q.ssim_y > poor[name].ssim_y
        good_vmaf, poor_vmaf = q.vmaf, poor[name].vmaf
        assert good_vmaf is not None
        assert poor_vmaf is not None
        assert 0 <= poor_vmaf < good_vmaf <= 100
    assert good["360p"].codec == "h264"
    assert good["360p-hevc"].codec == "hevc"


@pytest.mark.slow
@pytest.mark.backend_agnostic
def test_a_failing_scorer_is_a_warning_not_a_lost_release(
    hevc_release: HevcRelease, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    rendition = RenditionFile(hevc_release.plan.rungs[0], broken)
    warnings: list[dict[str, str]] = []
    scores = pipeline._quality(hevc_release.probe, hevc_release.plan, [rendition], warnings)
    assert scores is None
    assert [(w["code"], w["step"]) for w in warnings] == [("quality_failed", Step.quality.value)]


@pytest.mark.slow
@pytest.mark.backend_agnostic
def test_per_title_gives_flat_content_fewer_bits_than_grain(tmp_path: Path) -> None:
    profile = SMALL.model_copy(
        update={
            "hevc_rungs_min_height": None,
            "per_title": SMALL.per_title.model_copy(update={"scenes": 2, "scene_seconds": 1.0})
            if SMALL.per_title
            else None,
        }
    )
    flat = make_clip(
        tmp_path / "flat.mp4",
        "color=c=0x3060a0:s=640x360:r=24,drawbox=x='t*40':y=100:w=120:h=80:c=yellow:t=fill",
    )
    grain = make_clip(tmp_path / "grain.mp4", "testsrc2=s=640x360:r=24,noise=alls=30:allf=t")
    rates = {}
    for name, probe in (("flat", flat), ("grain", grain)):
        caps_plan = plan_ladder(probe, profile)
        plan = caps_plan.with_rates(measure_rates(probe, caps_plan))
        rates[name] = [r.bitrate for r in plan.rungs]
        assert rates[name] == sorted(rates[name], reverse=True)  # monotonic
        for rung in plan.rungs:
            assert 0.15 * rung.cap <= rung.bitrate <= rung.cap
    assert all(f < g for f, g in zip(rates["flat"], rates["grain"], strict=True)), rates
    assert rates["grain"] == [800_000, 250_000]  # grain never reaches 40 dB: the caps
    assert DEFAULT_PROFILE.per_title is not None  # on unless a profile turns it off


@pytest.mark.slow
@pytest.mark.backend_agnostic
@pytest.mark.parametrize("rate", ["24", "30000/1001"])
def test_probe_scores_exactly_the_window_after_its_lead_in(tmp_path: Path, rate: str) -> None:
    """The probe encodes a lead-in before each scene and scores only the scene: a clip
    whose lead-in is black and whose scene is the master scores as the master would if and
    only if the lead-in frames are left out and the scene's frames are paired one to one."""
    probe = make_clip(tmp_path / "master.mp4", f"testsrc2=s=640x360:r={rate}", seconds=8)
    profile = SMALL.model_copy(update={"rungs": SMALL.rungs[:1], "hevc_rungs_min_height": None})
    plan = plan_ladder(probe, profile)
    assert plan.frame_rate == Fraction(rate)
    window = Chunk(index=1, start=4.0, duration=2.0)
    lead = clamped_lead_in(window, 2.0, gop_seconds=plan.gop_seconds)
    assert lead == 2.0
    encoded = lead_in_chunk(window, lead)
    skip = lead_in_frames(lead, plan.frame_rate)
    # What the probe's encoder sees for that range (input seek, constant rate), with the
    # lead-in's frames painted black before encoding.
    clip = tmp_path / "clip.mp4"
    ffmpeg(
        "-ss", f"{encoded.start}", "-t", f"{encoded.duration}", "-i", str(probe.path),
        "-vf", f"fps={rate},format=yuv420p,"
        f"drawbox=x=0:y=0:w=iw:h=ih:c=black:t=fill:enable='lt(n,{skip})'",
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "8", "-g", "48", str(clip),
    )  # fmt: skip
    rendition = RenditionFile(plan.rungs[0], clip)
    window_frames = lead_in_frames(6.0, plan.frame_rate) - lead_in_frames(4.0, plan.frame_rate)
    assert window_frames == {"24": 48, "30000/1001": 60}[rate]

    (work := tmp_path / "scored").mkdir()
    (scores,) = score_window(probe, plan, [rendition], window, work, clips=True, lead_in=lead)
    assert len(scores.xpsnr) == window_frames  # the window, no more, no fewer
    assert min(scores.xpsnr) > 35, scores.xpsnr  # no black frame, none paired off by one

    # The same clip scored with its lead-in: the black frames would drag the score down.
    (whole := tmp_path / "whole").mkdir()
    (with_lead,) = score_window(probe, plan, [rendition], encoded, whole, clips=True)
    assert len(with_lead.xpsnr) == skip + window_frames
    assert max(with_lead.xpsnr[:skip]) < 20
    # The same frames score the same (XPSNR weighs a frame by its change from the one
    # before, so only the window's first frame differs).
    assert with_lead.xpsnr[skip + 1 :] == pytest.approx(scores.xpsnr[1:], abs=0.01)
