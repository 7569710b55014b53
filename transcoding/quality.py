"""Scoring renditions against the master: XPSNR and SSIM of the luma plane.

XPSNR and SSIM are filters of the pinned FFmpeg; VMAF (libvmaf, its default model) is not,
so a scoring graph that includes VMAF runs on the FFmpeg 9.0.2 that the imageio-ffmpeg
wheel ships with libvmaf (``quality_ffmpeg_path``). The reference is
the master's picture as the encoders saw it (same seek, deinterlace, constant rate, 8-bit
4:2:0), scaled to the rendition's size with the ladder's own scaler, so the score measures
what encoding lost, not what scaling lost.

Cost is bounded by sampling: a few windows of whole GOPs spread evenly over the film
(:func:`sample_windows`); each window is read with input seeking on the master and on the
rendition, so a 2-hour film costs the same as a 2-minute one. The per-frame scores of all
windows are pooled: XPSNR (and PSNR) by their mean squared error, then back to dB, so a
perfect frame (infinite dB) counts as zero error; SSIM and VMAF as plain means.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from core.settings import get_settings
from transcoding.chunking import Chunk
from transcoding.encode import RenditionFile, compile_command, master_picture, scale_to
from transcoding.ladder import LadderPlan
from transcoding.policy import DEFAULT_LIMITS, PolicyLimits
from transcoding.probe import ProbeResult
from transcoding.tools import PROTOCOL_WHITELIST, run_tool

# Scores above this are capped when reported (identical frames score infinite dB).
_MAX_DB = 99.0
# A frame far off scores below 0 dB: it must count, not vanish from the pool.
_XPSNR_LINE = re.compile(r"XPSNR y:\s*(-?[0-9.]+|inf)")
_SSIM_LINE = re.compile(r"\bY:([0-9.]+)")


@dataclass(frozen=True)
class RenditionQuality:
    """What the studio sees per rendition (``Release.quality``)."""

    rendition: str
    codec: str
    width: int
    height: int
    bitrate: int  # the rendition's target average, bit/s
    xpsnr_y: float  # dB, luma, pooled over the sampled frames
    ssim_y: float  # 0..1, luma
    frames: int  # how many frames were scored
    vmaf: float | None = None  # 0..100, libvmaf's default model; None: not scored

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def sample_windows(
    duration: float, *, count: int, seconds: float, gop_seconds: float
) -> list[Chunk]:
    """``count`` windows of about ``seconds`` (whole GOPs) spread evenly over ``duration``,
    each starting on a GOP boundary (an IDR in every rendition, so seeking is exact). A
    film shorter than the windows together is scored whole."""
    gops = max(1, round(seconds / gop_seconds))
    length = gops * gop_seconds
    if duration <= count * length:
        return [Chunk(index=0, start=0.0, duration=None)]
    windows = []
    for n in range(count):
        centre = duration * (n + 0.5) / count
        start = math.floor(max(0.0, centre - length / 2) / gop_seconds) * gop_seconds
        start = min(start, math.floor((duration - length) / gop_seconds) * gop_seconds)
        windows.append(Chunk(index=n, start=start, duration=length))
    return windows


def clamped_lead_in(window: Chunk, seconds: float, *, gop_seconds: float) -> float:
    """The lead-in before ``window`` in seconds: ``seconds`` rounded up to whole GOPs (so the
    window still starts on a keyframe of an encode that starts at the lead-in), cut short at
    the film's start; 0 for a window at t=0 or a film probed whole."""
    if window.duration is None or window.start <= 0 or seconds <= 0:
        return 0.0
    gops = math.ceil(seconds / gop_seconds - 1e-9)
    return min(window.start, gops * gop_seconds)


def lead_in_chunk(window: Chunk, lead_in: float) -> Chunk:
    """``window`` started ``lead_in`` seconds earlier (what the probe encodes)."""
    if lead_in <= 0:
        return window
    duration = None if window.duration is None else window.duration + lead_in
    return Chunk(index=window.index, start=window.start - lead_in, duration=duration)


def lead_in_frames(lead_in: float, frame_rate: Fraction) -> int:
    """How many frames of the constant-rate picture come before ``lead_in`` seconds: the
    frames at t < lead_in, counted exactly (29.97 fps has no whole frame count per GOP)."""
    return math.ceil(Fraction(lead_in).limit_denominator(1_000_000) * frame_rate)


def pooled_db(values: Sequence[float]) -> float:
    """Per-frame dB pooled by their mean squared error (what a PSNR over the whole sample
    would be), capped at 99 dB."""
    if not values:
        raise ValueError("no frames were scored")
    mean_error = sum(10 ** (-v / 10) for v in values if math.isfinite(v)) / len(values)
    return _MAX_DB if mean_error <= 0 else min(_MAX_DB, -10 * math.log10(mean_error))


def _read_scores(path: Path, pattern: re.Pattern[str]) -> list[float]:
    return [float(m.group(1)) for m in pattern.finditer(path.read_text(encoding="utf-8"))]


def _rendition_input(path: Path, window: Chunk | None) -> Any:
    kwargs: dict[str, Any] = {"protocol_whitelist": PROTOCOL_WHITELIST, "format_whitelist": "mov"}
    if window is None:
        return ffmpeg.input(str(path), **kwargs)
    if window.start > 0:
        kwargs["ss"] = f"{window.start:.6f}"
    if window.duration is not None:
        kwargs["t"] = f"{window.duration:.6f}"
    return ffmpeg.input(str(path), **kwargs)


