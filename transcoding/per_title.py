"""Per-title rates: how many bits each rendition of *this* film needs to reach its target.

The complexity probe takes a few short scenes spread over the film (the same GOP-aligned
windows the quality step samples), encodes them with the ladder's real settings (codec,
preset, capped VBR, one decode for every rendition) at trial rates, scores each trial
against the master with XPSNR, and reads off the rate at which each rendition's
rate-quality curve crosses its target. Each scene is encoded after a lead-in
(``lead_in_seconds``, whole GOPs, cut short at the film's start) that is not scored, so
the scene is scored as the film's encode would make it, not as the cold start of a clip:

1. every rendition at its cap and at a fifth of it;
2. every rendition at the rate a straight line in (log rate, dB) through those two points
   predicts, held between the floor and the cap;
3. the answer interpolates between the two measured points that bracket the target.

Flat animation reaches the target far under the cap and is floored; grain never reaches it
and stays at the cap. The plan then keeps the rates monotonic and inside the caps
(:meth:`transcoding.ladder.LadderPlan.with_rates`). An HEVC rendition that would not save
bits against its H.264 twin on this title gets rate 0 and is not made
(:func:`without_unprofitable_hevc`).
"""

from __future__ import annotations

import itertools
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from transcoding.encode import encode_ladder
from transcoding.ladder import LadderPlan, PerTitleSpec
from transcoding.policy import DEFAULT_LIMITS, PolicyLimits
from transcoding.probe import ProbeResult
from transcoding.quality import (
    clamped_lead_in,
    lead_in_chunk,
    pooled_db,
    sample_windows,
    score_window,
)

LOW_TRIAL = 0.2  # the second trial rate, as a share of the cap


@dataclass(frozen=True)
class Trial:
    rate: float  # bit/s asked for (the knob being set), not measured from the file
    xpsnr: float  # dB


def rate_for_target(trials: Sequence[Trial], target: float) -> float:
    """The rate at which the curve through ``trials`` reaches ``target`` dB: linear in
    log(rate) between the bracketing trials, extended from the nearest pair outside them.
    A curve that does not rise (pure noise: bits buy nothing measurable) answers with the
    highest trial rate if it misses the target, the lowest if it meets it."""
    points = sorted(trials, key=lambda t: t.rate)
    if len(points) < 2:
        raise ValueError("two trials at least")
    pairs = list(itertools.pairwise(points))
    below = [(a, b) for a, b in pairs if a.xpsnr <= target <= b.xpsnr]
    a, b = below[0] if below else (pairs[0] if target < points[0].xpsnr else pairs[-1])
    slope = (b.xpsnr - a.xpsnr) / math.log(b.rate / a.rate) if b.rate > a.rate else 0.0
    if slope <= 1e-3:
        return points[0].rate if points[0].xpsnr >= target else points[-1].rate
    return math.exp(math.log(a.rate) + (target - a.xpsnr) / slope)


def _trial(
    probe: ProbeResult,
    plan: LadderPlan,
    rates: dict[str, int],
    work: Path,
    limits: PolicyLimits,
) -> dict[str, Trial]:
    """Encode the sampled scenes asking for ``rates`` and score them: a Trial per rendition
    (at the rate asked for, after the plan's shaping: that is the knob being set)."""
    trial_plan = plan.with_rates(rates)
    spec = plan.profile.per_title or PerTitleSpec()
    windows = sample_windows(
        probe.duration or 0.0,
        count=spec.scenes,
        seconds=spec.scene_seconds,
        gop_seconds=plan.gop_seconds,
    )
    pooled: dict[str, list[float]] = {r.name: [] for r in trial_plan.renditions}
    for window in windows:
        out = work / str(len(list(work.iterdir())))
        # A scene encoded on its own starts with a fresh rate control and VBV buffer and
        # scores lower at a given rate than the same seconds inside the whole film's
        # encode, so the probe asked for more bits than the film needs. Encoding a lead-in
        # before the scene (not scored) lets the encoder settle first.
        lead = clamped_lead_in(window, spec.lead_in_seconds, gop_seconds=plan.gop_seconds)
        encoded = lead_in_chunk(window, lead)
        files = encode_ladder(probe, trial_plan, out, chunk=encoded, limits=limits).renditions
        scores = score_window(
            probe, trial_plan, files, window, out, clips=True, lead_in=lead, limits=limits
        )
        for rendition, frames in zip(files, scores, strict=True):
            pooled[rendition.rung.name].extend(frames.xpsnr)
    return {
        r.name: Trial(rate=r.bitrate, xpsnr=pooled_db(pooled[r.name]))
        for r in trial_plan.renditions
    }


def measure_rates(
    probe: ProbeResult, plan: LadderPlan, *, limits: PolicyLimits = DEFAULT_LIMITS
) -> dict[str, int]:
    """Per-title rates in bit/s by rendition name for ``plan`` (planned at the caps),
    already capped, floored and monotonic."""
    spec = plan.profile.per_title
    if spec is None:
        raise ValueError("the profile has no per-title settings")
    caps = {r.name: r.cap for r in plan.renditions}
    targets = {r.name: r.target_xpsnr_db for r in plan.renditions}
    with tempfile.TemporaryDirectory(prefix="per-title-") as tmp:
        work = Path(tmp)
        high = _trial(probe, plan, caps, work, limits)
        low = _trial(probe, plan, {n: round(c * LOW_TRIAL) for n, c in caps.items()}, work, limits)
        guess = {n: round(rate_for_target([high[n], low[n]], targets[n])) for n in caps}
        middle = _trial(probe, plan, guess, work, limits)
    wanted = {n: round(rate_for_target([high[n], low[n], middle[n]], targets[n])) for n in caps}
    return without_unprofitable_hevc(
        plan.with_rates(wanted), {n: trial.xpsnr for n, trial in high.items()}
    )


def without_unprofitable_hevc(shaped: LadderPlan, at_cap: Mapping[str, float]) -> dict[str, int]:
    """The rates of ``shaped`` (capped, floored, falling with the picture), with 0 for an
    HEVC rendition that saves nothing on this title: it needs more bits than its H.264 twin
    to reach the target, or as many while scoring no better at the shared cap (``at_cap``:
    XPSNR of each rendition's trial at its cap). It would cost encoding and storage to give
    HEVC devices nothing, or, where x265 trails x264 at equal bits (hard-edged flat
    animation), a worse picture than the H.264 rung they would otherwise play."""
    h264 = {(r.width, r.height): r for r in shaped.rungs}
    rates = {r.name: r.bitrate for r in shaped.renditions}
    for hevc in shaped.hevc_rungs:
        twin = h264.get((hevc.width, hevc.height))
        if twin is None:
            continue
        costs_more = hevc.bitrate > twin.bitrate
        no_better = hevc.bitrate == twin.bitrate and at_cap.get(hevc.name, 0.0) <= at_cap.get(
            twin.name, 0.0
        )
        if costs_more or no_better:
            rates[hevc.name] = 0
    return rates
