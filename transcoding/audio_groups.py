"""Encoding one audio track of a master that is several streams: mono channels joined.

MXF OP1a masters carry one PCM channel per track; FFmpeg's ``join`` filter puts the
channels of a :class:`~transcoding.tracks.AudioGroup` into one layout (L R C LFE Ls Rs for
5.1), then the ladder's usual audio chain (normalised downmix to AAC-LC stereo) applies, so
a grouped track sounds exactly like a 5.1 stream delivered as one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ffmpeg

from transcoding.encode import encode_audio, encode_audio_from
from transcoding.ladder import LadderProfile
from transcoding.policy import DEFAULT_LIMITS, PolicyLimits
from transcoding.probe import ProbeResult
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

    def joined(master: Any) -> Any:
        return ffmpeg.filter(
            [master[str(s.index)] for s in group.streams],
            "join",
            inputs=len(group.streams),
            channel_layout=layout,
            map="|".join(f"{n}.0-{name}" for n, name in enumerate(names)),
        )

    return encode_audio_from(probe, out, joined, profile=profile, limits=limits)
