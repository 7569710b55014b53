"""The ``cbcs`` protection profile: CMAF (fMP4) segments encrypted with Common Encryption's
``cbcs`` scheme, one set of segments for HLS (FairPlay; Widevine and PlayReady on
HLS-capable players) and a DASH MPD (Widevine, PlayReady and ClearKey in browsers and on
Android). Keys reach players only through licenses (drm/license.py), never as raw bytes.

Key rotation. Shaka Packager rotates raw keys only by deriving every period's key from the
first one (a byte rotation "for testing", its own docs say): whoever holds one key would
hold all. So each key period is packaged on its own with its own key: the encoded rungs and
audio tracks are cut at the period boundaries (``-c copy``; periods are whole segments and
segments start on keyframes, so video cuts are exact; timestamps are kept, so the pieces
continue one timeline), Shaka packages each piece, and the pieces are joined:

* HLS: one media playlist per rendition, with a new ``EXT-X-MAP`` (the period's init
  segment: its ``tenc`` names the period's key) and new ``EXT-X-KEY`` lines at each period;
* DASH: one ``Period`` per key period (the standard way to change ``default_KID``), each
  with ``presentationTimeOffset`` at its start.

Segments are numbered on the film's timeline (``p1_seg_00016.m4s`` is the film's 16th
segment, the first of key period 1 when periods are 15 segments long): the number alone
says where a segment sits, which the watermark's per-segment variants rely on
(drm/watermark.py). Each period's constant IV is derived from its key id, so a second
packaging of the same period with the same key (watermark variant B) produces segments
that A's init segment describes exactly.

Packaging-time playlists are read and written through the ``m3u8`` library
(:mod:`transcoding.playlists`).
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import m3u8

from transcoding import playlists
from transcoding.encode import RenditionFile
from transcoding.package import (
    AudioTrack,
    ContentKey,
    EncryptionScheme,
    PackageResult,
    SubtitleTrack,
    _descriptor,
    _safe_name,
    rewrite_master,
    variants_of,
)
from transcoding.policy import DEFAULT_LIMITS, PolicyLimits
from transcoding.subtitles import write_segmented_webvtt
from transcoding.tools import ffmpeg_path, ffprobe_path, packager_path, run_tool

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
MANIFEST = "manifest.mpd"
# Widevine, PlayReady, FairPlay, and the W3C common system (ClearKey in browsers).
PROTECTION_SYSTEMS = "Widevine,PlayReady,FairPlay,CommonSystem"
# The HLS key formats that stay in the playlists: each asks a CDM for a license. The
# "identity" line Shaka also writes would tell a player to fetch the raw key: dropped.
LICENSED_KEYFORMATS = frozenset(
    {
        "com.apple.streamingkeydelivery",
        "com.microsoft.playready",
        "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",
    }
)
ET.register_namespace("", MPD_NS)
ET.register_namespace("cenc", "urn:mpeg:cenc:2013")
ET.register_namespace("mspr", "urn:microsoft:playready")
ET.register_namespace("xsi", "http://www.w3.org/2001/XMLSchema-instance")


@dataclass(frozen=True)
class _Stream:
    source: Path
    folder: str  # e.g. video_540p, audio_0_de
    kind: str  # video | audio


def _frame_counts(source: Path, starts: Sequence[float], timeout: float) -> list[int]:
    """Frames of a video stream in each key period (by presentation time). Video pieces are
    cut by frame count, not by duration: with B-frames a duration cut in decode order takes
    a frame or two of the next period along."""
    out = run_tool(
        [
            ffprobe_path(),
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
            str(source),
        ],
        timeout=timeout,
    )
    times = [float(x) for x in out.stdout.split() if x.strip() not in ("", "N/A")]
    bounds = [*starts[1:], float("inf")]
    # A hair of tolerance: a frame stamped at 3.99999 by a time base is the next period's.
    return [
        sum(1 for t in times if start - 1e-3 <= t < end - 1e-3)
        for start, end in zip(starts, bounds, strict=True)
    ]


def _cut(
    source: Path,
    dest: Path,
    start: float,
    length: float | None,
    timeout: float,
    frames: int | None = None,
) -> None:
    """One key period of an encoded stream, copied (no re-encode), starting at ``start`` on
    the film's timeline (``-output_ts_offset``): the pieces continue one timeline."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    argv = [ffmpeg_path(), "-nostdin", "-v", "error", "-y"]
    if start > 0:
        argv += ["-ss", f"{start:.6f}"]
    argv += ["-i", str(source)]
    if frames is not None:
        argv += ["-frames:v", str(frames)]
    elif length is not None:
        argv += ["-t", f"{length:.6f}"]
    argv += ["-map", "0", "-c", "copy"]
    if start > 0:
        argv += ["-output_ts_offset", f"{start:.6f}"]
    argv.append(str(dest))
    run_tool(argv, timeout=timeout)


