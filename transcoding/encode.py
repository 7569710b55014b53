"""FFmpeg graphs for the ladder and the audio tracks, built with ffmpeg-python.

The service's pipeline decodes the master once and feeds every rung from one ``split``
(FINDINGS.md: 1.87x faster than one process per rung on 2 cores, because decoding a
high-bitrate master costs about a quarter of each per-rung run). A chunk is the same graph
over a time range, so a film can be spread over the pool. Output is one plain MP4 per rung
(per chunk); packaging turns them into CMAF segments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from transcoding.chunking import Chunk
from transcoding.ladder import LadderPlan, LadderProfile, LadderRung, VideoCodec
from transcoding.policy import DEFAULT_LIMITS, PolicyLimits
from transcoding.probe import AudioStream, ProbeResult, SubtitleStream
from transcoding.tools import (
    PROTOCOL_WHITELIST,
    ProgressCallback,
    ffmpeg_path,
    run_ffmpeg_with_progress,
    run_tool,
)
from transcoding.watermark import Marking, blank, mark

_GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y")


@dataclass(frozen=True)
class RenditionFile:
    """One encoded rung: a plain MP4 holding only its video stream."""

    rung: LadderRung
    path: Path
    variant: str = ""  # "" (the rung, variant A when watermarked) or "b" (watermark B)

    @property
    def output_name(self) -> str:
        return f"{self.rung.name}.{self.variant}" if self.variant else self.rung.name


@dataclass(frozen=True)
class EncodeResult:
    renditions: tuple[RenditionFile, ...]
    media_seconds: float
    wall_seconds: float

    @property
    def realtime_factor(self) -> float:
        return self.media_seconds / self.wall_seconds if self.wall_seconds else 0.0


def _demuxer(probe: ProbeResult) -> str:
    # Re-open the master with exactly the demuxer the policy accepted, nothing else.
    return probe.format_name.split(",")[0]


def _input(probe: ProbeResult, chunk: Chunk | None = None) -> Any:
    kwargs: dict[str, Any] = {
        "protocol_whitelist": PROTOCOL_WHITELIST,
        "format_whitelist": _demuxer(probe),
    }
    if chunk is not None:
        # Input seeking: FFmpeg decodes from the keyframe before `start` and drops frames
        # until `start`, so the chunk's first output frame is exactly at `start` and is an
        # IDR of ours (chunk starts are whole multiples of the GOP).
        if chunk.start > 0:
            kwargs["ss"] = f"{chunk.start:.6f}"
        if chunk.duration is not None:
            kwargs["t"] = f"{chunk.duration:.6f}"
    return ffmpeg.input(str(probe.path), **kwargs)


def _video_source(probe: ProbeResult, plan: LadderPlan, inp: Any) -> Any:
    video = probe.primary_video
    if video is None:
        raise ValueError("master has no video")
    # FFmpeg's autorotate (on by default) applies the display matrix before our graph and
    # drops it from the output, so rotation is already honoured here.
    stream = inp[str(video.index)]
    if plan.deinterlace:
        # send_frame keeps the frame rate; deint=all because the stream says it is
        # interlaced even when individual frames are not flagged.
        stream = stream.filter("bwdif", mode="send_frame", parity="auto", deint="all")
    # A constant output rate makes "IDR every 2 s" the same frames in every rung and chunk;
    # it also turns variable-frame-rate phone footage into something HLS players like.
    stream = stream.filter("fps", fps=f"{plan.frame_rate.numerator}/{plan.frame_rate.denominator}")
    # One 8-bit 4:2:0 conversion before the split instead of one per rung.
    return stream.filter("format", "yuv420p")


def _scale(stream: Any, rung: LadderRung) -> Any:
    return stream.filter("scale", rung.width, rung.height, flags="bicubic").filter("setsar", "1")


def _video_output_args(plan: LadderPlan, rung: LadderRung) -> dict[str, Any]:
    profile = plan.profile
    gop = plan.gop_frames
    args: dict[str, Any] = {
        "b:v": str(rung.bitrate),
        "maxrate:v": str(rung.maxrate),
        "bufsize:v": str(rung.bufsize),
        "preset": rung.preset,
        "g": str(gop),
        "keyint_min": str(gop),
        "sc_threshold": "0",
        # Forced by time as well as by count: with fractional rates (29.97) the count alone
        # drifts from the 2 s grid the segmenter cuts on.
        "force_key_frames": f"expr:gte(t,n_forced*{profile.gop_seconds:g})",
        "pix_fmt": "yuv420p",
        "an": None,
        "sn": None,
        "dn": None,
        "map_metadata": "-1",
        "map_chapters": "-1",
    }
    if rung.codec is VideoCodec.hevc:
        args |= {
            "c:v": "libx265",
            "profile:v": "main",
            "tag:v": "hvc1",  # Apple players require hvc1, not hev1
            "x265-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:log-level=error",
        }
    else:
        args |= {
            "c:v": "libx264",
            "profile:v": "high",
            "x264-params": "open-gop=0",  # closed GOPs: every segment decodes on its own
        }
    return args


def master_picture(probe: ProbeResult, plan: LadderPlan, chunk: Chunk | None = None) -> Any:
    """The master's picture exactly as the ladder's encoders see it before scaling (same
    seeking, deinterlacing, constant rate, 8-bit 4:2:0): the reference quality is scored
    against (transcoding.quality)."""
    return _video_source(probe, plan, _input(probe, chunk))


def scale_to(stream: Any, rung: LadderRung) -> Any:
    return _scale(stream, rung)


def compile_command(streams: Any) -> list[str]:
    """An ffmpeg-python graph as argv with the house's global options."""
    return _compile(streams)


