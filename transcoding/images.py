"""Poster frame and thumbnail sprite for the apps' catalog and scrubbing bar."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from transcoding.policy import DEFAULT_LIMITS, PolicyLimits
from transcoding.probe import ProbeResult
from transcoding.subtitles import format_timestamp
from transcoding.tools import PROTOCOL_WHITELIST, ffmpeg_path, run_tool

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


def make_poster(
    probe: ProbeResult,
    out: Path,
    *,
    at_seconds: float | None = None,
    max_width: int = 1280,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> Path:
    """A JPEG poster frame, by default 10 % into the film (past studio logos and black),
    rotation applied, never wider than ``max_width``."""
    duration = probe.duration or 0.0
    at = at_seconds if at_seconds is not None else min(duration * 0.1, 60.0)
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        ffmpeg_path(),
        *_GLOBAL_ARGS,
        *_input_args(probe),
        "-ss",
        f"{max(0.0, min(at, duration - 0.5)):.3f}",
        "-i",
        str(probe.path),
        "-frames:v",
        "1",
        "-vf",
        f"bwdif=deint=interlaced,scale='min({max_width},iw)':-2,setsar=1",
        "-q:v",
        "3",
        "-update",
        "1",
        str(out),
    ]
    run_tool(argv, timeout=limits.wall_time_floor)
    return out


def make_thumbnail_sprite(
    probe: ProbeResult,
    out_dir: Path,
    *,
    interval: float = 10.0,
    tile_width: int = 160,
    columns: int = 10,
    rows: int = 10,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> ThumbnailSprite:
    """One thumbnail every ``interval`` seconds, tiled into JPEG grids, plus the WebVTT
    thumbnails track players use for scrub previews."""
    video = probe.primary_video
    if video is None:
        raise ValueError("no video")
    duration = probe.duration or 0.0
    display_w, display_h = video.display_size
    tile_height = max(2, round(tile_width * display_h / display_w / 2) * 2)
    out_dir.mkdir(parents=True, exist_ok=True)
    count = max(1, math.ceil(duration / interval))
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
        f"fps=1/{interval:g}:round=down,scale={tile_width}:{tile_height},setsar=1,"
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
    lines = ["WEBVTT", ""]
    for i in range(count):
        sheet, cell = divmod(i, per_sheet)
        row, col = divmod(cell, columns)
        start, end = i * interval, min(duration, (i + 1) * interval)
        lines += [
            f"{format_timestamp(start)} --> {format_timestamp(end)}",
            f"{images[sheet].name}#xywh={col * tile_width},{row * tile_height},"
            f"{tile_width},{tile_height}",
            "",
        ]
    vtt = out_dir / "thumbnails.vtt"
    vtt.write_text("\n".join(lines), encoding="utf-8")
    return ThumbnailSprite(
        images=images, vtt=vtt, interval=interval, tile_width=tile_width, tile_height=tile_height
    )