def period_iv(key: ContentKey) -> bytes:
    """The period's constant cbcs IV. It is public (the init segment's ``tenc`` carries
    it); derived rather than random so that two packagings of one period agree."""
    return hashlib.sha256(b"pocketcinema/cbcs-iv/v1:" + key.key_id).digest()[:16]


def _package_period(
    streams: Sequence[_Stream],
    pieces: Sequence[Path],
    out_dir: Path,
    n: int,
    key: ContentKey,
    segment_seconds: float,
    timeout: float,
    first_number: int,
) -> None:
    descriptors = []
    for stream, piece in zip(streams, pieces, strict=True):
        fields = {
            "in": str(piece.resolve()),
            "stream": stream.kind,
            "init_segment": f"{stream.folder}/p{n}_init.mp4",
            "segment_template": f"{stream.folder}/p{n}_seg_$Number%05d$.m4s",
            "playlist_name": f"p{n}_{stream.folder}.m3u8",
        }
        if stream.kind == "audio":
            fields |= {"hls_group_id": "audio", "hls_name": stream.folder}
        descriptors.append(_descriptor(fields))
    argv = [
        packager_path(),
        *descriptors,
        "--segment_duration",
        f"{segment_seconds:g}",
        "--protection_scheme",
        "cbcs",
        "--enable_raw_key_encryption",
        "--keys",
        f"label=:key_id={key.key_id.hex()}:key={key.key.hex()}",
        "--iv",
        period_iv(key).hex(),
        "--start_segment_number",
        str(first_number),
        "--protection_systems",
        PROTECTION_SYSTEMS,
        # Encrypt from the first segment: a clear lead would give the film's opening away.
        "--clear_lead",
        "0",
        "--hls_key_uri",
        f"skd://{key.key_id.hex()}",
        "--hls_playlist_type",
        "VOD",
        "--hls_master_playlist_output",
        str(out_dir / f"p{n}_master.m3u8"),
        "--mpd_output",
        str(out_dir / f"p{n}.mpd"),
        "--generate_static_live_mpd",
        "--quiet",
    ]
    run_tool(argv, timeout=timeout, cwd=out_dir)


def join_media_playlists(parts: Sequence[Path], dest: Path) -> int:
    """One HLS media playlist from the key periods' playlists, in order: each period brings
    its init segment and its key lines. Returns the number of segments."""
    target = 1
    segments: list[m3u8.Segment] = []
    for part in parts:
        playlist = playlists.load(part)
        target = max(target, int(playlist.target_duration or 1))
        if playlist.segments and playlist.segments[0].init_section is None:
            raise ValueError(f"{part.name}: a CMAF playlist without EXT-X-MAP")
        licensed = [
            key for key in playlist.keys if key is not None and key.keyformat in LICENSED_KEYFORMATS
        ]
        segments += [playlists.KeyedSegment.of(s, licensed) for s in playlist.segments]
    playlists.dump(playlists.media_playlist(target, segments), dest)
    return len(segments)


def _m(tag: str) -> str:
    return f"{{{MPD_NS}}}{tag}"


