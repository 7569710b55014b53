"""Ladder planning: which renditions to make from a probed master and a profile.

Profiles are configuration (a pydantic model loaded from a dict or JSON); this module only
applies them. Rung sizes are given as the short side of a 16:9 frame ("1080p"); a source
of another shape is fitted into that box so the aspect ratio is kept, never upscaled, and
rounded to even dimensions (4:2:0 chroma needs them).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
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
    bitrate_kbps: int = Field(
        gt=0,
        description="average video bitrate for a 16:9 frame; with a per-title ladder, the cap",
    )
    # None: the profile's per-title target / preset.
    target_xpsnr_db: float | None = Field(default=None, gt=0, le=99)
    preset: str | None = None


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


class WatermarkSpec(BaseModel):
    """A/B forensic watermarking (docs/watermark.md): the top ``rungs`` rungs (0: every
    rung) are encoded twice, variant A with a faint large luminance pattern added and
    variant B with it subtracted, ``strength`` code values at the pattern's peak."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rungs: int = Field(default=0, ge=0, description="top rungs that carry the mark; 0: all")
    strength: float = Field(default=2.0, ge=0.5, le=8.0)
    every: int = Field(
        default=1,
        ge=1,
        le=8,
        description="only every k-th segment carries a bit (variant B's encode and storage"
        " shrink about k-fold, the shortest identifying capture grows k-fold)",
    )


