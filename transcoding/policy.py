"""Input policy: what we agree to transcode, decided before any encode starts.

A master is untrusted bytes from a studio or a phone. FFmpeg can be talked into opening
other files or URLs by playlist-like formats (hls, concat, an AVI carrying a playlist in a
subtitle chunk), so the defence is layered:

1. sniff the first bytes ourselves and refuse anything playlist-like or textual;
2. probe with a *demuxer* allowlist (``-format_whitelist``) and ``-protocol_whitelist file``
   so FFmpeg never even tries a playlist demuxer;
3. check the probed container, codecs and caps against the tables below;
4. read the tail to catch truncated uploads that still probe fine.

Every refusal is :class:`core.errors.InvalidInput` with a stable ``code`` (see
docs/transcoding.md) and a ``detail`` a studio can act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidInput
from transcoding.probe import (
    DEFAULT_PROBE_TIMEOUT,
    ProbeResult,
    identify_format,
    probe,
    tail_packets,
)
from transcoding.subtitles import Cue, load_subtitle_file
from transcoding.tools import ToolFailed, ToolTimeout

GIB = 1024**3


# Demuxer names as FFmpeg spells them (the first name of ffprobe's format_name list is
# the demuxer; "mov,mp4,m4a,3gp,3g2,mj2" is one demuxer).
# "mpeg" is MPEG-PS: DVD-era archives (.vob, .mpg). MXF OP1a covers DNxHD/DNxHR, XDCAM
# (MPEG-2) and AVC-Intra masters with one PCM channel per audio track.
MASTER_DEMUXERS = frozenset({"mov", "matroska", "mxf", "mpegts", "mpeg"})
AUDIO_DEMUXERS = frozenset({"wav", "aac", "mp3", "flac", "mov"})

VIDEO_CODECS = frozenset(
    {
        "h264",
        "hevc",
        "prores",
        "dnxhd",  # DNxHD and DNxHR
        "mpeg2video",
        "mpeg1video",
        "vp9",
        "av1",
        "dvvideo",
        "ffv1",
        "v210",
        "rawvideo",
        "jpeg2000",
    }
)
AUDIO_CODECS = frozenset(
    {
        "aac",
        "mp3",
        "mp2",
        "ac3",
        "eac3",
        "dts",
        "pcm_dvd",  # DVD LPCM in MPEG-PS
        "flac",
        "alac",
        "opus",
        "vorbis",
        "pcm_s16le",
        "pcm_s16be",
        "pcm_s24le",
        "pcm_s24be",
        "pcm_s32le",
        "pcm_s32be",
        "pcm_f32le",
        "pcm_f32be",
    }
)
# Timecode tracks (mov tmcd, MXF data) and MKV attachments (fonts) are common in real
# masters; they are accepted and ignored.
IGNORED_STREAM_TYPES = frozenset({"data", "attachment"})

# Byte patterns of formats that reference other files or URLs. Checked at the start of the
# file (that is where FFmpeg's probes look) and anywhere in the head, because a playlist
# can also ride inside another container.
_PLAYLIST_PREFIXES = (b"#EXTM3U", b"ffconcat", b"#EXTINF", b"[playlist]", b"<?xml", b"v=0")
# An IMF package (SMPTE ST 2067) is an XML composition playlist (CPL) naming separate MXF
# track files, with an asset map and a packing list beside it.
_IMF_MARKERS = (b"CompositionPlaylist", b"AssetMap", b"PackingList", b"ST2067")
_PLAYLIST_MARKERS = (b"#EXTM3U", b"#EXT-X-", b"#EXTINF", b"ffconcat version")
SNIFF_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PolicyLimits:
    max_file_size: int = 250 * GIB
    max_duration: float = 6 * 3600.0
    min_duration: float = 1.0
    max_width: int = 8192
    max_height: int = 8192
    max_pixels: int = 8192 * 4320
    max_frame_rate: float = 120.0
    max_streams: int = 64
    max_audio_channels: int = 16
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT
    # FFmpeg wall-time limit for a run over `seconds` of media: a floor for start-up plus a
    # generous multiple of real time (the service measures ~0.6x real time per 1080p ladder
    # on 2 cores; 10x leaves room for 2K sources and busy hosts, yet still ends a hung run).
    wall_time_floor: float = 120.0
    wall_time_per_media_second: float = 10.0

    def wall_time_for(self, media_seconds: float) -> float:
        return self.wall_time_floor + self.wall_time_per_media_second * max(0.0, media_seconds)


DEFAULT_LIMITS = PolicyLimits()


def _refuse(detail: str, code: str) -> InvalidInput:
    return InvalidInput(detail, code=code)


def sniff(path: Path, limits: PolicyLimits = DEFAULT_LIMITS) -> None:
    """Refuse empty, oversized, playlist-like and textual files from their bytes alone."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise _refuse("file not found", "file_missing") from exc
    if size == 0:
        raise _refuse("file is empty (0 bytes); upload it again", "empty_file")
    if size > limits.max_file_size:
        raise _refuse(
            f"file is {size} bytes; the limit is {limits.max_file_size}", "file_too_large"
        )
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith(b"<") and any(marker in head for marker in _IMF_MARKERS):
        raise _refuse(
            "this is part of an IMF package (a composition playlist or its asset map); "
            "reading one makes the decoder open the MXF track files it names, which an "
            "upload may never do, and the track files are not in the upload. Export the "
            "composition as one MXF OP1a or QuickTime master",
            "imf_not_supported",
        )
    if start[:16].lower().startswith(tuple(p.lower() for p in _PLAYLIST_PREFIXES)):
        raise _refuse(
            "file is a playlist or a list of other files (HLS, concat, SDP or similar); "
            "upload the media file itself",
            "playlist_not_allowed",
        )
    for marker in _PLAYLIST_MARKERS:
        if marker in head:
            raise _refuse(
                f"file contains an embedded playlist ({marker.decode()!r}); such files can "
                "make the decoder open other files and are refused",
                "embedded_playlist",
            )
    sample = head[:4096]
    if sample and all(b in b"\t\n\r" or 32 <= b < 127 for b in sample):
        raise _refuse("file is plain text, not a media file", "not_media")


