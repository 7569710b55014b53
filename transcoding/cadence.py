"""The real cadence of a variable-frame-rate master, from its frame timestamps.

A phone that drops frames in low light, or a screen recording that idles, writes a stream
whose average rate (``avg_frame_rate``) is below the rate it runs at when it runs at all.
The ladder needs that full rate: it is the shortest frame interval that is common in the
stream. Timestamps in a coarse time base jitter (29.97 fps in 1/15360 alternates 512 and
513 ticks), so intervals within 5 % of each other are one group and the group's mean is
the interval.

This reads packet timestamps with ffprobe under the same guard rails as probing: argv
list, ``-protocol_whitelist file``, the demuxer the policy accepted, a wall-time limit.
"""

from __future__ import annotations

import itertools
import json
from fractions import Fraction

from transcoding.probe import DEFAULT_PROBE_TIMEOUT, ProbeResult, VideoStream
from transcoding.tools import PROTOCOL_WHITELIST, ffprobe_path, run_tool

SAMPLE_SECONDS = 60.0  # the opening minute shows the cadence; reading a whole film would not pay
GROUP_TOLERANCE = Fraction(5, 100)
MIN_SHARE = Fraction(1, 10)  # an interval this common is a rate the stream really runs at
MIN_INTERVALS = 8


def full_rate_interval(timestamps: list[int]) -> Fraction | None:
    """The shortest common interval between consecutive presentation timestamps (in ticks),
    or None when there are too few frames to tell."""
    ordered = sorted(set(timestamps))
    deltas = sorted(b - a for a, b in itertools.pairwise(ordered) if b > a)
    if len(deltas) < MIN_INTERVALS:
        return None
    groups: list[list[int]] = []
    for delta in deltas:
        if groups and delta <= groups[-1][0] * (1 + GROUP_TOLERANCE):
            groups[-1].append(delta)
        else:
            groups.append([delta])
    for group in groups:
        if Fraction(len(group), len(deltas)) >= MIN_SHARE:
            return Fraction(sum(group), len(group))
    return None


def measure_cadence(
    probe: ProbeResult, video: VideoStream | None = None, *, timeout: float = DEFAULT_PROBE_TIMEOUT
) -> Fraction | None:
    """Frames per second where the master runs at full rate, or None if it cannot be told."""
    video = video or probe.primary_video
    if video is None:
        return None
    argv = [
        ffprobe_path(),
        "-v",
        "error",
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "-format_whitelist",
        probe.format_name.split(",")[0],
        "-select_streams",
        str(video.index),
        "-read_intervals",
        f"%+{SAMPLE_SECONDS:g}",
        "-show_entries",
        "packet=pts:stream=time_base",
        "-print_format",
        "json",
        "-i",
        str(probe.path),
    ]
    data = json.loads(run_tool(argv, timeout=timeout).stdout or "{}")
    streams = data.get("streams") or []
    num, _, den = str(streams[0].get("time_base", "")).partition("/") if streams else ("", "", "")
    if not (num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0):
        return None
    time_base = Fraction(int(num), int(den))
    pts = [
        int(p["pts"])
        for p in data.get("packets") or []
        if str(p.get("pts", "")).lstrip("-").isdigit()
    ]
    interval = full_rate_interval(pts)
    if interval is None:
        return None
    return 1 / (interval * time_base)