class PerTitleSpec(BaseModel):
    """Per-title rates (docs/transcoding.md, "Per-title ladder"): a complexity probe encodes
    ``scenes`` short scenes spread over the film at two rates per rendition, measures their
    XPSNR against the master and sets each rate to reach the target; the profile's rates
    are the caps, ``floor_fraction`` of them the floor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target_xpsnr_db: float = Field(default=40.0, gt=0, le=99)
    floor_fraction: float = Field(default=0.15, gt=0, le=1)
    scenes: int = Field(default=3, ge=1, le=20)
    scene_seconds: float = Field(default=2.0, gt=0, le=30)
    # Encoded before each scene but not scored (whole GOPs, cut short at the film's start):
    # the rate control warms up as it does inside a whole encode (docs/transcoding.md).
    lead_in_seconds: float = Field(default=4.0, ge=0, le=30)


class QualitySpec(BaseModel):
    """The quality step (docs/transcoding.md): ``samples`` windows of ``sample_seconds``
    (whole GOPs) spread over the film, scored with XPSNR and SSIM against the master."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    samples: int = Field(default=6, ge=1, le=50)
    sample_seconds: float = Field(default=4.0, gt=0, le=60)
    vmaf: bool = True  # VMAF too (the slowest of the three metrics)


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
    # Apple's authoring spec: peak at most 200 % of average for VOD.
    maxrate_factor: float = Field(default=1.1, ge=1.0, le=2.0)
    bufsize_factor: float = Field(default=2.0, gt=0)
    # x264/x265 effort; a rung's own ``preset`` wins. The default is measured
    # (benchmarks/quality.py --presets, table in docs/transcoding.md).
    preset: str = "slow"
    # None: every rung at the profile's fixed rate (today's ladder before per-title).
    per_title: PerTitleSpec | None = PerTitleSpec()
    # H.264 rungs at least this tall (short side) also get an HEVC rendition (hvc1, fMP4);
    # None: no HEVC. Ignored when the whole ladder is HEVC (``codec``).
    hevc_rungs_min_height: int | None = Field(default=1080, gt=0)
    hevc_preset: str = "medium"
    # None: no quality scores on the release.
    quality: QualitySpec | None = QualitySpec()
    # An HEVC rendition's rate without per-title: this share of its H.264 rung's rate
    # (Apple's tables: 1080p HEVC 4500k beside H.264 6000k). With per-title the H.264
    # rung's cap is the HEVC cap.
    hevc_bitrate_factor: float = Field(default=0.75, gt=0, le=1)
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
    # None: no forensic watermark. Marked rungs cost a second video encode and their
    # segments' storage twice (measured in benchmarks/watermark.py).
    watermark: WatermarkSpec | None = None

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
    codec: VideoCodec = VideoCodec.h264
    preset: str = "medium"
    cap: int = 0  # the profile's rate for this size: per-title never goes above it
    target_xpsnr_db: float = 40.0

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class LadderPlan:
    profile: LadderProfile
    rungs: tuple[LadderRung, ...]  # the ladder in the profile's codec, largest first
    frame_rate: Fraction  # constant output rate
    gop_frames: int
    source_width: int  # display size: square pixels, rotation applied
    source_height: int
    deinterlace: bool
    variable_frame_rate: bool
    source_bit_depth: int
    hevc_rungs: tuple[LadderRung, ...] = ()  # HEVC beside the H.264 upper rungs

    @property
    def renditions(self) -> tuple[LadderRung, ...]:
        """Every video rendition to encode and package: the ladder, then the HEVC ones."""
        return self.rungs + self.hevc_rungs

    def with_rates(self, rates: Mapping[str, int]) -> LadderPlan:
        """This plan with per-title rates (bit/s by rendition name; a missing name keeps
        its rate), each held between the floor and its cap and falling with the picture
        (:func:`shape_rates`), maxrate and bufsize following."""
        spec = self.profile.per_title
        floor = spec.floor_fraction if spec is not None else 1.0

        def shaped(rungs: tuple[LadderRung, ...]) -> tuple[LadderRung, ...]:
            wanted = [rates.get(r.name, r.bitrate) for r in rungs]
            new = shape_rates([r.cap for r in rungs], wanted, floor)
            return tuple(
                replace(
                    r,
                    bitrate=b,
                    maxrate=round(b * self.profile.maxrate_factor),
                    bufsize=round(b * self.profile.bufsize_factor),
                )
                for r, b in zip(rungs, new, strict=True)
            )

        # A rate of 0 for an HEVC rendition: it saves nothing on this title (the per-title
        # probe found it needs its H.264 twin's bits or more), so it is not made at all and
        # HEVC devices play the H.264 rung there.
        kept = tuple(r for r in self.hevc_rungs if rates.get(r.name) != 0)
        return replace(self, rungs=shaped(self.rungs), hevc_rungs=shaped(kept))

    @property
    def gop_seconds(self) -> float:
        return self.profile.gop_seconds

    @property
    def segment_seconds(self) -> float:
        return self.profile.segment_seconds

    @property
    def codec(self) -> VideoCodec:
        return self.profile.codec

    @property
    def marked_rungs(self) -> tuple[LadderRung, ...]:
        """The rungs encoded in two watermark variants (largest first)."""
        spec = self.profile.watermark
        if spec is None:
            return ()
        marked = self.rungs[: spec.rungs] if spec.rungs else self.rungs
        sizes = {(r.width, r.height) for r in marked}
        # An HEVC twin of a marked rung is marked too (else it would be the unmarked copy);
        # listed first so the smallest marked rung stays last.
        return tuple(r for r in self.hevc_rungs if (r.width, r.height) in sizes) + marked


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


# A measured or nominal rate this close to a standard one is that standard rate (timestamps
# in a coarse time base jitter around it); the nearest wins when two are in reach.
_SNAP_TOLERANCE = Fraction(5, 1000)
# Above this an r_frame_rate is a time base, not a cadence (Matroska's 1000/1, MPEG-TS 90000/1).
_MAX_NOMINAL_RATE = Fraction(120)


def snap_to_standard(rate: Fraction) -> Fraction:
    """The nearest standard rate if ``rate`` is within 0.5 % of it, else ``rate`` itself
    (as a fraction over 1001 at most, so 12.5 or 48 stay exact)."""
    nearest = min(_STANDARD_RATES, key=lambda r: abs(r - rate))
    if abs(nearest - rate) / nearest <= _SNAP_TOLERANCE:
        return nearest
    return rate.limit_denominator(1001)


