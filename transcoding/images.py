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


@dataclass(frozen=True)
class SpriteLayout:
    """Where each thumbnail of a film goes: thumbnail ``i`` shows time ``i * interval`` and
    sits in sheet ``i // per_sheet``, row-major."""

    duration: float
    interval: float
    count: int
    columns: int
    rows: int
    tile_width: int
    tile_height: int

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows

    @property
    def sheets(self) -> int:
        return math.ceil(self.count / self.per_sheet)

    def between(self, start: float, end: float) -> range:
        """The thumbnails whose time falls in ``[start, end)``: a chunk's share."""
        first = math.ceil(start / self.interval - 1e-9)
        return range(min(first, self.count), min(self.count, math.ceil(end / self.interval - 1e-9)))


def sprite_layout(
    probe: ProbeResult,
    *,
    interval: float | None = None,
    tile_width: int = 160,
    columns: int = 10,
    rows: int = 10,
    duration: float | None = None,
) -> SpriteLayout:
    """Thumbnails at the display aspect; a grid no larger than its thumbnails need (a 1 s
    teaser's sheet is one row of four). ``duration`` overrides the probed one (a benchmark
    lays out a longer film with the same picture)."""
    duration = duration if duration is not None else (probe.duration or 0.0)
    step = interval if interval is not None else sprite_interval(duration)
    width, height = display_fit(probe, tile_width)
    count = max(1, math.ceil(duration / step - 1e-9))
    columns = min(columns, count)
    return SpriteLayout(
        duration=duration,
        interval=step,
        count=count,
        columns=columns,
        rows=min(rows, math.ceil(count / columns)),
        tile_width=width,
        tile_height=height,
    )


def _sprite(layout: SpriteLayout, out_dir: Path) -> ThumbnailSprite:
    """Check the sheets FFmpeg wrote and write the WebVTT track that points into them."""
    images = tuple(out_dir / f"sprite_{n + 1}.jpg" for n in range(layout.sheets))
    _check_written(images, "thumbnail sprite")
    lines = ["WEBVTT", ""]
    for i in range(layout.count):
        sheet, cell = divmod(i, layout.per_sheet)
        row, col = divmod(cell, layout.columns)
        start, end = i * layout.interval, min(layout.duration, (i + 1) * layout.interval)
        lines += [
            f"{format_timestamp(start)} --> {format_timestamp(end)}",
            f"{images[sheet].name}#xywh={col * layout.tile_width},{row * layout.tile_height},"
            f"{layout.tile_width},{layout.tile_height}",
            "",
        ]
    vtt = out_dir / "thumbnails.vtt"
    vtt.write_text("\n".join(lines), encoding="utf-8")
    return ThumbnailSprite(
        images=images,
        vtt=vtt,
        interval=layout.interval,
        tile_width=layout.tile_width,
        tile_height=layout.tile_height,
    )


