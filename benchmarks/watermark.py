"""A/B forensic watermark: detection among 1,000 sessions, false positives over 1,000+
tries, detection time, the shortest capture that names a session, and what the mark costs.

    ./run bench watermark                 # 90 s film, 5 leaks (~10 min on a busy 2-core box)
    ./run bench watermark --quick         # 64 s film, 2 leaks, 200 sessions

What is measured, all with the service's own code (transcoding.encode, watermark,
forensics):

* cost: the same 2-rung ladder (360p, 180p; 2 s segments) encoded once without and once
  with every rung marked (encode_ladder with and without ``marking``), in the same run;
  CPU-seconds of the FFmpeg children (getrusage) and bytes of variant B. Both are given
  per hour of film and as ratios (a ratio carries over to other ladders; a CPU-second
  count on a shared box does not, and wall time even less);
* leaks: for each of ``--leaks`` sessions, the copy a pirate captures through its own
  playlists (its variant of every segment, joined with ``-c copy``), re-encoded at a
  third of the top rung's bitrate and scaled to 1280x720. An unmarked copy (the plain
  encode, laundered the same way) joins them;
* detection rate: each leak against ``--sessions`` issued sessions (the leaker among
  them) with forensics.service.identify, the function ``watermark detect`` calls;
* false positives: each copy (every leak and the unmarked one) against fresh sets of
  ``--sessions`` innocent sessions (the leaker left out), ``--tries`` tries in all; a
  try in which anyone is named is a false positive. The decision rule is the detector's
  (forensics.detection); the scoring is vectorised with integer bit masks here for speed
  and checked against identify() on the first tries;
* minimum captured duration: the fewest leading segments of each leak that still name
  the leaker among ``--sessions`` (a shorter capture reads exactly those segments).

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.settings import get_settings
from drm.watermark import codeword
from forensics import detection
from forensics.repository import Candidate
from forensics.service import Reference, identify
from transcoding import watermark
from transcoding.encode import encode_ladder
from transcoding.ladder import LadderProfile, RungSpec, WatermarkSpec, plan_ladder
from transcoding.policy import check_master

SEGMENT_SECONDS = 2.0
PROFILE = LadderProfile(
    name="bench-watermark",
    preset="veryfast",
    gop_seconds=2,
    segment_seconds=SEGMENT_SECONDS,
    rungs=(
        RungSpec(name="360p", height=360, bitrate_kbps=730),
        RungSpec(name="180p", height=180, bitrate_kbps=250),
    ),
)
MARKED = PROFILE.model_copy(update={"watermark": WatermarkSpec()})  # the default: every rung


def ffmpeg(*args: str) -> None:
    argv = [get_settings().ffmpeg_path, "-nostdin", "-v", "error", "-y", *args]
    subprocess.run(argv, check=True, capture_output=True)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def make_master(work: Path, seconds: int) -> Path:
    path = work / "master.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=640x360:r=24:d={seconds}",
        "-vf", "noise=alls=8:allf=t", "-c:v", "libx264", "-preset", "veryfast", "-crf", "16",
        "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def split_segments(path: Path, out: Path) -> list[Path]:
    """Cut an encode into its segments (keyframes every segment: ``-c copy``)."""
    out.mkdir(parents=True)
    ffmpeg(
        "-i", str(path), "-c", "copy", "-f", "segment", "-segment_time", f"{SEGMENT_SECONDS:g}",
        "-reset_timestamps", "0", str(out / "seg_%05d.ts"),
    )  # fmt: skip
    return sorted(out.glob("seg_*.ts"))


def capture(parts: list[Path], out: Path) -> Path:
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(out))
    return out


def launder(src: Path, out: Path, kbps: int) -> Path:
    ffmpeg(
        "-i", str(src), "-vf", "scale=1280:720", "-c:v", "libx264", "-preset", "veryfast",
        "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k", str(out),
    )  # fmt: skip
    return out


def mask(bits: list[int]) -> int:
    return sum(1 << i for i, b in enumerate(bits) if b)


def named_fast(decided: dict[int, int], words: list[int], count: int, target: float) -> bool:
    """Would anyone among ``words`` be named? The detector's rule, on integer masks."""
    n = len(decided)
    if n == 0:
        return False
    need = detection.needed_matches(n, count, target)
    if need is None:
        return False
    positions = sum(1 << i for i in decided)
    observed = sum(1 << i for i, b in decided.items() if b)
    return any(n - ((w ^ observed) & positions).bit_count() >= need for w in words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=90)
    parser.add_argument("--leaks", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--tries", type=int, default=1000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.leaks, args.sessions, args.tries = 64, 2, 200, 200
    target = detection.DEFAULT_TARGET_FPR
    work = Path(tempfile.mkdtemp(prefix="bench-watermark-"))
    try:
        master = make_master(work, args.seconds)
        probe = check_master(master)
        plain_plan, marked_plan = plan_ladder(probe, PROFILE), plan_ladder(probe, MARKED)

        # --- cost: the same ladder without and with the mark, in this run
        before = children_cpu()
        started = time.monotonic()
        plain = encode_ladder(probe, plain_plan, work / "plain")
        plain_wall = time.monotonic() - started
        plain_cpu = children_cpu() - before
        marking = watermark.prepare_marking("bench-release", 2.0, work / "marks")
        before = children_cpu()
        started = time.monotonic()
        marked = encode_ladder(probe, marked_plan, work / "marked", marking=marking)
        marked_wall = time.monotonic() - started
        marked_cpu = children_cpu() - before
        plain_bytes = sum(r.path.stat().st_size for r in plain.renditions)
        a_bytes = sum(r.path.stat().st_size for r in marked.renditions if not r.variant)
        b_bytes = sum(r.path.stat().st_size for r in marked.renditions if r.variant)
        per_hour = 3600 / args.seconds

        files = {r.output_name: r.path for r in marked.renditions}
        before = children_cpu()
        started = time.monotonic()
        ref = watermark.reference(
            files["180p"],
            files["180p.b"],
            frame_rate=marked_plan.frame_rate,
            segment_seconds=SEGMENT_SECONDS,
            folders=["video_360p", "video_180p"],
        )
        reference_cpu = children_cpu() - before
        reference_wall = time.monotonic() - started
        reference = Reference("bench", marked_plan.frame_rate, SEGMENT_SECONDS, ref["a"], ref["b"])
        segments = len(reference.a)

        # --- leaks: each session's own variants of the top rung, laundered
        seg_a = split_segments(files["360p"], work / "seg_a")
        seg_b = split_segments(files["360p.b"], work / "seg_b")
        top_kbps = marked_plan.rungs[0].bitrate // 1000
        leakers = [uuid.uuid4().hex for _ in range(args.leaks)]
        copies: list[tuple[str | None, Path]] = []
        for n, sid in enumerate(leakers):
            bits = codeword(sid, len(seg_a))
            parts = [seg_b[i] if b else seg_a[i] for i, b in enumerate(bits)]
            raw = capture(parts, work / f"capture{n}.mp4")
            copies.append((sid, launder(raw, work / f"leak{n}.mp4", top_kbps // 3)))
        unmarked = launder(plain.renditions[0].path, work / "unmarked.mp4", top_kbps // 3)
        copies.append((None, unmarked))

        # --- detection among --sessions issued sessions, the leaker one of them
        issued = [uuid.uuid4().hex for _ in range(args.sessions - 1)]
        now = datetime.now(UTC)
        detected, times, minimum_segments = 0, [], []
        features: dict[Path, list[list[float]]] = {}
        for leaker, path in copies:
            started = time.monotonic()
            frames = watermark.frame_cells(path, reference.frame_rate)
            seen = watermark.segment_features(frames, reference.frame_rate, SEGMENT_SECONDS)
            features[path] = seen
            if leaker is None:
                continue
            pool = [Candidate(s, None, "viewer", now) for s in [*issued, leaker]]
            found = identify(seen, reference, pool, target_fpr=target, started=started)
            times.append(found.seconds)
            detected += found.session_id == leaker
            for k in range(1, len(seen) + 1):
                short = identify(seen[:k], reference, pool, target_fpr=target)
                if short.session_id == leaker:
                    minimum_segments.append(k)
                    break
            else:
                minimum_segments.append(len(seen) + 1)

        # --- false positives: every copy against fresh innocent sessions
        false_positives, tries, checked = 0, 0, 0
        per_copy = max(1, -(-args.tries // len(copies)))
        for leaker, path in copies:
            seen = features[path]
            decided = detection.decided(detection.soft_bits(seen, reference.a, reference.b))
            length = min(len(seen), segments)
            for _ in range(per_copy):
                innocent = [uuid.uuid4().hex for _ in range(args.sessions)]
                words = [mask(codeword(s, length)) for s in innocent]
                hit = named_fast(decided, words, len(words), target)
                if checked < 3:  # the fast rule agrees with the detector's own
                    pool = [Candidate(s, None, "viewer", now) for s in innocent]
                    slow = identify(seen, reference, pool, target_fpr=target)
                    assert (slow.session_id is not None) == hit
                    checked += 1
                false_positives += hit
                tries += 1
            assert leaker is None or leaker not in innocent
    finally:
        shutil.rmtree(work, ignore_errors=True)

    leaks = len(leakers)
    summary: dict[str, Any] = {
        "benchmark": "watermark",
        "film_seconds": args.seconds,
        "segment_seconds": SEGMENT_SECONDS,
        "segments": segments,
        "sessions": args.sessions,
        "leaks": leaks,
        "laundering": f"x264 veryfast {top_kbps // 3} kbit/s (1/3 of {top_kbps}), 1280x720",
        "detection_rate": detected / leaks,
        "false_positive_tries": tries,
        "false_positives": false_positives,
        "false_positive_rate": false_positives / tries,
        "target_false_positive_rate": target,
        "detection_seconds_median": round(statistics.median(times), 2),
        "min_capture_segments_max": max(minimum_segments),
        "min_capture_seconds": max(minimum_segments) * SEGMENT_SECONDS,
        "min_capture_segments_each": minimum_segments,
        "encode_cpu_ratio": round(marked_cpu / plain_cpu, 3),
        "extra_encode_cpu_seconds_per_film_hour": round((marked_cpu - plain_cpu) * per_hour),
        "plain_encode_cpu_seconds_per_film_hour": round(plain_cpu * per_hour),
        "encode_wall_ratio": round(marked_wall / plain_wall, 3),
        "reference_cpu_seconds_per_film_hour": round(reference_cpu * per_hour),
        "reference_wall_seconds": round(reference_wall, 2),
        "storage_ratio": round((a_bytes + b_bytes) / plain_bytes, 3),
        "extra_storage_mb_per_film_hour": round(b_bytes * per_hour / 1e6, 1),
        "plain_storage_mb_per_film_hour": round(plain_bytes * per_hour / 1e6, 1),
        "load_average": os.getloadavg()[0],
    }
    for key, value in summary.items():
        print(f"{key}: {value}")
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