def _probe_or_refuse(path: Path, demuxers: Iterable[str], limits: PolicyLimits) -> ProbeResult:
    try:
        return probe(path, allowed_formats=demuxers, timeout=limits.probe_timeout)
    except ToolTimeout as exc:
        raise _refuse(
            f"probing took longer than {limits.probe_timeout:.0f}s", "probe_timeout"
        ) from exc
    except ToolFailed as exc:
        with path.open("rb") as fh:
            found = identify_format(fh.read(SNIFF_BYTES))
        if found and not set(found.split(",")) & set(demuxers):
            raise _refuse(
                f"container {found!r} is not accepted; accepted: {', '.join(sorted(demuxers))}",
                "unsupported_container",
            ) from exc
        raise _refuse(
            "file cannot be read as a media file (truncated, corrupt or an unknown format)",
            "unreadable_media",
        ) from exc


def _check_common(result: ProbeResult, demuxers: Iterable[str], limits: PolicyLimits) -> None:
    demuxer = result.format_name.split(",")[0]
    if demuxer not in set(demuxers):
        raise _refuse(f"container {result.format_name!r} is not accepted", "unsupported_container")
    if result.stream_count > limits.max_streams:
        raise _refuse(
            f"file has {result.stream_count} streams; the limit is {limits.max_streams}",
            "too_many_streams",
        )
    if result.duration is None:
        raise _refuse("file has no readable duration", "unreadable_media")
    if result.duration > limits.max_duration:
        raise _refuse(
            f"duration {result.duration:.0f}s exceeds the limit of {limits.max_duration:.0f}s",
            "duration_too_long",
        )
    if result.duration < limits.min_duration:
        raise _refuse(
            f"duration {result.duration:.2f}s is shorter than {limits.min_duration:.0f}s",
            "duration_too_short",
        )
    for audio in result.audio:
        if audio.codec not in AUDIO_CODECS:
            raise _refuse(
                f"audio stream #{audio.index} uses codec {audio.codec!r}, which is not accepted",
                "unsupported_audio_codec",
            )
        if audio.channels > limits.max_audio_channels or audio.channels < 1:
            raise _refuse(
                f"audio stream #{audio.index} has {audio.channels} channels",
                "unsupported_audio_layout",
            )
    for other in result.other:
        if other.codec_type not in IGNORED_STREAM_TYPES:
            raise _refuse(
                f"stream #{other.index} of type {other.codec_type!r} is not accepted",
                "unsupported_stream",
            )