def nominal_frame_rate(video: VideoStream, cadence: Fraction | None = None) -> Fraction:
    """The rate a variable-frame-rate stream runs at where it runs at full rate.

    The average is the wrong answer: a 30 fps clip with dropouts averages, say, 25 fps, and
    encoding it at the standard rate nearest that average throws away frames wherever it
    really ran at 30. The measured cadence (the shortest common frame interval,
    :func:`transcoding.cadence.measure_cadence`) comes first, then the stream's
    ``r_frame_rate`` when it is a plausible rate rather than a time base, then the average.
    """
    if cadence is not None and cadence > 0:
        return snap_to_standard(cadence)
    nominal = video.r_frame_rate
    if nominal is not None and nominal <= _MAX_NOMINAL_RATE:
        return snap_to_standard(nominal)
    return snap_to_standard(video.avg_frame_rate or nominal or Fraction(25))


def output_frame_rate(
    video: VideoStream, max_rate: float, cadence: Fraction | None = None
) -> Fraction:
    """A constant rate for the ladder, so GOPs and segments line up in time across rungs.
    A VFR source is made constant at its nominal rate: a gap repeats the frame before it,
    and no frame of a stretch that ran at full rate is dropped."""
    rate = video.frame_rate or Fraction(25)
    if video.variable_frame_rate:
        rate = nominal_frame_rate(video, cadence)
    # High-frame-rate sources are halved until they fit the profile (120 -> 60).
    while float(rate) > max_rate + 1e-6:
        rate /= 2
    return rate


def _box_pixels(spec: RungSpec) -> float:
    return spec.height * spec.height * 16 / 9


def rate_for_pixels(profile: LadderProfile, pixels: int) -> float:
    """Average kbit/s for a picture of ``pixels``: bits follow pixels.

    The profile quotes a rate per 16:9 box; between two boxes the rate is interpolated
    linearly in pixel count (through 0 below the smallest box), and a profile whose rates
    do not grow with the box counts as its running maximum. So a rung never gets more bits
    than a larger one (PAL 768x576 sits between the 540p and 720p rates, above 720x540),
    and a 16:9 rung gets exactly its quoted rate.
    """
    points = [(0.0, 0.0)]
    for spec in sorted(profile.rungs, key=_box_pixels):
        points.append((_box_pixels(spec), max(float(spec.bitrate_kbps), points[-1][1])))
    for (p0, r0), (p1, r1) in itertools.pairwise(points):
        if pixels <= p1:
            return r0 + (r1 - r0) * (pixels - p0) / (p1 - p0)
    top_pixels, top_rate = points[-1]
    return top_rate * pixels / top_pixels


def shape_rates(caps: Sequence[int], wanted: Sequence[int], floor_fraction: float) -> list[int]:
    """Per-title rates for one codec's rungs, largest first: each ``wanted`` rate held
    between ``floor_fraction`` of its cap and the cap, then made to fall with the picture
    (a smaller rung never gets more bits than a larger one: a rung's rate is at most the
    rate above it, so the ladder stays monotonic in both size and bits)."""
    rates = [
        round(min(cap, max(want, cap * floor_fraction)))
        for cap, want in zip(caps, wanted, strict=True)
    ]
    for n in range(1, len(rates)):
        rates[n] = min(rates[n], rates[n - 1])
    return rates


def _target(profile: LadderProfile, spec: RungSpec | None) -> float:
    if spec is not None and spec.target_xpsnr_db is not None:
        return spec.target_xpsnr_db
    return profile.per_title.target_xpsnr_db if profile.per_title else 40.0


def hevc_name(rung_name: str) -> str:
    return f"{rung_name}-hevc"


