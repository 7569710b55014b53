"""Encoding one audio track of a master that is several streams: mono channels joined.

MXF OP1a masters carry one PCM channel per track; FFmpeg's ``join`` filter puts the
channels of a :class:`~transcoding.tracks.AudioGroup` into one layout (L R C LFE Ls Rs for
5.1), then the ladder's usual audio chain (normalised downmix to AAC-LC stereo) applies, so
a grouped track sounds exactly like a 5.1 stream delivered as one.
"""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from transcoding.encode import _audio_filters, _compile, _demuxer, encode_audio
from transcoding.ladder import LadderProfile
from transcoding.policy import DEFAULT_LIMITS, PolicyLimits
from transcoding.probe import ProbeResult
from transcoding.tools import PROTOCOL_WHITELIST, run_ffmpeg_with_progress
from transcoding.tracks import GROUP_LAYOUTS, AudioGroup


def encode_audio_group(
    probe: ProbeResult,
    group: AudioGroup,
    out: Path,
    *,
    profile: LadderProfile,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> Path:
    """One audio track of the master (a stream, or mono streams joined) to AAC-LC stereo."""
    if len(group.streams) == 1:
        return encode_audio(probe, out, stream=group.streams[0], profile=profile, limits=limits)
    layout, names = GROUP_LAYOUTS[len(group.streams)]
    out.parent.mkdir(parents=True, exist_ok=True)
    inp = ffmpeg.input(
        str(probe.path), protocol_whitelist=PROTOCOL_WHITELIST, format_whitelist=_demuxer(probe)
    )
    joined = ffmpeg.filter(
        [inp[str(s.index)] for s in group.streams],
        "join",
        inputs=len(group.streams),
        channel_layout=layout,
        map="|".join(f"{n}.0-{name}" for n, name in enumerate(names)),
    )
    output = ffmpeg.output(
        _audio_filters(joined, profile),
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
    run_ffmpeg_with_progress(_compile(output), timeout=limits.wall_time_for(probe.duration or 0.0))
    return out
