"""Ladder planning: which renditions to make from a probed master and a profile.

Profiles are configuration (a pydantic model loaded from a dict or JSON); this module only
applies them. Rung sizes are given as the short side of a 16:9 frame ("1080p"); a source
of another shape is fitted into that box so the aspect ratio is kept, never upscaled, and
rounded to even dimensions (4:2:0 chroma needs them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from transcoding.probe import ProbeResult, VideoStream


class VideoCodec(StrEnum):
    h264 = "h264"
    hevc = "hevc"


class RungSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    height: int = Field(gt=0, description="short side of the 16:9 box, e.g. 1080")
    bitrate_kbps: int = Field(gt=0, description="average video bitrate for a 16:9 frame")


# Rates follow Apple's HLS Authoring Specification table for H.264 16:9 (234p 145k,
# 360p 365k, 540p 2000k, 720p 3000k, 1080p 6000k); 1440p is not in Apple's H.264 table and
# is set to about twice 1080p, in line with its pixel count and the HEVC 1440p entry.
DEFAULT_RUNGS: tuple[RungSpec, ...] = (
    RungSpec(name="1440p", height=1440, bitrate_kbps=12000),
    RungSpec(name="1080p", height=1080, bitrate_kbps=6000),
    RungSpec(name="720p", height=720, bitrate_kbps=3000),
    RungSpec(name="540p", height=540, bitrate_kbps=2000),
    RungSpec(name="360p", height=360, bitrate_kbps=730),
    RungSpec(name="234p", height=234, bitrate_kbps=145),
)


class LadderProfile(BaseModel):
    """Everything that shapes the ladder. Load with ``LadderProfile.model_validate(dict)``
    or ``LadderProfile.model_validate_json(text)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "default"
    codec: VideoCodec = VideoCodec.h264
    rungs: tuple[RungSpec, ...] = DEFAULT_RUNGS
    gop_seconds: float = Field(default=2.0, gt=0)
    segment_seconds: float = Field(default=6.0, gt=0)
    # Capped VBR per Apple: peak no more than ~10 % over average, VBV buffer two seconds
    # of average rate so short complex scenes can borrow bits.
    maxrate_factor: float = Field(default=1.1, ge=1.0)
    bufsize_factor: float = Field(default=2.0, gt=0)
    preset: str = "veryfast"
    max_frame_rate: float = Field(default=60.0, gt=0)
    # When the source falls between two rungs (e.g. 1000x560), add a rung at its own size
    # if it has at least this many times the pixels of the largest rung that fits
    # (1.1 keeps a DCI scope master 2048x858 over 1920x804, drops 1000x562 over 960x540).
    native_rung_min_gain: float = Field(default=1.1, ge=1.0)
    audio_bitrate_kbps: int = Field(default=128, gt=0)
    audio_sample_rate: int = 48000
    # Integrated loudness target (EBU R128 / ATSC A/85 style) or None to keep the studio's
    # mix. Downmixes are always normalised so they cannot clip.
    audio_loudness_lufs: float | None = None

    @model_validator(mode="after")
    def _check(self) -> LadderProfile:
        ratio = self.segment_seconds / self.gop_seconds
        if abs(ratio - round(ratio)) > 1e-6:
            raise ValueError("segment_seconds must be a whole multiple of gop_seconds")
        if not self.rungs:
            raise ValueError("a profile needs at least one rung")
        return self


DEFAULT_PROFILE = LadderProfile()


@dataclass(frozen=True)
class LadderRung:
    name: str
    width: int
    height: int
    bitrate: int  # bits per second, average target
    maxrate: int
    bufsize: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class LadderPlan:
    profile: LadderProfile
    rungs: tuple[LadderRung, ...]  # largest first
    frame_rate: Fraction  # constant output rate
    gop_frames: int
    source_width: int  # display size: square pixels, rotation applied
    source_height: int
    deinterlace: bool
    variable_frame_rate: bool
    source_bit_depth: int

    @property
    def gop_seconds(self) -> float:
        return self.profile.gop_seconds

    @property
    def segment_seconds(self) -> float:
        return self.profile.segment_seconds

    @property
    def codec(self) -> VideoCodec:
        return self.profile.codec


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def fit_in_box(src_w: int, src_h: int, short_side: int) -> tuple[int, int]:
    """Fit a src_w x src_h picture into the 16:9 box whose short side is ``short_side``
    (the box turns with the picture, so a 9:16 phone clip gets a 9:16 box)."""
    long_side = short_side * 16 / 9
    box_w, box_h = (long_side, short_side) if src_w >= src_h else (short_side, long_side)
    scale = min(box_w / src_w, box_h / src_h, 1.0)
    return _even(src_w * scale), _even(src_h * scale)