def join_manifests(
    parts: Sequence[Path],
    dest: Path,
    starts: Sequence[float],
    duration: float,
    languages: dict[str, str],
) -> None:
    """One static DASH MPD with a ``Period`` per key period. ``languages`` maps an audio
    folder to its BCP 47 tag (the pieces carry none)."""
    base = ET.parse(parts[0]).getroot()  # noqa: S314 - our packager's output, not input
    for period in base.findall(_m("Period")):
        base.remove(period)
    base.set("type", "static")
    for attr in (
        "availabilityStartTime",
        "publishTime",
        "minimumUpdatePeriod",
        "timeShiftBufferDepth",
    ):
        base.attrib.pop(attr, None)
    base.set("mediaPresentationDuration", f"PT{duration:.3f}S")
    base.set("profiles", "urn:mpeg:dash:profile:isoff-live:2011")
    for n, (part, start) in enumerate(zip(parts, starts, strict=True)):
        found = ET.parse(part).getroot().find(_m("Period"))  # noqa: S314 - ours, as above
        if found is None:
            raise ValueError(f"{part.name}: no Period")
        period = found
        period.set("id", f"p{n}")
        period.set("start", f"PT{start:.3f}S")
        for adaptation in period.iter(_m("AdaptationSet")):
            template = adaptation.find(f"{_m('Representation')}/{_m('SegmentTemplate')}")
            init = template.get("initialization", "") if template is not None else ""
            folder = init.split("/", 1)[0]
            if folder in languages:
                adaptation.set("lang", languages[folder])
        for template in period.iter(_m("SegmentTemplate")):
            timescale = int(template.get("timescale", "1"))
            template.set("presentationTimeOffset", str(round(start * timescale)))
        base.append(period)
    ET.ElementTree(base).write(dest, encoding="UTF-8", xml_declaration=True)


_NUMBER = re.compile(r"\$Number(?:%0(\d+)d)?\$")


def _numbered(media: str, number: int) -> str:
    """A ``SegmentTemplate`` media pattern with ``$Number$`` (``%0Nd`` widths) filled in."""
    found = _NUMBER.search(media)
    if found is None:
        raise ValueError(f"no $Number$ in {media!r}")
    width = int(found.group(1) or 1)
    return media[: found.start()] + f"{number:0{width}d}" + media[found.end() :]


def list_segments(manifest: Path, folders: Sequence[str]) -> None:
    """Rewrite the representations of ``folders`` in ``manifest`` from a ``SegmentTemplate``
    to a ``SegmentList`` naming every segment (same timeline, same init segment): a
    template cannot send a session to a different folder for some segments, a list can be
    rewritten per session (drm/manifests.py)."""
    root = ET.parse(manifest).getroot()  # noqa: S314 - our packager's output, not input
    for representation in root.iter(_m("Representation")):
        template = representation.find(_m("SegmentTemplate"))
        if template is None:
            continue
        init = template.get("initialization", "")
        if init.split("/", 1)[0] not in folders:
            continue
        timeline = template.find(_m("SegmentTimeline"))
        if timeline is None:
            raise ValueError(f"{manifest.name}: a segment template without a timeline")
        count = sum(int(s.get("r", "0")) + 1 for s in timeline.findall(_m("S")))
        first = int(template.get("startNumber", "1"))
        media = template.get("media", "")
        listing = ET.Element(_m("SegmentList"))
        for attr in ("timescale", "presentationTimeOffset", "startNumber"):
            if template.get(attr) is not None:
                listing.set(attr, str(template.get(attr)))
        ET.SubElement(listing, _m("Initialization"), {"sourceURL": init})
        listing.append(timeline)
        for number in range(first, first + count):
            ET.SubElement(listing, _m("SegmentURL"), {"media": _numbered(media, number)})
        index = list(representation).index(template)
        representation.remove(template)
        representation.insert(index, listing)
    ET.ElementTree(root).write(manifest, encoding="UTF-8", xml_declaration=True)


