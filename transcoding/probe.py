"""ffprobe a local file into plain dataclasses.

Probing is itself a parser run on untrusted bytes, so it gets the same guard rails as the
encodes: argv list, ``-protocol_whitelist file``, a demuxer allowlist (so hls/concat and
friends are never even tried) and a wall-time limit. Policy decisions live in policy.py;
this module only describes what is in the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from transcoding.tools import PROTOCOL_WHITELIST, ffprobe_path, run_tool

DEFAULT_PROBE_TIMEOUT = 60.0


def _fraction(value: Any) -> Fraction | None:
    """'24000/1001' -> Fraction; '0/0' or garbage -> None."""
    if not isinstance(value, str) or not value:
        return None
    num, _, den = value.partition("/")
    try:
        result = Fraction(int(num), int(den or "1"))
    except (ValueError, ZeroDivisionError):
        return None
    return result if result > 0 else None


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _language(tags: Mapping[str, Any]) -> str | None:
    lang = tags.get("language")
    if not isinstance(lang, str) or lang.lower() in {"", "und"}:
        return None
    return lang


# Bit depth by pixel format when ffprobe gives no bits_per_raw_sample (common for ProRes).
_PIXFMT_DEPTH_HINTS = (("p16", 16), ("p14", 14), ("p12", 12), ("p10", 10), ("p9", 9))


def _bit_depth(pix_fmt: str | None, raw: Any) -> int:
    depth = _int(raw)
    if depth:
        return depth
    for marker, bits in _PIXFMT_DEPTH_HINTS:
        if pix_fmt and marker in pix_fmt:
            return bits
    return 8


@dataclass(frozen=True)
class VideoStream:
    index: int
    codec: str
    profile: str | None
    width: int
    height: int
    pix_fmt: str | None
    bit_depth: int
    sample_aspect_ratio: Fraction
    field_order: str | None
    rotation: int  # degrees, normalised to 0/90/180/270 (from the display matrix)
    r_frame_rate: Fraction | None
    avg_frame_rate: Fraction | None
    duration: float | None
    language: str | None
    attached_pic: bool = False

    @property
    def interlaced(self) -> bool:
        # tt/bb/tb/bt are the interlaced values; "progressive" and unknown are treated as
        # progressive (bwdif on progressive frames only costs time and softens the picture).
        return self.field_order in {"tt", "bb", "tb", "bt"}

    @property
    def variable_frame_rate(self) -> bool:
        """r_frame_rate is the lowest rate that represents every timestamp; when the average
        differs by more than 1 % the file is variable-frame-rate (phones do this)."""
        if self.r_frame_rate is None or self.avg_frame_rate is None:
            return False
        return abs(self.r_frame_rate - self.avg_frame_rate) / self.avg_frame_rate > Fraction(1, 100)

    @property
    def frame_rate(self) -> Fraction | None:
        """The rate to plan with: the average (true) rate, falling back to r_frame_rate."""
        return self.avg_frame_rate or self.r_frame_rate

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown: square pixels, rotation applied."""
        width = self.width * self.sample_aspect_ratio
        w, h = round(width), self.height
        if self.rotation in (90, 270):
            w, h = h, w
        return w, h


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    profile: str | None
    channels: int
    channel_layout: str | None
    sample_rate: int | None
    language: str | None
    title: str | None
    # Dispositions a muxer or post house set: they say what the track is for.
    default: bool = False
    comment: bool = False
    visual_impaired: bool = False  # audio description
    dub: bool = False
    original: bool = False


@dataclass(frozen=True)
class SubtitleStream:
    index: int
    codec: str
    language: str | None
    title: str | None
    forced: bool
    default: bool = False
    hearing_impaired: bool = False  # SDH: speaker names and sounds as well as dialogue

    @property
    def is_text(self) -> bool:
        return self.codec in TEXT_SUBTITLE_CODECS


TEXT_SUBTITLE_CODECS = frozenset({"subrip", "srt", "webvtt", "mov_text", "ass", "ssa", "text"})
# Pictures of text: converting them needs OCR, which we do not do.
BITMAP_SUBTITLE_CODECS = frozenset(
    {"hdmv_pgs_subtitle", "dvb_subtitle", "dvd_subtitle", "xsub", "dvb_teletext"}
)


@dataclass(frozen=True)
class OtherStream:
    index: int
    codec_type: str
    codec: str | None