def _compile(streams: Any) -> list[str]:
    args: list[str] = streams.compile(cmd=ffmpeg_path())
    return [args[0], *_GLOBAL_ARGS, "-progress", "pipe:1", *args[1:]]


def _media_seconds(probe: ProbeResult, chunk: Chunk | None) -> float:
    total = probe.duration or 0.0
    if chunk is None:
        return total
    if chunk.duration is None:
        return max(0.0, total - chunk.start)
    return min(chunk.duration, max(0.0, total - chunk.start))


def build_ladder_command(
    probe: ProbeResult,
    plan: LadderPlan,
    out_dir: Path,
    *,
    chunk: Chunk | None = None,
    marking: Marking | None = None,
) -> tuple[list[str], tuple[RenditionFile, ...]]:
    """The single-decode command: decode once, ``split`` to every rung, one process.

    With ``marking``, each of the plan's marked rungs is scaled once and encoded twice,
    watermark variant A (``<rung>.mp4``) and B (``<rung>.b.mp4``), same encoder settings."""
    inp = _input(probe, chunk)
    source = _video_source(probe, plan, inp)
    branches = source.filter_multi_output("split", len(plan.renditions))
    marked = {r.name for r in plan.marked_rungs} if marking is not None else set()
    outputs = []
    files = []
    for n, rung in enumerate(plan.renditions):
        path = out_dir / f"{rung.name}.mp4"
        files.append(RenditionFile(rung=rung, path=path))
        scaled = _scale(branches[n], rung)
        if marking is None or rung.name not in marked:
            outputs.append(ffmpeg.output(scaled, str(path), **_video_output_args(plan, rung)))
            continue
        b_path = out_dir / f"{rung.name}.b.mp4"
        files.append(RenditionFile(rung=rung, path=b_path, variant="b"))
        pair = scaled.filter_multi_output("split", 2)
        variant_a = mark(pair[0], marking.plus, rung)
        variant_b = mark(pair[1], marking.minus, rung)
        args_a = args_b = _video_output_args(plan, rung)
        unmarked = marking.blank_outside_marked(chunk.start if chunk is not None else 0.0)
        if unmarked is not None:
            variant_b = blank(variant_b, unmarked)
            # The rate control averages over the whole stream: at the rung's rate it would
            # hand the bits the black segments do not need to the marked ones (bigger,
            # sharper than A's). A k-th of the rate leaves the marked ones about A's.
            args_b = args_a | {"b:v": str(rung.bitrate // marking.every)}
        for stream, target, args in ((variant_a, path, args_a), (variant_b, b_path, args_b)):
            outputs.append(ffmpeg.output(stream, str(target), **args))
    return _compile(ffmpeg.merge_outputs(*outputs)), tuple(files)


def encode_ladder(
    probe: ProbeResult,
    plan: LadderPlan,
    out_dir: Path,
    *,
    chunk: Chunk | None = None,
    on_progress: ProgressCallback | None = None,
    limits: PolicyLimits = DEFAULT_LIMITS,
    marking: Marking | None = None,
) -> EncodeResult:
    """Encode every rung of ``plan`` (for the whole master or one chunk) in one process;
    with ``marking``, the marked rungs in both watermark variants."""
    out_dir.mkdir(parents=True, exist_ok=True)
    argv, files = build_ladder_command(probe, plan, out_dir, chunk=chunk, marking=marking)
    seconds = _media_seconds(probe, chunk)
    result = run_ffmpeg_with_progress(
        argv, timeout=limits.wall_time_for(seconds), on_progress=on_progress
    )
    return EncodeResult(renditions=files, media_seconds=seconds, wall_seconds=result.wall_seconds)


def encode_ladder_naive(
    probe: ProbeResult,
    plan: LadderPlan,
    out_dir: Path,
    *,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> EncodeResult:
    """One FFmpeg process per rung, one after another: a full decode per rung.

    Only the benchmark uses this, as the baseline the single-decode graph is measured
    against; the encoder settings are identical.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    files = []
    seconds = _media_seconds(probe, None)
    for rung in plan.rungs:
        path = out_dir / f"{rung.name}.mp4"
        source = _video_source(probe, plan, _input(probe))
        out = ffmpeg.output(_scale(source, rung), str(path), **_video_output_args(plan, rung))
        run_ffmpeg_with_progress(_compile(out), timeout=limits.wall_time_for(seconds))
        files.append(RenditionFile(rung=rung, path=path))
    return EncodeResult(
        renditions=tuple(files), media_seconds=seconds, wall_seconds=time.monotonic() - started
    )


def _audio_filters(stream: Any, profile: LadderProfile) -> Any:
    # rematrix_maxval=1 normalises the downmix matrix: 5.1 folded into stereo cannot clip
    # (FFmpeg's default matrix can exceed full scale on loud centre + surround content).
    stream = stream.filter(
        "aresample", ochl="stereo", osr=profile.audio_sample_rate, rematrix_maxval=1.0
    )
    if profile.audio_loudness_lufs is not None:
        stream = stream.filter("loudnorm", I=profile.audio_loudness_lufs, TP=-2.0, LRA=11).filter(
            "aresample", osr=profile.audio_sample_rate
        )
    return stream


def encode_audio(
    probe: ProbeResult,
    out: Path,
    *,
    stream: AudioStream | None = None,
    profile: LadderProfile,
    on_progress: ProgressCallback | None = None,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> Path:
    """One audio source (the master's own track, a dub or a commentary file) to an AAC-LC
    stereo MP4. Audio is encoded once for the whole film, never per chunk: AAC priming
    samples at each chunk start would put small gaps into the concatenated track."""
    chosen = stream or (probe.audio[0] if probe.audio else None)
    if chosen is None:
        raise ValueError(f"{probe.path} has no audio stream")
    return encode_audio_from(
        probe,
        out,
        lambda master: master[str(chosen.index)],
        profile=profile,
        on_progress=on_progress,
        limits=limits,
    )


def encode_audio_from(
    probe: ProbeResult,
    out: Path,
    pick: Callable[[Any], Any],
    *,
    profile: LadderProfile,
    on_progress: ProgressCallback | None = None,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> Path:
    """The ladder's audio chain (normalised downmix to AAC-LC stereo) on whatever ``pick``
    builds from the master's input node: one of its streams, or several joined into one
    layout (transcoding.audio_groups)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    inp = ffmpeg.input(
        str(probe.path), protocol_whitelist=PROTOCOL_WHITELIST, format_whitelist=_demuxer(probe)
    )
    output = ffmpeg.output(
        _audio_filters(pick(inp), profile),
        str(out),
        **{
            "c:a": "aac",
            "profile:a": "aac_low",
            "b:a": f"{profile.audio_bitrate_kbps}k",
            "ac": "2",
            "ar": str(profile.audio_sample_rate),
            "vn": None,
            "sn": None,
            "dn": None,
            "map_metadata": "-1",
        },
    )
    run_ffmpeg_with_progress(
        _compile(output),
        timeout=limits.wall_time_for(probe.duration or 0.0),
        on_progress=on_progress,
    )
    return out


def extract_text_subtitles(
    probe: ProbeResult,
    stream: SubtitleStream,
    out: Path,
    *,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> Path:
    """An embedded text subtitle stream (mov_text, SRT, ASS) to a WebVTT file, which then
    goes through the same Python parser as an uploaded sidecar. Bitmap subtitles (PGS,
    DVB, VobSub) are not converted (no OCR)."""
    if not stream.is_text:
        raise ValueError(f"subtitle stream #{stream.index} ({stream.codec}) is not text")
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        ffmpeg_path(),
        *_GLOBAL_ARGS,
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "-format_whitelist",
        _demuxer(probe),
        "-i",
        str(probe.path),
        "-map",
        f"0:{stream.index}",
        "-c:s",
        "webvtt",
        "-f",
        "webvtt",
        str(out),
    ]
    run_tool(argv, timeout=limits.wall_time_for(probe.duration or 0.0))
    return out


def concat_renditions(
    parts: Sequence[Path], out: Path, *, limits: PolicyLimits = DEFAULT_LIMITS
) -> Path:
    """Join one rung's chunk outputs with ``-c copy``: safe because every chunk starts on
    an IDR of a closed GOP and all chunks share encoder settings.

    The concat list is written by us, next to the parts, with bare file names so FFmpeg's
    ``safe`` mode stays on; uploads are never fed to the concat demuxer (policy refuses
    ffconcat files outright).
    """
    if not parts:
        raise ValueError("nothing to concatenate")
    out.parent.mkdir(parents=True, exist_ok=True)
    if len(parts) == 1:
        argv_single = [
            ffmpeg_path(),
            *_GLOBAL_ARGS,
            "-protocol_whitelist",
            PROTOCOL_WHITELIST,
            "-i",
            str(parts[0]),
            "-c",
            "copy",
            str(out),
        ]
        run_tool(argv_single, timeout=DEFAULT_LIMITS.wall_time_floor)
        return out
    listing = out.with_suffix(".concat.txt")
    # Parts live in different chunk directories; link them side by side with the list.
    lines = ["ffconcat version 1.0"]
    link_dir = out.parent / f"{out.stem}-parts"
    link_dir.mkdir(exist_ok=True)
    for n, part in enumerate(parts):
        link = link_dir / f"part{n:05d}.mp4"
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(part.resolve())
        lines.append(f"file {link_dir.name}/{link.name}")
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = [
        ffmpeg_path(),
        *_GLOBAL_ARGS,
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "-f",
        "concat",
        "-safe",
        "1",
        "-i",
        str(listing),
        "-c",
        "copy",
        str(out),
    ]
    run_tool(argv, timeout=limits.wall_time_floor)
    return out
