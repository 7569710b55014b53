"""Bits per view: today's fixed ladder against the quality-measured one, per content class.

Three synthetic 1080p24 classes (generated once into the cache directory):

* ``flat``: animation-like (``testsrc2``: flat colour areas, hard edges, moderate motion);
* ``talking_head``: low motion (slowly drifting gradients with a fixed fine texture, one
  subject-sized moving region);
* ``grain``: high motion with film-like grain the codec can partly predict (fixed-pattern
  grain that moves with a fast-scrolling picture, plus a light random temporal part).
  Purely random temporal noise would be incompressible and make every encoder look equal.

For each class, measured in the same run:

1. ``fixed``: today's ladder (profile rates, x264 ``veryfast``, no HEVC, no per-title);
2. ``new`` at equal quality: the default profile (measured preset, HEVC for rungs of 1080p
   and up, per-title rates) with each rung's XPSNR target set to what ``fixed`` reached on
   that rung, so the per-title probe has to find the bits that reach the same quality;
3. ``new`` at equal bits: the same encoder settings at ``fixed``'s rates, no per-title.

A device that decodes HEVC plays the HEVC rendition where there is one, the H.264 one
elsewhere; ``bits_saved_pct`` compares its ladder's bits (sum over rungs) with ``fixed``'s,
``xpsnr_delta_db`` its mean XPSNR difference per rung (negative: worse), and
``xpsnr_delta_at_equal_bits_db`` the same at equal bits. Quality is scored with the
pipeline's own scorer over sampled windows (transcoding.quality).

``--presets`` instead measures XPSNR per CPU-second for x264 presets (and x265's for the
HEVC rungs) on the 1080p rung at its fixed rate: the table in docs/transcoding.md.

Length: ``POCKETCINEMA_BENCH_SECONDS`` (default 60; the goal run uses 60). Last line: JSON.

Your own content: ``--master NAME=FILE`` (repeatable) measures a master of yours beside the
synthetic classes, or instead of them with ``--classes ''``; it goes through the same input
policy as an upload and is measured whole (cut it to a minute or two first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks._measure import children_cpu
from core.settings import get_settings
from transcoding.chunking import Chunk
from transcoding.encode import encode_ladder
from transcoding.ladder import (
    DEFAULT_PROFILE,
    LadderPlan,
    QualitySpec,
    VideoCodec,
    plan_ladder,
)
from transcoding.per_title import measure_rates
from transcoding.policy import PolicyLimits, check_master
from transcoding.probe import ProbeResult
from transcoding.quality import RenditionQuality, sample_windows, score_renditions

GRAPHS = {
    "flat": "testsrc2=s=1920x1080:r=24:d={d}",
    "talking_head": (
        "gradients=s=1920x1080:r=24:d={d}:speed=0.0005,noise=c0s=8[bg];"
        "testsrc2=s=640x720:r=24:d={d}[subject];"
        "[bg][subject]overlay=x='640+40*sin(t/3)':y=300"
    ),
    "grain": (
        "testsrc2=s=1920x1080:r=24:d={d},noise=c0s=10:c1s=4:c2s=4,scroll=h=0.01,noise=alls=3:allf=t"
    ),
}
FIXED = DEFAULT_PROFILE.model_copy(
    update={"preset": "veryfast", "per_title": None, "hevc_rungs_min_height": None}
)
# The box is shared: a run may wait far longer than the service's wall-time policy allows.
LIMITS = PolicyLimits(wall_time_floor=4 * 3600.0)
SCORING = QualitySpec(samples=10, sample_seconds=2.0, vmaf=False)  # the goals are in XPSNR


def make_master(cache: Path, name: str, seconds: int) -> Path:
    path = cache / f"quality_{name}_1080p24_{seconds}s.mp4"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    print(f"generating {path} (once) ...", flush=True)
    graph = GRAPHS[name].format(d=seconds) + ",format=yuv420p"
    subprocess.run(
        [
            get_settings().ffmpeg_path,
            *("-nostdin", "-hide_banner", "-loglevel", "error", "-y"),
            *("-filter_complex", graph),
            # A near-transparent mezzanine: the ladder's losses dominate what is measured.
            *("-c:v", "libx264", "-preset", "veryfast", "-crf", "14", "-g", "48", str(tmp)),
        ],
        check=True,
    )
    tmp.rename(path)
    return path


def encode_and_score(
    probe: ProbeResult, plan: LadderPlan, out: Path
) -> dict[str, tuple[int, RenditionQuality]]:
    """Bits (whole film) and quality per rendition."""
    files = encode_ladder(probe, plan, out, limits=LIMITS).renditions
    windows = sample_windows(
        probe.duration or 0.0,
        count=SCORING.samples,
        seconds=SCORING.sample_seconds,
        gop_seconds=plan.gop_seconds,
    )
    scores = score_renditions(probe, plan, files, windows, limits=LIMITS)
    return {f.rung.name: (f.path.stat().st_size * 8, q) for f, q in zip(files, scores, strict=True)}


def device_ladder(plan: LadderPlan) -> dict[str, str]:
    """H.264 rung name -> the rendition an HEVC-capable device plays for it."""
    hevc = {(r.width, r.height): r.name for r in plan.hevc_rungs}
    return {r.name: hevc.get((r.width, r.height), r.name) for r in plan.rungs}


def compare(
    fixed: dict[str, tuple[int, RenditionQuality]],
    new: dict[str, tuple[int, RenditionQuality]],
    ladder: dict[str, str],
) -> tuple[float, float, dict[str, Any]]:
    rungs = {}
    for rung, played in ladder.items():
        (fb, fq), (nb, nq) = fixed[rung], new[played]
        rungs[rung] = {
            "played": played,
            "fixed_kbit": round(fb / 1000),
            "new_kbit": round(nb / 1000),
            "fixed_xpsnr": fq.xpsnr_y,
            "new_xpsnr": nq.xpsnr_y,
            "fixed_ssim": fq.ssim_y,
            "new_ssim": nq.ssim_y,
        }
    saved = 100 * (1 - sum(new[p][0] for p in ladder.values()) / sum(b for b, _ in fixed.values()))
    delta = statistics.mean(new[p][1].xpsnr_y - fixed[r][1].xpsnr_y for r, p in ladder.items())
    return saved, delta, rungs


def run_class(name: str, master: Path, work: Path) -> dict[str, Any]:
    probe = check_master(master)
    fixed_plan = plan_ladder(probe, FIXED)
    t0, c0 = time.monotonic(), children_cpu()
    fixed = encode_and_score(probe, fixed_plan, work / name / "fixed")
    fixed_cpu = children_cpu() - c0
    print(f"  {name}: fixed ladder {time.monotonic() - t0:.0f} s", flush=True)

    # Equal quality: every rung's target is what the fixed ladder reached on it.
    targets = {r.name: fixed[r.name][1].xpsnr_y for r in fixed_plan.rungs}
    specs = tuple(
        spec.model_copy(update={"target_xpsnr_db": targets.get(f"{spec.height}p")})
        for spec in DEFAULT_PROFILE.rungs
    )
    new_profile = DEFAULT_PROFILE.model_copy(update={"rungs": specs})
    caps_plan = plan_ladder(probe, new_profile)
    t0, c0 = time.monotonic(), children_cpu()
    rates = measure_rates(probe, caps_plan, limits=LIMITS)
    probe_cpu = children_cpu() - c0
    print(f"  {name}: per-title probe {time.monotonic() - t0:.0f} s: {rates}", flush=True)
    new_plan = caps_plan.with_rates(rates)
    t0, c0 = time.monotonic(), children_cpu()
    new = encode_and_score(probe, new_plan, work / name / "new")
    new_cpu = children_cpu() - c0
    print(f"  {name}: new ladder {time.monotonic() - t0:.0f} s", flush=True)

    # Equal bits: the new encoder settings at the fixed ladder's rates (its H.264 rungs are
    # planned at those rates already; an HEVC rendition gets its H.264 rung's).
    fixed_rates = {(r.width, r.height): r.bitrate for r in fixed_plan.rungs}
    same_bits = caps_plan.with_rates(
        {r.name: fixed_rates[(r.width, r.height)] for r in caps_plan.renditions}
    )
    t0 = time.monotonic()
    at_bits = encode_and_score(probe, same_bits, work / name / "equal_bits")
    print(f"  {name}: equal-bits ladder {time.monotonic() - t0:.0f} s", flush=True)

    ladder = device_ladder(new_plan)
    saved, delta, rungs = compare(fixed, new, ladder)
    _, delta_bits, _ = compare(fixed, at_bits, ladder)
    h264_only = {r: r for r in ladder}
    saved_h264, delta_h264, _ = compare(fixed, new, h264_only)
    return {
        "bits_saved_pct": round(saved, 1),
        "xpsnr_delta_db": round(delta, 2),
        "xpsnr_delta_at_equal_bits_db": round(delta_bits, 2),
        "bits_saved_pct_h264_devices": round(saved_h264, 1),
        "xpsnr_delta_db_h264_devices": round(delta_h264, 2),
        "cpu_seconds": {
            "fixed": round(fixed_cpu),
            "per_title_probe": round(probe_cpu),
            "new": round(new_cpu),
        },
        "rungs": rungs,
    }


def run_presets(masters: dict[str, Path], work: Path, seconds: float) -> dict[str, Any]:
    """XPSNR of the 1080p rung at its fixed rate, and CPU-seconds, per preset."""
    table: dict[str, Any] = {}
    for codec, presets in (
        ("h264", ("veryfast", "faster", "fast", "medium", "slow")),
        ("hevc", ("faster", "fast", "medium")),
    ):
        for preset in presets:
            row: dict[str, float] = {}
            for name, master in masters.items():
                probe = check_master(master)
                profile = FIXED.model_copy(
                    update={"preset": preset, "codec": VideoCodec(codec), "rungs": FIXED.rungs[1:2]}
                )
                plan = plan_ladder(probe, profile)
                clip = Chunk(index=0, start=0.0, duration=min(seconds, probe.duration or seconds))
                c0 = children_cpu()
                out = work / "presets" / codec / preset / name
                files = encode_ladder(probe, plan, out, chunk=clip, limits=LIMITS).renditions
                cpu = children_cpu() - c0
                (score,) = score_renditions(probe, plan, files, [clip], limits=LIMITS)
                row[f"{name}_xpsnr"] = score.xpsnr_y
                row[f"{name}_cpu"] = round(cpu, 1)
                print(f"  {codec} {preset} {name}: {score.xpsnr_y} dB {cpu:.1f} CPU-s", flush=True)
            table[f"{codec}:{preset}"] = row
    # The criterion (docs/transcoding.md): dB gained over the codec's fastest preset, mean
    # over the classes, per unit of CPU relative to it.
    for key, row in table.items():
        base = table[next(k for k in table if k.split(":")[0] == key.split(":")[0])]
        gain = statistics.mean(row[f"{n}_xpsnr"] - base[f"{n}_xpsnr"] for n in masters)
        cpu = sum(row[f"{n}_cpu"] for n in masters) / max(
            sum(base[f"{n}_cpu"] for n in masters), 1e-3
        )
        row["gain_db"], row["cpu_ratio"] = round(gain, 2), round(cpu, 2)
        row["db_per_cpu_ratio"] = round(gain / cpu, 2)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", action="store_true", help="the preset table instead")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(os.environ.get("BENCH_CACHE", "var/bench-cache"))
    )
    parser.add_argument("--classes", default=",".join(GRAPHS))
    parser.add_argument(
        "--master",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="measure this master too (your own content), under NAME; "
        "--classes '' leaves the synthetic ones out",
    )
    args = parser.parse_args()
    seconds = int(os.environ.get("POCKETCINEMA_BENCH_SECONDS", "60"))
    synthetic = [n for n in args.classes.split(",") if n]
    masters = {name: make_master(args.cache_dir, name, seconds) for name in synthetic}
    for given in args.master:
        name, _, file = given.partition("=")
        if not name or not file or not Path(file).is_file():
            parser.error(f"--master wants NAME=FILE with an existing file, not {given!r}")
        masters[name] = Path(file)
    names = list(masters)
    if not names:
        parser.error("nothing to measure: name --classes or give a --master")
    work = args.cache_dir / "quality-work"
    started = time.monotonic()
    if args.presets:
        table = run_presets(masters, work, min(seconds, 8))
        print(json.dumps({"seconds": min(seconds, 8), "presets": table}))
        return
    results = {}
    for name in names:
        print(f"{name} ({masters[name].name})", flush=True)
        results[name] = run_class(name, masters[name], work)
        print(f"  {name}: {json.dumps(results[name])}", flush=True)  # each class as it ends
    summary = {
        "seconds": seconds,
        "wall_seconds": round(time.monotonic() - started),
        "bits_saved_pct": {n: r["bits_saved_pct"] for n, r in results.items()},
        "bits_saved_pct_mean": round(
            statistics.mean(r["bits_saved_pct"] for r in results.values()), 1
        ),
        "xpsnr_delta_db": {n: r["xpsnr_delta_db"] for n, r in results.items()},
        "xpsnr_delta_at_equal_bits_db": {
            n: r["xpsnr_delta_at_equal_bits_db"] for n, r in results.items()
        },
        "goal": {"bits_saved_pct_mean_min": 30.0, "xpsnr_delta_db_min": -0.3},
        "classes": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