def package_cmaf(
    renditions: Sequence[RenditionFile],
    out_dir: Path,
    *,
    duration: float,
    period_keys: Sequence[ContentKey],
    period_segments: int,
    audio: Sequence[AudioTrack] = (),
    subtitles: Sequence[SubtitleTrack] = (),
    segment_seconds: float = 6.0,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> PackageResult:
    """Package encoded rungs and audio tracks as cbcs CMAF under ``out_dir``: HLS (master and
    media playlists) and ``manifest.mpd`` over the same segments; key period ``n`` (of
    ``period_segments`` segments) is encrypted with ``period_keys[n]``. ``out_dir`` is
    replaced (a retried task starts clean)."""
    if not renditions or not period_keys:
        raise ValueError("nothing to package, or no key")
    out_dir = out_dir.resolve()  # Shaka runs inside it (see package_hls)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    streams = [_Stream(r.path, f"video_{_safe_name(r.rung.name)}", "video") for r in renditions] + [
        _Stream(t.path, f"audio_{n}_{_safe_name(t.language)}", "audio") for n, t in enumerate(audio)
    ]
    period_seconds = period_segments * segment_seconds
    # A period past the end of the film would be empty: the last key covers any tail.
    count = max(1, min(len(period_keys), math.ceil(duration / period_seconds - 1e-6)))
    timeout = limits.wall_time_for(duration / 4)
    cut_dir = out_dir.parent / f"{out_dir.name}.cuts"
    shutil.rmtree(cut_dir, ignore_errors=True)
    starts = [n * period_seconds for n in range(count)]
    try:
        frames = {
            s.folder: _frame_counts(s.source, starts, timeout) for s in streams if s.kind == "video"
        }
        for n, start in enumerate(starts):
            length = period_seconds if n < count - 1 else None
            pieces = []
            for stream in streams:
                piece = cut_dir / f"p{n}" / f"{stream.folder}.mp4"
                counts = frames.get(stream.folder)
                _cut(stream.source, piece, start, length, timeout, counts[n] if counts else None)
                pieces.append(piece)
            _package_period(
                streams,
                pieces,
                out_dir,
                n,
                period_keys[n],
                segment_seconds,
                timeout,
                first_number=n * period_segments + 1,
            )
    finally:
        shutil.rmtree(cut_dir, ignore_errors=True)
    for stream in streams:
        join_media_playlists(
            [out_dir / f"p{n}_{stream.folder}.m3u8" for n in range(count)],
            out_dir / f"{stream.folder}.m3u8",
        )
    join_manifests(
        [out_dir / f"p{n}.mpd" for n in range(count)],
        out_dir / MANIFEST,
        starts,
        duration,
        {f"audio_{n}_{_safe_name(t.language)}": t.language for n, t in enumerate(audio)},
    )
    master = out_dir / "master.m3u8"
    shutil.copyfile(out_dir / "p0_master.m3u8", master)
    for leftover in [*out_dir.glob("p*_*.m3u8"), *out_dir.glob("p*.mpd")]:
        leftover.unlink()

    subtitle_entries: list[tuple[str, SubtitleTrack]] = []
    for n, sub in enumerate(subtitles):
        folder = f"subs_{n}_{_safe_name(sub.language)}"
        write_segmented_webvtt(
            sub.cues,
            out_dir / folder,
            duration=duration,
            segment_seconds=segment_seconds,
            playlist_name="subtitles.m3u8",
        )
        subtitle_entries.append((f"{folder}/subtitles.m3u8", sub))
    audio_by_uri = {f"audio_{n}_{_safe_name(t.language)}.m3u8": t for n, t in enumerate(audio)}
    rewrite_master(
        master,
        audio_by_uri,
        subtitle_entries,
        renamed={f"p0_{s.folder}.m3u8": f"{s.folder}.m3u8" for s in streams},
    )
    return PackageResult(
        out_dir=out_dir,
        master_playlist=master,
        variants=variants_of(master),
        audio_playlists=tuple(out_dir / uri for uri in audio_by_uri),
        subtitle_playlists=tuple(out_dir / uri for uri, _ in subtitle_entries),
        iframe_playlists=(),
        encryption=EncryptionScheme.cbcs,
        dash_manifest=out_dir / MANIFEST,
    )
