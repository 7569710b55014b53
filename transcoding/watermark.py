"""A/B forensic watermark: embedding at encode time, the detector's reference, variant B's
packaging, and the features the detector reads from a captured copy.

The mark (docs/watermark.md) is a faint, large luminance pattern: a 16x9 grid of random
+1/-1 cells (seeded by the release id) scaled smoothly to the picture and added with
``strength`` code values to variant A, subtracted from variant B (FFmpeg ``blend`` in
``grainmerge`` mode on luma only, chroma untouched). Cells a ninth of the picture high are
far below the frequencies a re-encode at a third of the bitrate or a rescale removes, and
two code values are below what an eye sees in a picture that moves; but over a whole
segment the mean luma of each cell moves by about ``2 x strength`` between A and B.

The detector works with a reference, not blind: at packaging time we record each
segment's mean cell luma in A and in B (:func:`segment_features`). A capture's segment is
then placed between its two references: +1 at B, -1 at A, 0 for a copy carrying neither.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from drm.watermark import carries_bit, segment_index, variant_folder
from transcoding.ladder import LadderRung
from transcoding.policy import DEFAULT_LIMITS, PolicyLimits
from transcoding.tools import PROTOCOL_WHITELIST, ToolFailed, ToolTimeout, ffmpeg_path

GRID_W, GRID_H = 16, 9
CELLS = GRID_W * GRID_H
REFERENCE_VERSION = 1
# Frames this close to a segment boundary are left out of its mean: a capture's timing
# may be off by a frame or two after re-encoding.
EDGE_SECONDS = 0.25


def pattern(release_id: str) -> list[int]:
    """The release's +1/-1 cells, row by row (a fixed function of the release id)."""
    bits = hashlib.sha256(f"pocketcinema/watermark-pattern/v1:{release_id}".encode()).digest()
    return [1 if (bits[i >> 3] >> (i & 7)) & 1 else -1 for i in range(CELLS)]


def write_pattern(path: Path, cells: Sequence[int], sign: int, strength: float) -> Path:
    """One 16x9 yuv444p frame: luma 128 + sign x strength x cell, chroma neutral (128).
    ``grainmerge`` adds ``pattern - 128``, so 128 is "no change"."""
    luma = bytes(max(0, min(255, round(128 + sign * strength * c))) for c in cells)
    path.write_bytes(luma + bytes([128]) * (2 * CELLS))
    return path


@dataclass(frozen=True)
class Marking:
    """What the encode graph needs to mark one release: its two pattern frames, and which
    segments carry a bit (every ``every``-th, ``segment_seconds`` long)."""

    plus: Path
    minus: Path
    every: int = 1
    segment_seconds: float = 6.0

    def blank_outside_marked(self, offset: float) -> str | None:
        """An FFmpeg ``enable`` expression true on the frames of segments that carry no
        bit, for a graph whose time 0 is ``offset`` seconds into the film (a chunk's
        start); None when every segment carries one. Variant B of those segments is never
        served, so it is encoded as black frames, which the encoder turns out at a small
        fraction of the cost of real pictures, and then dropped."""
        if self.every == 1:
            return None
        # A hair past each boundary: the first frame of a segment sits exactly on it.
        return f"mod(floor((t+{offset:.6f})/{self.segment_seconds:g}+0.0001),{self.every})"


def prepare_marking(
    release_id: str,
    strength: float,
    work: Path,
    *,
    every: int = 1,
    segment_seconds: float = 6.0,
) -> Marking:
    work.mkdir(parents=True, exist_ok=True)
    cells = pattern(release_id)
    return Marking(
        plus=write_pattern(work / "watermark_a.yuv", cells, +1, strength),
        minus=write_pattern(work / "watermark_b.yuv", cells, -1, strength),
        every=every,
        segment_seconds=segment_seconds,
    )


def blank(stream: Any, enable: str) -> Any:
    """``stream`` with every frame for which ``enable`` holds painted black."""
    return stream.filter(
        "drawbox", x=0, y=0, w="iw", h="ih", color="black", t="fill", enable=enable
    )


def mark(stream: Any, pattern_file: Path, rung: LadderRung) -> Any:
    """``stream`` (yuv420p at the rung's size) with the pattern in ``pattern_file`` added.

    The pattern frame is looped for ever and ``shortest`` ends the blend with the video;
    opacity 0 on the chroma planes keeps colour exactly as it was."""
    overlay = (
        ffmpeg.input(str(pattern_file), f="rawvideo", pix_fmt="yuv444p", s=f"{GRID_W}x{GRID_H}")
        .filter("scale", rung.width, rung.height, flags="bicubic")
        .filter("format", "yuv420p")
        # Scaled once, then repeated: and a node per rung size (ffmpeg-python merges equal
        # nodes, and one filter output cannot feed two rungs without a split).
        .filter("loop", loop=-1, size=1)
    )
    return ffmpeg.filter(
        [stream, overlay],
        "blend",
        c0_mode="grainmerge",
        c1_mode="normal",
        c1_opacity=0,
        c2_mode="normal",
        c2_opacity=0,
        shortest=1,
    )