_STANDARD_RATES = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)


def output_frame_rate(video: VideoStream, max_rate: float) -> Fraction:
    """A constant rate for the ladder. VFR phone footage is snapped to the nearest standard
    rate (its average), so GOPs and segments line up in time across rungs."""
    rate = video.frame_rate or Fraction(25)
    if video.variable_frame_rate:
        rate = min(_STANDARD_RATES, key=lambda r: abs(r - rate))
    # High-frame-rate sources are halved until they fit the profile (120 -> 60).
    while float(rate) > max_rate + 1e-6:
        rate /= 2
    return rate


def _rate(spec: RungSpec, size: tuple[int, int]) -> float:
    """Rates are quoted for a full 16:9 box; a scope or 4:3 picture has fewer pixels."""
    box = spec.height * spec.height * 16 / 9
    return spec.bitrate_kbps * min(1.0, size[0] * size[1] / box)


def plan_ladder(probe: ProbeResult, profile: LadderProfile = DEFAULT_PROFILE) -> LadderPlan:
    video = probe.primary_video
    if video is None:
        raise ValueError("cannot plan a ladder for a file without video")
    src_w, src_h = video.display_size
    rungs: list[LadderRung] = []
    seen: set[tuple[int, int]] = set()

    def add(name: str, size: tuple[int, int], bitrate_kbps: float) -> None:
        if size in seen:
            return
        seen.add(size)
        bitrate = round(bitrate_kbps * 1000)
        rungs.append(
            LadderRung(
                name=name,
                width=size[0],
                height=size[1],
                bitrate=bitrate,
                maxrate=round(bitrate * profile.maxrate_factor),
                bufsize=round(bitrate * profile.bufsize_factor),
            )
        )

    specs = sorted(profile.rungs, key=lambda r: r.height, reverse=True)
    native = (_even(src_w), _even(src_h))
    sized = [(spec, fit_in_box(src_w, src_h, spec.height)) for spec in specs]
    # Every rung whose box holds the whole source collapses to the source size; rate that
    # one by the tightest such box, so a 1080p master's top rung gets the 1080p rate.
    holding = [(spec, size) for spec, size in sized if size == native]
    smaller = [(spec, size) for spec, size in sized if size != native]
    if holding:
        spec, size = holding[-1]
        exact = spec.height == min(native)
        gain = size[0] * size[1] / (smaller[0][1][0] * smaller[0][1][1]) if smaller else math.inf
        # A source just above a rung (1000x562 vs 960x540) adds bits, not picture.
        if exact or gain >= profile.native_rung_min_gain:
            add(spec.name if exact else f"{min(native)}p", size, _rate(spec, size))
    for spec, size in smaller:
        add(spec.name, size, _rate(spec, size))
    rate = output_frame_rate(video, profile.max_frame_rate)
    return LadderPlan(
        profile=profile,
        rungs=tuple(rungs),
        frame_rate=rate,
        gop_frames=max(1, math.ceil(float(rate) * profile.gop_seconds - 1e-9)),
        source_width=src_w,
        source_height=src_h,
        deinterlace=video.interlaced,
        variable_frame_rate=video.variable_frame_rate,
        source_bit_depth=video.bit_depth,
    )


def load_profile(data: dict[str, Any] | str) -> LadderProfile:
    """A profile from a dict (settings, database row) or a JSON document."""
    if isinstance(data, str):
        return LadderProfile.model_validate_json(data)
    return LadderProfile.model_validate(data)