@dataclass
class FrameScores:
    """Per-frame scores of one rendition (VMAF empty when not asked for)."""

    xpsnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    vmaf: list[float] = field(default_factory=list)

    def extend(self, other: FrameScores) -> None:
        self.xpsnr.extend(other.xpsnr)
        self.ssim.extend(other.ssim)
        self.vmaf.extend(other.vmaf)


def _read_vmaf(path: Path) -> list[float]:
    frames = json.loads(path.read_text(encoding="utf-8")).get("frames", [])
    return [float(f["metrics"]["vmaf"]) for f in frames]


def score_window(
    probe: ProbeResult,
    plan: LadderPlan,
    renditions: Sequence[RenditionFile],
    window: Chunk,
    work: Path,
    *,
    clips: bool = False,
    lead_in: float = 0.0,
    vmaf: bool = False,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> list[FrameScores]:
    """One FFmpeg run: the master decoded once for the window, split to every rendition's
    size, each pair scored by ``xpsnr`` then ``ssim``; per-frame scores per rendition.
    ``clips``: the rendition files hold just this window (the per-title probe's trial
    encodes), so they are read from their start; with ``lead_in`` (seconds, see
    :func:`clamped_lead_in`) they hold that much more before the window, encoded but not
    scored: the master is decoded from the same earlier start, so both sides are the very
    picture the encoder saw, and the same number of frames is dropped from both before
    scoring, so the scored frames are exactly the window's, paired frame by frame whatever
    the frame rate. ``vmaf`` adds libvmaf (default model), which runs the graph on the
    VMAF-capable FFmpeg (``quality_ffmpeg_path``)."""
    if lead_in < 0 or (lead_in > 0 and not clips):
        raise ValueError("a lead-in is only for clips, and not negative")
    decoded = lead_in_chunk(window, lead_in)
    skip = lead_in_frames(lead_in, plan.frame_rate) if lead_in > 0 else 0
    reference = master_picture(probe, plan, decoded)
    if skip:
        reference = reference.trim(start_frame=skip)
    branches = reference.filter_multi_output("split", len(renditions))
    outputs = []
    files = []
    for n, rendition in enumerate(renditions):
        pair = scale_to(branches[n], rendition.rung).setpts("PTS-STARTPTS")
        refs = pair.filter_multi_output("split", 3 if vmaf else 2)
        distorted = _rendition_input(rendition.path, None if clips else window)["v:0"].filter(
            "format", "yuv420p"
        )
        if skip:
            distorted = distorted.trim(start_frame=skip)
        distorted = distorted.setpts("PTS-STARTPTS")
        x_file, s_file, v_file = (work / f"{n}.{m}" for m in ("xpsnr.txt", "ssim.txt", "vmaf.json"))
        scored = ffmpeg.filter([distorted, refs[0]], "xpsnr", stats_file=str(x_file))
        scored = ffmpeg.filter([scored, refs[1]], "ssim", stats_file=str(s_file))
        if vmaf:
            scored = ffmpeg.filter(
                [scored, refs[2]], "libvmaf", log_path=str(v_file), log_fmt="json"
            )
        outputs.append(ffmpeg.output(scored, "-", f="null"))
        files.append((x_file, s_file, v_file))
    argv = compile_command(ffmpeg.merge_outputs(*outputs))
    if vmaf:
        argv[0] = get_settings().quality_ffmpeg_path
    seconds = decoded.duration if decoded.duration is not None else probe.duration or 0.0
    run_tool(argv, timeout=limits.wall_time_for(seconds))
    return [
        FrameScores(
            _read_scores(x, _XPSNR_LINE),
            _read_scores(s, _SSIM_LINE),
            _read_vmaf(v) if vmaf else [],
        )
        for x, s, v in files
    ]


def score_renditions(
    probe: ProbeResult,
    plan: LadderPlan,
    renditions: Sequence[RenditionFile],
    windows: Sequence[Chunk],
    *,
    vmaf: bool = False,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> list[RenditionQuality]:
    """Score every rendition over ``windows`` of the master (see :func:`sample_windows`)."""
    pooled = [FrameScores() for _ in renditions]
    with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
        for n, window in enumerate(windows):
            work = Path(tmp) / str(n)
            work.mkdir()
            scores = score_window(probe, plan, renditions, window, work, vmaf=vmaf, limits=limits)
            for total, frames in zip(pooled, scores, strict=True):
                total.extend(frames)
    return [
        RenditionQuality(
            rendition=r.output_name,
            codec=r.rung.codec.value,
            width=r.rung.width,
            height=r.rung.height,
            bitrate=r.rung.bitrate,
            xpsnr_y=round(pooled_db(p.xpsnr), 3),
            ssim_y=round(sum(p.ssim) / len(p.ssim), 5) if p.ssim else 0.0,
            frames=len(p.xpsnr),
            vmaf=round(sum(p.vmaf) / len(p.vmaf), 3) if p.vmaf else None,
        )
        for r, p in zip(renditions, pooled, strict=True)
    ]