def plan_ladder(
    probe: ProbeResult,
    profile: LadderProfile = DEFAULT_PROFILE,
    *,
    cadence: Fraction | None = None,
    rates: Mapping[str, int] | None = None,
) -> LadderPlan:
    """Plan the ladder for ``probe``; ``cadence`` is the measured frame rate of a VFR master
    (see :func:`nominal_frame_rate`); ``rates`` are per-title rates in bit/s by rendition
    name (:mod:`transcoding.per_title`), held under the profile's rates as caps. Without
    them every rung gets the profile's rate (the caps)."""
    video = probe.primary_video
    if video is None:
        raise ValueError("cannot plan a ladder for a file without video")
    src_w, src_h = video.display_size
    sizes: list[tuple[tuple[int, int], RungSpec]] = []
    seen: set[tuple[int, int]] = set()

    def add(size: tuple[int, int], spec: RungSpec) -> None:
        if size not in seen:
            seen.add(size)
            sizes.append((size, spec))

    specs = sorted(profile.rungs, key=lambda r: r.height, reverse=True)
    native = (_even(src_w), _even(src_h))
    sized = [(spec, fit_in_box(src_w, src_h, spec.height)) for spec in specs]
    # Every rung whose box holds the whole source collapses to the source size.
    holding = [(spec, size) for spec, size in sized if size == native]
    smaller = [(spec, size) for spec, size in sized if size != native]
    if holding:
        spec, size = holding[-1]
        exact = spec.height == min(native)
        gain = size[0] * size[1] / (smaller[0][1][0] * smaller[0][1][1]) if smaller else math.inf
        # A source just above a rung (1000x562 vs 960x540) adds bits, not picture.
        if exact or gain >= profile.native_rung_min_gain:
            add(size, spec)
    for spec, size in smaller:
        add(size, spec)

    def rungs_for(
        codec: VideoCodec, chosen: list[tuple[tuple[int, int], RungSpec]]
    ) -> list[LadderRung]:
        hevc_beside = codec is VideoCodec.hevc and profile.codec is VideoCodec.h264
        factor = profile.hevc_bitrate_factor if hevc_beside else 1.0
        # Named by what it is: a 4:3 picture in the 540p box is 720x540, "540p"; a scope
        # picture in the 1080p box is 1920x804, "804p".
        names = [f"{min(size)}p" for size, _ in chosen]
        names = [hevc_name(n) for n in names] if hevc_beside else names
        caps = [round(rate_for_pixels(profile, w * h) * 1000) for (w, h), _ in chosen]
        bitrates = [round(cap * factor) for cap in caps]
        preset = profile.hevc_preset if hevc_beside else profile.preset
        return [
            LadderRung(
                name=name,
                width=size[0],
                height=size[1],
                bitrate=bitrate,
                maxrate=round(bitrate * profile.maxrate_factor),
                bufsize=round(bitrate * profile.bufsize_factor),
                codec=codec,
                preset=spec.preset or preset,
                cap=cap,
                target_xpsnr_db=_target(profile, spec),
            )
            for name, (size, spec), cap, bitrate in zip(names, chosen, caps, bitrates, strict=True)
        ]

    hevc_min = profile.hevc_rungs_min_height
    hevc_sizes = (
        [(size, spec) for size, spec in sizes if min(size) >= hevc_min]
        if hevc_min is not None and profile.codec is VideoCodec.h264
        else []
    )
    rate = output_frame_rate(video, profile.max_frame_rate, cadence)
    plan = LadderPlan(
        profile=profile,
        rungs=tuple(rungs_for(profile.codec, sizes)),
        frame_rate=rate,
        gop_frames=max(1, math.ceil(float(rate) * profile.gop_seconds - 1e-9)),
        source_width=src_w,
        source_height=src_h,
        deinterlace=video.interlaced,
        variable_frame_rate=video.variable_frame_rate,
        source_bit_depth=video.bit_depth,
        hevc_rungs=tuple(rungs_for(VideoCodec.hevc, hevc_sizes)),
    )
    return plan.with_rates(rates) if rates is not None and profile.per_title else plan


def load_profile(data: dict[str, Any] | str) -> LadderProfile:
    """A profile from a dict (settings, database row) or a JSON document."""
    if isinstance(data, str):
        return LadderProfile.model_validate_json(data)
    return LadderProfile.model_validate(data)
