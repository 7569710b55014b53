"""Poster frame and thumbnail sprite for the apps' catalog and scrubbing bar."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from transcoding.policy import DEFAULT_LIMITS, PolicyLimits
from transcoding.probe import ProbeResult
from transcoding.subtitles import format_timestamp
from transcoding.tools import PROTOCOL_WHITELIST, ToolFailed, ffmpeg_path, run_tool

_GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y")


@dataclass(frozen=True)
class ThumbnailSprite:
    images: tuple[Path, ...]  # JPEG grids, one per `columns * rows` thumbnails
    vtt: Path  # WebVTT track: each cue points at "sprite_N.jpg#xywh=x,y,w,h"
    interval: float
    tile_width: int
    tile_height: int


def _input_args(probe: ProbeResult) -> list[str]:
    return [
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "-format_whitelist",
        probe.format_name.split(",")[0],
    ]


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def display_fit(probe: ProbeResult, max_width: int) -> tuple[int, int]:
    """The picture's display size (pixel aspect ratio and rotation applied), no wider than
    ``max_width``, even dimensions: an anamorphic PAL master (720x576, SAR 16:15) gives a
    768x576 frame, not a squeezed 720x576 one."""
    video = probe.primary_video
    if video is None:
        raise ValueError("no video")
    display_w, display_h = video.display_size
    width = min(max_width, display_w)
    return _even(width), _even(width * display_h / display_w)


# JPEG is full-range YUV: the mjpeg encoder refuses limited-range frames unless told to be
# non-standard, and which format the filter graph hands it depends on the graph (a master
# shorter than one sprite interval used to fail with "Non full-range YUV is non-standard").
# Converting explicitly makes every image the same, correct, kind.
_JPEG_RANGE = "out_range=full,format=yuvj420p"


def _check_written(paths: tuple[Path, ...] | list[Path], what: str) -> None:
    # FFmpeg exits 0 having written nothing when no frame reached the output (a seek past
    # the last frame); an image step must not report success without its files.
    missing = [p.name for p in paths if not p.is_file() or p.stat().st_size == 0]
    if missing:
        raise ToolFailed("ffmpeg", f"{what}: no image written ({', '.join(missing)})")


def make_poster(
    probe: ProbeResult,
    out: Path,
    *,
    at_seconds: float | None = None,
    max_width: int = 1280,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> Path:
    """A JPEG poster frame at the display aspect, by default 10 % into the film (past studio
    logos and black), rotation applied, never wider than ``max_width``."""
    duration = probe.duration or 0.0
    at = at_seconds if at_seconds is not None else min(duration * 0.1, 60.0)
    # Stay a little before the end even for a 1 s teaser, so a frame is always decoded.
    at = max(0.0, min(at, duration - min(0.5, duration / 2)))
    width, height = display_fit(probe, max_width)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    argv = [
        ffmpeg_path(),
        *_GLOBAL_ARGS,
        *_input_args(probe),
        "-ss",
        f"{at:.3f}",
        "-i",
        str(probe.path),
        "-frames:v",
        "1",
        "-vf",
        f"bwdif=deint=interlaced,scale={width}:{height}:{_JPEG_RANGE},setsar=1",
        "-q:v",
        "3",
        "-update",
        "1",
        str(out),
    ]
    run_tool(argv, timeout=limits.wall_time_floor)
    _check_written([out], "poster")
    return out


def sprite_interval(duration: float) -> float:
    """Seconds between thumbnails: one every 10 s for a feature, about ten for anything
    shorter than 100 s (a 3 s trailer gets one every 0.3 s), never denser than 4 a second."""
    return round(max(0.25, min(10.0, duration / 10)), 3)


def make_thumbnail_sprite(
    probe: ProbeResult,
    out_dir: Path,
    *,
    interval: float | None = None,
    tile_width: int = 160,
    columns: int = 10,
    rows: int = 10,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> ThumbnailSprite:
    """One thumbnail every ``interval`` seconds (default: :func:`sprite_interval`), tiled
    into JPEG grids, plus the WebVTT thumbnails track players use for scrub previews.
    Thumbnails have the picture's display aspect; a grid is no larger than its thumbnails
    need (a 1 s teaser's sheet is one row of four)."""
    duration = probe.duration or 0.0
    step = interval if interval is not None else sprite_interval(duration)
    tile_width, tile_height = display_fit(probe, tile_width)
    count = max(1, math.ceil(duration / step - 1e-9))
    columns = min(columns, count)
    rows = min(rows, math.ceil(count / columns))
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("sprite_*.jpg"):
        stale.unlink()
    per_sheet = columns * rows
    argv = [
        ffmpeg_path(),
        *_GLOBAL_ARGS,
        *_input_args(probe),
        "-i",
        str(probe.path),
        "-an",
        "-sn",
        "-vf",
        # fps picks one frame per interval; tile packs them; the last sheet may be partial.
        f"fps=1/{step:g}:round=down,scale={tile_width}:{tile_height}:{_JPEG_RANGE},setsar=1,"
        f"tile={columns}x{rows}",
        "-q:v",
        "4",
        "-fps_mode",
        "passthrough",
        str(out_dir / "sprite_%d.jpg"),
    ]
    run_tool(argv, timeout=limits.wall_time_for(duration / 4))
    sheets = math.ceil(count / per_sheet)
    images = tuple(out_dir / f"sprite_{n + 1}.jpg" for n in range(sheets))
    _check_written(images, "thumbnail sprite")
    lines = ["WEBVTT", ""]
    for i in range(count):
        sheet, cell = divmod(i, per_sheet)
        row, col = divmod(cell, columns)
        start, end = i * step, min(duration, (i + 1) * step)
        lines += [
            f"{format_timestamp(start)} --> {format_timestamp(end)}",
            f"{images[sheet].name}#xywh={col * tile_width},{row * tile_height},"
            f"{tile_width},{tile_height}",
            "",
        ]
    vtt = out_dir / "thumbnails.vtt"
    vtt.write_text("\n".join(lines), encoding="utf-8")
    return ThumbnailSprite(
        images=images, vtt=vtt, interval=step, tile_width=tile_width, tile_height=tile_height
    )