def _fresh(out_dir: Path, pattern: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(pattern):
        stale.unlink()


def _tiles_filter(layout: SpriteLayout) -> str:
    # fps picks one frame per interval (the frame showing at that time).
    return (
        f"fps=1/{layout.interval:g}:round=down,"
        f"scale={layout.tile_width}:{layout.tile_height}:{_JPEG_RANGE},setsar=1"
    )


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
    """One thumbnail every ``interval`` seconds (default: :func:`sprite_interval`) of the
    whole master, tiled into JPEG grids, plus the WebVTT thumbnails track players use for
    scrub previews. This decodes the whole master in one process; the pipeline instead
    makes each chunk's thumbnails beside its encode (:func:`make_chunk_thumbnails`) and
    only tiles them at the end (:func:`tile_sprite`)."""
    layout = sprite_layout(
        probe, interval=interval, tile_width=tile_width, columns=columns, rows=rows
    )
    _fresh(out_dir, "sprite_*.jpg")
    argv = [
        ffmpeg_path(),
        *_GLOBAL_ARGS,
        *_input_args(probe),
        "-i",
        str(probe.path),
        "-an",
        "-sn",
        "-vf",
        # tile packs them; the last sheet may be partial.
        f"{_tiles_filter(layout)},tile={layout.columns}x{layout.rows}",
        "-q:v",
        "4",
        "-fps_mode",
        "passthrough",
        str(out_dir / "sprite_%d.jpg"),
    ]
    run_tool(argv, timeout=limits.wall_time_for(layout.duration / 4))
    return _sprite(layout, out_dir)


TILE_NAME = "thumb_%06d.jpg"


def make_chunk_thumbnails(
    rendition: Path,
    out_dir: Path,
    layout: SpriteLayout,
    *,
    start: float,
    seconds: float,
    fresh: bool = True,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> list[Path]:
    """A chunk's thumbnails (those of ``layout.between(start, start + seconds)``), one JPEG
    each, named by their index in the film. ``rendition`` is one of the chunk's own
    encoded rungs (its time 0 is ``start`` in the film), already at the display aspect:
    decoding a small rung costs a fraction of decoding the master again. ``fresh=False``
    keeps other chunks' thumbnails already in ``out_dir``."""
    wanted = layout.between(start, start + seconds)
    if fresh:
        _fresh(out_dir, "thumb_*.jpg")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not wanted:
        return []
    offset = max(0.0, wanted[0] * layout.interval - start)
    argv = [
        ffmpeg_path(),
        *_GLOBAL_ARGS,
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "-format_whitelist",
        "mov",
        "-ss",
        f"{offset:.3f}",
        "-i",
        str(rendition),
        "-an",
        "-sn",
        "-vf",
        _tiles_filter(layout),
        "-frames:v",
        str(len(wanted)),
        # Tiles are decoded once more to be tiled: keep them close to lossless.
        "-q:v",
        "2",
        "-start_number",
        str(wanted[0]),
        str(out_dir / TILE_NAME),
    ]
    run_tool(argv, timeout=limits.wall_time_for(seconds / 4))
    paths = [out_dir / (TILE_NAME % i) for i in wanted]
    written = [p for p in paths if p.is_file() and p.stat().st_size > 0]
    if not written:
        raise ToolFailed("ffmpeg", "chunk thumbnails: no image written")
    # The last thumbnail time of a chunk can fall after its last frame's start by less than
    # a frame; it shows the chunk's last frame, as the whole-film filter would.
    for path in paths:
        if path not in written:
            path.write_bytes(written[-1].read_bytes())
            written.append(path)
    return paths


def tile_sprite(
    tiles_dir: Path,
    out_dir: Path,
    layout: SpriteLayout,
    *,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> ThumbnailSprite:
    """The sheets and WebVTT track from every thumbnail of the film (:data:`TILE_NAME`
    files in ``tiles_dir``, indices 0 … count-1): the only image work left after the last
    chunk, which reads a few hundred small JPEGs, not the master."""
    missing = [i for i in range(layout.count) if not (tiles_dir / (TILE_NAME % i)).is_file()]
    if missing:
        raise ToolFailed("ffmpeg", f"thumbnail sprite: {len(missing)} thumbnails missing")
    _fresh(out_dir, "sprite_*.jpg")
    argv = [
        ffmpeg_path(),
        *_GLOBAL_ARGS,
        "-protocol_whitelist",
        "file",
        "-f",
        "image2",
        "-framerate",
        "1",
        "-start_number",
        "0",
        "-i",
        str(tiles_dir / TILE_NAME),
        "-vf",
        f"tile={layout.columns}x{layout.rows}",
        "-q:v",
        "4",
        "-fps_mode",
        "passthrough",
        str(out_dir / "sprite_%d.jpg"),
    ]
    run_tool(argv, timeout=limits.wall_time_floor)
    return _sprite(layout, out_dir)
