"""Ladder speed: naive vs single-decode vs chunked, on one synthetic 1080p master.

    ./run bench transcode                 # 60 s master, the full measurement (~8 min on 2 cores)
    ./run bench transcode --quick         # 12 s smoke run
    ./run bench transcode --duration 30
    ./run bench transcode --repeat 3      # medians of 3 rounds (use on a shared box)

The master is testsrc2 with temporal noise (grain) at a high bitrate, so decoding costs
what a real mezzanine costs; it is generated once into the cache directory. All three
pipelines use the same 4-rung ladder and encoder settings (the service's code paths:
encode_ladder_naive, encode_ladder, plan_chunks + encode_ladder per chunk + concat +
package). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._measure import children_cpu
from core.settings import get_settings
from transcoding.chunking import plan_chunks
from transcoding.encode import (
    RenditionFile,
    concat_renditions,
    encode_ladder,
    encode_ladder_naive,
)
from transcoding.ladder import LadderProfile, RungSpec, plan_ladder
from transcoding.package import ContentKey, package_hls
from transcoding.policy import check_master

PROFILE = LadderProfile(
    name="bench",
    preset="veryfast",
    hevc_rungs_min_height=None,  # today's H.264 ladder: this measures the pipeline's shape
    rungs=(
        RungSpec(name="1080p", height=1080, bitrate_kbps=6000),
        RungSpec(name="720p", height=720, bitrate_kbps=3000),
        RungSpec(name="540p", height=540, bitrate_kbps=2000),
        RungSpec(name="360p", height=360, bitrate_kbps=730),
    ),
)


def make_master(cache: Path, duration: int) -> Path:
    path = cache / f"grain_1080p24_high_{duration}s.mp4"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    print(f"generating {path} (once) ...", flush=True)
    subprocess.run(
        [
            get_settings().ffmpeg_path,
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s=1920x1080:r=24:d={duration}",
            "-vf",
            "noise=alls=20:allf=t+u",
            "-c:v",
            "libx264",
            # A studio-like mezzanine: High profile with CABAC and deblocking at ~50 Mbit/s
            # (an ultrafast/CAVLC master would decode several times cheaper than real ones
            # and hide what the single-decode graph saves).
            "-preset",
            "veryfast",
            "-profile:v",
            "high",
            "-b:v",
            "50M",
            "-maxrate",
            "60M",
            "-bufsize",
            "100M",
            "-g",
            "48",
            "-pix_fmt",
            "yuv420p",
            str(tmp),
        ],
        check=True,
    )
    tmp.rename(path)
    return path


def measure(name: str, fn: Callable[[], Any]) -> dict[str, float]:
    cpu0, t0 = children_cpu(), time.monotonic()
    fn()
    wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    print(f"  {name:<14} {wall:7.1f} s wall  {cpu:7.1f} CPU-s", flush=True)
    return {"wall": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60, help="master length in seconds")
    parser.add_argument("--quick", action="store_true", help="12 s smoke run")
    parser.add_argument("--workers", type=int, default=2, help="chunks encoded at a time")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; medians are reported")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(os.environ.get("BENCH_CACHE", "var/bench-cache"))
    )
    args = parser.parse_args()
    duration = 12 if args.quick else args.duration

    master = make_master(args.cache_dir, duration)
    probe = check_master(master)
    plan = plan_ladder(probe, PROFILE)
    seconds = probe.duration or float(duration)
    chunks = plan_chunks(seconds, args.workers, segment_seconds=PROFILE.segment_seconds)
    print(
        f"master {master.name}: {seconds:.1f} s, {(probe.bit_rate or 0) / 1e6:.1f} Mbit/s; "
        f"ladder {', '.join(f'{r.width}x{r.height}@{r.bitrate // 1000}k' for r in plan.rungs)}; "
        f"x264 {PROFILE.preset}; {len(chunks)} chunks, {args.workers} at a time; "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="bench-transcode-"))
    key = ContentKey(os.urandom(16), os.urandom(16), "https://keys.invalid/{key_id}")

    def single_decode() -> None:
        encode_ladder(probe, plan, work / "single")

    def package_single() -> None:
        package_hls(
            [RenditionFile(rung=r, path=work / "single" / f"{r.name}.mp4") for r in plan.rungs],
            work / "hls_single",
            duration=seconds,
            key=key,
        )

    def chunked() -> None:
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            list(
                pool.map(
                    lambda c: encode_ladder(probe, plan, work / f"chunk_{c.index}", chunk=c),
                    chunks,
                )
            )
        renditions = [
            RenditionFile(
                rung=r,
                path=concat_renditions(
                    [work / f"chunk_{c.index}" / f"{r.name}.mp4" for c in chunks],
                    work / "joined" / f"{r.name}.mp4",
                ),
            )
            for r in plan.rungs
        ]
        package_hls(renditions, work / "hls_chunked", duration=seconds, key=key)

    pipelines: dict[str, Callable[[], Any]] = {
        "naive": lambda: encode_ladder_naive(probe, plan, work / "naive"),
        "single_decode": single_decode,
        "package": package_single,
        "chunked": chunked,
    }
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in pipelines}
    try:
        for n in range(max(1, args.repeat)):
            if args.repeat > 1:
                print(f" round {n + 1}/{args.repeat}", flush=True)
            for name, fn in pipelines.items():
                samples[name].append(measure(name, fn))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # Medians: on a shared box a passing load spoils one round, not the result.
    medians = {
        name: {k: statistics.median(s[k] for s in runs) for k in ("wall", "cpu")}
        for name, runs in samples.items()
    }
    package = medians.pop("package")
    results = medians

    naive = results["naive"]["wall"]
    print()
    print("| pipeline | wall s | realtime | vs naive | CPU-s |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['wall']:.1f} | {seconds / r['wall']:.2f}x | "
            f"{naive / r['wall']:.2f}x | {r['cpu']:.0f} |"
        )
    print(
        f"| packaging (AES-128, after single_decode) | {package['wall']:.1f} | | | {package['cpu']:.0f} |"
    )
    single = results["single_decode"]["wall"]
    summary = {
        "duration_seconds": round(seconds, 3),
        "pipeline": "single_decode",
        "realtime_factor": round(seconds / single, 3),
        "speedup_vs_naive": round(naive / single, 3),
        "realtime_factor_with_packaging": round(seconds / (single + package["wall"]), 3),
        "chunked_speedup_vs_naive": round(naive / results["chunked"]["wall"], 3),
        # CPU-seconds do not move when another job shares the box; wall times do.
        "cpu_speedup_vs_naive": round(results["naive"]["cpu"] / results["single_decode"]["cpu"], 3),
        "wall_seconds": {k: round(v["wall"], 2) for k, v in results.items()}
        | {"package": round(package["wall"], 2)},
        "cpu_seconds": {k: round(v["cpu"], 1) for k, v in results.items()},
        "rungs": [f"{r.width}x{r.height}" for r in plan.rungs],
        "preset": PROFILE.preset,
        "chunks": len(chunks),
        "cpus": os.cpu_count(),
        "rounds": max(1, args.repeat),
    }
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
