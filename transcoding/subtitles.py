"""SRT and WebVTT sidecars, parsed and written by our own code (never by FFmpeg).

Subtitle files are small text files, so parsing them in Python removes a whole class of
demuxer risk and lets us give a line number when a studio's file is broken.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import m3u8

from core.errors import InvalidInput
from transcoding import playlists

MAX_SUBTITLE_BYTES = 5 * 1024 * 1024  # a feature film's SRT is ~100 KiB

_TIMING = re.compile(
    r"^\s*(?P<start>(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})\s*-->\s*"
    r"(?P<end>(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})(?P<settings>[^\n]*)$"
)
# Only the tags WebVTT knows survive; SRT's <font> and ASS-style {\an8} overrides go.
_SRT_DROP = re.compile(r"</?font[^>]*>|\{\\[^}]*\}", re.IGNORECASE)


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str
    settings: str = ""


def _seconds(stamp: str) -> float:
    parts = stamp.replace(",", ".").split(":")
    if len(parts) == 2:
        parts.insert(0, "0")
    hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    if minutes >= 60 or seconds >= 60:
        raise ValueError(stamp)
    return hours * 3600 + minutes * 60 + seconds


def format_timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; anything else is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"subtitle file is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8",
            code="invalid_subtitles",
        ) from exc


def parse_subtitles(text: str) -> list[Cue]:
    """Parse SRT or WebVTT text into cues sorted by start time."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    is_vtt = text.lstrip().startswith("WEBVTT")
    cues: list[Cue] = []
    blocks = re.split(r"\n\s*\n", text.strip())
    for number, block in enumerate(blocks, start=1):
        lines = block.split("\n")
        if is_vtt and number == 1 and lines[0].startswith("WEBVTT"):
            continue  # header block
        if is_vtt and lines[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        timing_at = next((i for i, line in enumerate(lines[:3]) if "-->" in line), None)
        if timing_at is None:
            raise InvalidInput(
                f"subtitle block {number} has no 'start --> end' timing line",
                code="invalid_subtitles",
            )
        match = _TIMING.match(lines[timing_at])
        if match is None:
            raise InvalidInput(
                f"subtitle block {number}: cannot read timing {lines[timing_at]!r}",
                code="invalid_subtitles",
            )
        try:
            start, end = _seconds(match["start"]), _seconds(match["end"])
        except ValueError as exc:
            raise InvalidInput(
                f"subtitle block {number}: impossible timestamp {exc}", code="invalid_subtitles"
            ) from exc
        if end <= start:
            raise InvalidInput(
                f"subtitle block {number}: ends before it starts", code="invalid_subtitles"
            )
        body = "\n".join(lines[timing_at + 1 :]).strip()
        if not is_vtt:
            body = _SRT_DROP.sub("", body)
        # A bare "-->" inside cue text would end the cue early in a WebVTT parser.
        body = body.replace("-->", "->")
        if body:
            settings = match["settings"].strip() if is_vtt else ""
            cues.append(Cue(start=start, end=end, text=body, settings=settings))
    cues.sort(key=lambda cue: (cue.start, cue.end))
    return cues


def load_subtitle_file(path: Path, *, max_bytes: int = MAX_SUBTITLE_BYTES) -> list[Cue]:
    size = path.stat().st_size
    if size == 0:
        raise InvalidInput("subtitle file is empty", code="empty_file")
    if size > max_bytes:
        raise InvalidInput(
            f"subtitle file is {size} bytes; the limit is {max_bytes}", code="file_too_large"
        )
    cues = parse_subtitles(decode_text(path.read_bytes()))
    if not cues:
        raise InvalidInput("subtitle file contains no cues", code="invalid_subtitles")
    return cues


def to_webvtt(cues: Sequence[Cue], *, header: str = "") -> str:
    lines = ["WEBVTT"]
    if header:
        lines.append(header)
    lines.append("")
    for cue in cues:
        timing = f"{format_timestamp(cue.start)} --> {format_timestamp(cue.end)}"
        if cue.settings:
            timing += " " + cue.settings
        lines += [timing, cue.text, ""]
    return "\n".join(lines)


def write_segmented_webvtt(
    cues: Sequence[Cue],
    out_dir: Path,
    *,
    duration: float,
    segment_seconds: float,
    playlist_name: str = "subtitles.m3u8",
) -> Path:
    """Write WebVTT segments aligned with the media segments and their media playlist.

    Every segment carries ``X-TIMESTAMP-MAP`` (required by Apple for segmented WebVTT) with
    cue times on the presentation timeline, which starts at 0 in our fMP4 output. A cue that
    spans a boundary is repeated in both segments, as RFC 8216 allows.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    count = max(1, int(-(-duration // segment_seconds)))
    entries: list[m3u8.Segment] = []
    for n in range(count):
        start = n * segment_seconds
        end = min(duration, start + segment_seconds)
        in_segment = [c for c in cues if c.start < end and c.end > start]
        name = f"sub_{n + 1:05d}.vtt"
        (out_dir / name).write_text(
            to_webvtt(in_segment, header="X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"),
            encoding="utf-8",
        )
        entries.append(m3u8.Segment(uri=name, duration=end - start))
    path = out_dir / playlist_name
    playlists.dump(playlists.media_playlist(round(segment_seconds), entries), path)
    return path