# ------------------------------------------------------------------------------ features


def frame_cells(
    path: Path,
    frame_rate: Fraction,
    *,
    limits: PolicyLimits = DEFAULT_LIMITS,
    max_seconds: float | None = None,
) -> list[bytes]:
    """Every frame of ``path`` at ``frame_rate``, shrunk to 16x9 luma by area averaging
    (one byte per cell). Any size and any codec FFmpeg reads: scaling is undone here."""
    argv = [
        ffmpeg_path(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "-i",
        str(path),
        *(["-t", f"{max_seconds:.3f}"] if max_seconds is not None else []),
        "-map",
        "0:v:0",
        "-vf",
        f"fps={frame_rate.numerator}/{frame_rate.denominator},"
        f"scale={GRID_W}:{GRID_H}:flags=area,format=gray",
        "-f",
        "rawvideo",
        "-",
    ]
    # Decoding to 16x9 cells runs well above real time; a capture of unknown length gets
    # the limit of the longest master the policy accepts.
    timeout = limits.wall_time_for(max_seconds if max_seconds is not None else limits.max_duration)
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ToolTimeout("ffmpeg", f"no answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace")[-2000:]
        raise ToolFailed("ffmpeg", "could not read the video", tail, done.returncode)
    data = done.stdout
    return [data[i : i + CELLS] for i in range(0, len(data) - CELLS + 1, CELLS)]


def segment_features(
    frames: Sequence[bytes], frame_rate: Fraction, segment_seconds: float
) -> list[list[float]]:
    """Mean luma of each cell over each segment's frames (boundary frames left out)."""
    per_segment = float(frame_rate) * segment_seconds
    edge = round(float(frame_rate) * EDGE_SECONDS)
    out: list[list[float]] = []
    index = 0
    while True:
        first = round(index * per_segment)
        if first >= len(frames):
            return out
        last = min(round((index + 1) * per_segment), len(frames))
        inner = frames[first + edge : last - edge] if last - first > 2 * edge + 1 else []
        if not inner:  # a tail too short to measure
            return out
        sums = [0] * CELLS
        for frame in inner:
            for cell in range(CELLS):
                sums[cell] += frame[cell]
        out.append([s / len(inner) for s in sums])
        index += 1


def reference(
    a_path: Path,
    b_path: Path,
    *,
    frame_rate: Fraction,
    segment_seconds: float,
    folders: Sequence[str],
    every: int = 1,
) -> dict[str, Any]:
    """The detector's reference: each segment's cell means in variant A and in variant B
    of one marked rung (any: the means do not depend on the picture size). A segment
    that carries no bit gets A's means for B as well: no contrast, so the detector reads
    nothing there (forensics/detection.py)."""
    a = segment_features(frame_cells(a_path, frame_rate), frame_rate, segment_seconds)
    b = segment_features(frame_cells(b_path, frame_rate), frame_rate, segment_seconds)
    count = min(len(a), len(b))
    b = [b[i] if carries_bit(i, every) else a[i] for i in range(count)]
    return {
        "version": REFERENCE_VERSION,
        "grid": [GRID_W, GRID_H],
        "frame_rate": str(frame_rate),
        "segment_seconds": segment_seconds,
        "folders": list(folders),
        "every": every,
        "a": [[round(v, 2) for v in seg] for seg in a[:count]],
        "b": [[round(v, 2) for v in seg] for seg in b],
    }


def dump_reference(data: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ variant B


def place_variants(
    packaged_b: Path, out_dir: Path, folders: Sequence[str], every: int = 1
) -> list[str]:
    """Move the media segments of variant B's package (same timing, same keys, made by
    the same packaging call) beside A's: ``video_720p/`` -> ``video_720p.b/``. Only the
    media segments that carry a bit: players always get A's init segment (identical codec
    configuration, same encoder settings; the cbcs package's IVs are derived from the key,
    so A's ``tenc`` fits B) and A's playlists and manifest, rewritten per session."""
    placed = []
    for folder in folders:
        target = out_dir / variant_folder(folder)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for segment in sorted((packaged_b / folder).glob("*seg_*.m4s")):
            index = segment_index(segment.name)
            if index is not None and carries_bit(index, every):
                shutil.move(str(segment), target / segment.name)
        placed.append(variant_folder(folder))
    return placed