@dataclass(frozen=True)
class ProbeResult:
    path: Path
    format_name: str  # ffprobe's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration: float | None
    size: int
    bit_rate: int | None
    video: tuple[VideoStream, ...] = ()
    audio: tuple[AudioStream, ...] = ()
    subtitles: tuple[SubtitleStream, ...] = ()
    other: tuple[OtherStream, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def format_names(self) -> frozenset[str]:
        return frozenset(self.format_name.split(","))

    @property
    def stream_count(self) -> int:
        return len(self.video) + len(self.audio) + len(self.subtitles) + len(self.other)

    @property
    def primary_video(self) -> VideoStream | None:
        """The first real picture stream (cover art is an 'attached picture', not video)."""
        return next((v for v in self.video if not v.attached_pic), None)


def _rotation(stream: Mapping[str, Any]) -> int:
    rotation: float = 0.0
    for side in stream.get("side_data_list") or []:
        if isinstance(side, Mapping) and "rotation" in side:
            rotation = _float(side.get("rotation")) or 0.0
            break
    else:
        # Old muxers wrote a "rotate" tag instead of a display matrix.
        rotation = _float((stream.get("tags") or {}).get("rotate")) or 0.0
    return round(rotation / 90) * 90 % 360


def parse_probe_json(data: Mapping[str, Any], path: Path) -> ProbeResult:
    """Turn ffprobe's ``-show_format -show_streams`` JSON into a :class:`ProbeResult`."""
    fmt: Mapping[str, Any] = data.get("format") or {}
    video: list[VideoStream] = []
    audio: list[AudioStream] = []
    subtitles: list[SubtitleStream] = []
    other: list[OtherStream] = []
    for s in data.get("streams") or []:
        tags: Mapping[str, Any] = s.get("tags") or {}
        disposition: Mapping[str, Any] = s.get("disposition") or {}
        index = _int(s.get("index")) or 0
        codec = str(s.get("codec_name") or "unknown")
        kind = s.get("codec_type")
        if kind == "video":
            pix_fmt = s.get("pix_fmt")
            video.append(
                VideoStream(
                    index=index,
                    codec=codec,
                    profile=s.get("profile"),
                    width=_int(s.get("width")) or 0,
                    height=_int(s.get("height")) or 0,
                    pix_fmt=pix_fmt,
                    bit_depth=_bit_depth(pix_fmt, s.get("bits_per_raw_sample")),
                    sample_aspect_ratio=_fraction(
                        str(s.get("sample_aspect_ratio") or "1:1").replace(":", "/")
                    )
                    or Fraction(1),
                    field_order=s.get("field_order"),
                    rotation=_rotation(s),
                    r_frame_rate=_fraction(s.get("r_frame_rate")),
                    avg_frame_rate=_fraction(s.get("avg_frame_rate")),
                    duration=_float(s.get("duration")),
                    language=_language(tags),
                    attached_pic=bool(disposition.get("attached_pic")),
                )
            )
        elif kind == "audio":
            audio.append(
                AudioStream(
                    index=index,
                    codec=codec,
                    profile=s.get("profile"),
                    channels=_int(s.get("channels")) or 0,
                    channel_layout=s.get("channel_layout"),
                    sample_rate=_int(s.get("sample_rate")),
                    language=_language(tags),
                    title=tags.get("title"),
                    default=bool(disposition.get("default")),
                    comment=bool(disposition.get("comment")),
                    visual_impaired=bool(disposition.get("visual_impaired")),
                    dub=bool(disposition.get("dub")),
                    original=bool(disposition.get("original")),
                )
            )
        elif kind == "subtitle":
            subtitles.append(
                SubtitleStream(
                    index=index,
                    codec=codec,
                    language=_language(tags),
                    title=tags.get("title"),
                    forced=bool(disposition.get("forced")),
                    default=bool(disposition.get("default")),
                    hearing_impaired=bool(disposition.get("hearing_impaired")),
                )
            )
        else:
            other.append(OtherStream(index=index, codec_type=str(kind), codec=s.get("codec_name")))
    return ProbeResult(
        path=path,
        format_name=str(fmt.get("format_name") or ""),
        duration=_float(fmt.get("duration")),
        size=_int(fmt.get("size")) or (path.stat().st_size if path.exists() else 0),
        bit_rate=_int(fmt.get("bit_rate")),
        video=tuple(video),
        audio=tuple(audio),
        subtitles=tuple(subtitles),
        other=tuple(other),
        tags={str(k): str(v) for k, v in (fmt.get("tags") or {}).items()},
    )


def probe(
    path: Path,
    *,
    allowed_formats: Iterable[str],
    timeout: float = DEFAULT_PROBE_TIMEOUT,
) -> ProbeResult:
    """Probe ``path`` letting FFmpeg try only the demuxers in ``allowed_formats``.

    Raises :class:`transcoding.tools.ToolFailed` when ffprobe cannot open the file with
    those demuxers (unknown container, truncated, corrupt) or runs out of time.
    """
    argv = [
        ffprobe_path(),
        "-v",
        "error",
        "-hide_banner",
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "-format_whitelist",
        ",".join(sorted(set(allowed_formats))),
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        "-i",
        str(path),
    ]
    result = run_tool(argv, timeout=timeout)
    return parse_probe_json(json.loads(result.stdout or "{}"), path)


def identify_format(head: bytes, *, timeout: float = 20.0) -> str | None:
    """Name the container of a file from its first bytes, for an error message only.

    The bytes are fed through a pipe with ``-protocol_whitelist pipe`` so even a playlist
    demuxer has nothing it could open; we never use the result to decode anything.
    """
    argv = [
        ffprobe_path(),
        "-v",
        "quiet",
        "-protocol_whitelist",
        "pipe",
        "-print_format",
        "json",
        "-show_entries",
        "format=format_name",
        "-i",
        "pipe:0",
    ]
    try:
        result = run_tool(argv, timeout=timeout, stdin_bytes=head)
    except Exception:  # any failure just means "could not tell"
        return None
    name = (json.loads(result.stdout or "{}").get("format") or {}).get("format_name")
    return str(name) if name else None


def tail_packets(
    path: Path,
    *,
    from_seconds: float,
    allowed_formats: Iterable[str],
    timeout: float = DEFAULT_PROBE_TIMEOUT,
) -> tuple[int, str]:
    """Read the packets from ``from_seconds`` to the end: (packet count, ffprobe's errors).

    A faststart MP4 cut short still probes fine (its index is at the front) while the media
    it indexes is gone; reading the tail is what reveals it ("partial file", no packets).
    """
    argv = [
        ffprobe_path(),
        "-v",
        "error",
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "-format_whitelist",
        ",".join(sorted(set(allowed_formats))),
        "-read_intervals",
        f"{max(0.0, from_seconds):.3f}%",
        "-show_entries",
        "packet=pos",
        "-print_format",
        "json",
        "-i",
        str(path),
    ]
    result = run_tool(argv, timeout=timeout)
    packets = json.loads(result.stdout or "{}").get("packets") or []
    return len(packets), result.stderr.strip()