def _check_tail(
    path: Path, result: ProbeResult, demuxers: Iterable[str], limits: PolicyLimits
) -> None:
    duration = result.duration or 0.0
    try:
        packets, errors = tail_packets(
            path,
            from_seconds=duration - 3.0,
            allowed_formats=demuxers,
            timeout=limits.probe_timeout,
        )
    except ToolFailed as exc:
        raise _refuse(
            "the end of the file cannot be read; it looks truncated", "truncated_file"
        ) from exc
    if packets == 0 or "partial file" in errors or "Invalid data" in errors:
        raise _refuse(
            "the file ends before its media does (interrupted upload?); upload it again",
            "truncated_file",
        )


def check_master(path: Path, limits: PolicyLimits = DEFAULT_LIMITS) -> ProbeResult:
    """Accept a master (video, optional audio and embedded subtitles) or raise InvalidInput."""
    sniff(path, limits)
    result = _probe_or_refuse(path, MASTER_DEMUXERS, limits)
    _check_common(result, MASTER_DEMUXERS, limits)
    video = result.primary_video
    if video is None:
        raise _refuse("file has no video stream", "no_video_stream")
    if len([v for v in result.video if not v.attached_pic]) > 1:
        raise _refuse(
            "file has more than one video stream; deliver one picture", "multiple_video_streams"
        )
    if video.codec not in VIDEO_CODECS:
        raise _refuse(
            f"video codec {video.codec!r} is not accepted; accepted: {', '.join(sorted(VIDEO_CODECS))}",
            "unsupported_video_codec",
        )
    if video.width <= 0 or video.height <= 0:
        raise _refuse("video stream has no picture size", "unreadable_media")
    if (
        video.width > limits.max_width
        or video.height > limits.max_height
        or video.width * video.height > limits.max_pixels
    ):
        raise _refuse(
            f"resolution {video.width}x{video.height} exceeds the limit of "
            f"{limits.max_width}x{limits.max_height}",
            "resolution_too_large",
        )
    rate = video.frame_rate
    if rate is None:
        raise _refuse("video frame rate cannot be determined", "unreadable_media")
    if float(rate) > limits.max_frame_rate:
        raise _refuse(
            f"frame rate {float(rate):.2f} exceeds {limits.max_frame_rate:.0f}",
            "frame_rate_too_high",
        )
    _check_tail(path, result, MASTER_DEMUXERS, limits)
    return result


def check_audio_sidecar(path: Path, limits: PolicyLimits = DEFAULT_LIMITS) -> ProbeResult:
    """Accept a dub or commentary file: exactly one audio stream, no picture."""
    sniff(path, limits)
    result = _probe_or_refuse(path, AUDIO_DEMUXERS, limits)
    _check_common(result, AUDIO_DEMUXERS, limits)
    if result.primary_video is not None:
        raise _refuse("an audio track file must not contain video", "unexpected_video_stream")
    if len(result.audio) != 1:
        raise _refuse(
            f"an audio track file must contain exactly one audio stream (found {len(result.audio)})",
            "no_audio_stream" if not result.audio else "multiple_audio_streams",
        )
    _check_tail(path, result, AUDIO_DEMUXERS, limits)
    return result


def check_subtitle_sidecar(path: Path, limits: PolicyLimits = DEFAULT_LIMITS) -> list[Cue]:
    """Accept an SRT or WebVTT file (parsed by our own code, never by FFmpeg)."""
    return load_subtitle_file(path)
