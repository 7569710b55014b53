"""A/B forensic watermark at scale: leaks of many sessions, for the AES-128 and the cbcs
packages, named among 1,000 sessions; false positives over 1,000+ tries; the shortest
capture that names a session; detection time; and what the mark costs, with every segment
marked and with only every k-th.

    ./run bench watermark                 # 136 s film, 20 leaks (~45 min on a 2-core box at load 30)
    ./run bench watermark --quick         # 72 s film, 4 leaks, 200 sessions, every 2nd

What is measured, all with the service's own code (transcoding.encode, package, cmaf,
watermark; forensics):

* one film, encoded three times in this run with the same 2-rung ladder (360p, 180p; 2 s
  segments): plain, marked on every segment, marked on every ``--every``-th segment.
  CPU-seconds of the FFmpeg children (getrusage) and bytes, per hour of film and as
  ratios (a ratio carries over to other ladders; a CPU-second count on a shared box does
  not, wall time even less);
* both marked encodes are packaged as the pipeline does, A and B separately with the same
  keys: HLS AES-128 (one key) and cbcs CMAF (one key per ``--period`` seconds, derived
  IVs); B's storage counts only the segments that carry a bit (what is published);
* a leak is one session's stream as a pirate gets it through its own playlists: for each
  segment its variant's packaged file, decrypted (AES-128: whole-segment AES-CBC, IV = the
  media sequence number, behind A's init segment; cbcs: each key period's init segment and
  segments decrypted by FFmpeg ``-decryption_key`` with that period's key, periods joined),
  then laundered once. One encoded film and one set of A/B packages serve every leak;
  leaks alternate between the two packages. Launderings, all at a third of the top rung's
  bitrate: ``third`` = x264 veryfast, scaled to 1280x720 (every leak); ``fps25`` = the
  same at 25 fps instead of 24 (one leak per package); ``crop4`` = 4 % cropped off each
  side, then as ``third``, and ``ultrafast`` = ``third`` with x264's crudest preset (one
  leak per package each: the detector is not built for crops, and ultrafast's blocky
  coding is a harsher attack; the figures say whether it still names anyone);
* detection: each laundered leak against ``--sessions`` issued sessions (the leaker among
  them) with forensics.service.identify, what ``watermark detect`` runs;
* false positives: every laundered copy (the leaks and the unmarked film, laundered the
  same way) against fresh sets of ``--sessions`` sessions that did not make it, ``--tries``
  tries in all; a try in which anyone is named is a false positive. The decision rule is
  the detector's (forensics.detection), vectorised with integer bit masks here and checked
  against identify() on the first tries;
* minimum capture: the fewest leading segments of each leak that still name its session
  (leaks of the fully marked film are laundered over their first ``--capture`` seconds,
  about twice that minimum; the two leaks of the ``--every`` k encode over the whole film).

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from core.settings import get_settings
from drm.watermark import carries_bit, codeword, segment_index
from forensics import detection
from forensics.repository import Candidate
from forensics.service import Reference, identify
from transcoding import watermark
from transcoding.cmaf import package_cmaf
from transcoding.encode import EncodeResult, RenditionFile, encode_ladder
from transcoding.ladder import LadderPlan, LadderProfile, RungSpec, WatermarkSpec, plan_ladder
from transcoding.package import ContentKey, package_hls, video_folder
from transcoding.policy import check_master
from transcoding.probe import ProbeResult

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
TOP = video_folder("360p")
SCHEMES = ("aes128", "cbcs")
KEY_URI = "https://bench.invalid/v1/playback/keys/{key_id}"
T = TypeVar("T")


def ffmpeg(*args: str) -> None:
    argv = [get_settings().ffmpeg_path, "-nostdin", "-v", "error", "-y", *args]
    subprocess.run(argv, check=True, capture_output=True)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(work: Callable[[], T]) -> tuple[T, float]:
    """``work()`` and the CPU-seconds its child processes used."""
    before = children_cpu()
    result = work()
    return result, children_cpu() - before


def make_master(work: Path, seconds: int) -> Path:
    path = work / "master.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=640x360:r=24:d={seconds}",
        "-vf", "noise=alls=8:allf=t", "-c:v", "libx264", "-preset", "veryfast", "-crf", "16",
        "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def new_key() -> ContentKey:
    return ContentKey(secrets.token_bytes(16), secrets.token_bytes(16), KEY_URI)


@dataclass(frozen=True)
class Package:
    """One marked encode packaged in one scheme: A's and B's folders of the top rung."""

    scheme: str
    a: Path  # .../video_360p (A: init segments, playlists' segments)
    b: Path  # .../video_360p of B's package
    keys: tuple[ContentKey, ...]
    every: int
    b_bytes: int  # B's published media segments (those that carry a bit), both rungs
    package_cpu: float  # CPU-seconds to package B (A costs the same again, unmarked too)
    period_segments: int
    first_sequence: int  # AES-128: the IV of segment i is first_sequence + i

    def segment(self, index: int, variant: int) -> Path:
        name = (
            f"seg_{index + 1:05d}.m4s"
            if self.scheme == "aes128"
            else f"p{index // self.period_segments}_seg_{index + 1:05d}.m4s"
        )
        return (self.b if variant else self.a) / name


def package(
    scheme: str,
    encoded: EncodeResult,
    work: Path,
    *,
    seconds: float,
    period_segments: int,
    every: int,
) -> Package:
    a_files = [r for r in encoded.renditions if not r.variant]
    b_files = [r for r in encoded.renditions if r.variant == "b"]
    periods = max(1, -(-round(seconds / SEGMENT_SECONDS) // period_segments))
    keys = tuple(new_key() for _ in range(periods if scheme == "cbcs" else 1))

    def run(files: list[RenditionFile], out: Path) -> Path:
        if scheme == "cbcs":
            done = package_cmaf(
                files,
                out,
                duration=seconds,
                period_keys=keys,
                period_segments=period_segments,
                segment_seconds=SEGMENT_SECONDS,
            )
        else:
            done = package_hls(
                files, out, duration=seconds, segment_seconds=SEGMENT_SECONDS, key=keys[0]
            )
        return done.out_dir

    a_dir = run(a_files, work / f"{scheme}-a")
    b_dir, cpu = measured(lambda: run(b_files, work / f"{scheme}-b"))
    playlist = next(
        p.read_text()
        for p in a_dir.rglob("*.m3u8")
        if "seg_00001.m4s" in p.read_text() and TOP in str(p.relative_to(a_dir))
    )
    first_sequence = next(
        (
            int(x.split(":", 1)[1])
            for x in playlist.splitlines()
            if x.startswith("#EXT-X-MEDIA-SEQUENCE:")
        ),
        0,
    )
    published = [
        p
        for p in b_dir.rglob("*seg_*.m4s")
        if (index := segment_index(p.name)) is not None and carries_bit(index, every)
    ]
    return Package(
        scheme,
        a_dir / TOP,
        b_dir / TOP,
        keys,
        every,
        sum(p.stat().st_size for p in published),
        cpu,
        period_segments,
        first_sequence,
    )


def _aes128_decrypt(data: bytes, key: bytes, sequence: int) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(sequence.to_bytes(16, "big"))).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    clear = decryptor.update(data) + decryptor.finalize()
    return unpadder.update(clear) + unpadder.finalize()


def capture(pkg: Package, bits: list[int], out: Path) -> Path:
    """The session's stream through its own playlists, decrypted: the pirate's file."""
    if pkg.scheme == "aes128":
        data = (pkg.a / "init.mp4").read_bytes()
        for index, bit in enumerate(bits):
            variant = bit if carries_bit(index, pkg.every) else 0
            data += _aes128_decrypt(
                pkg.segment(index, variant).read_bytes(),
                pkg.keys[0].key,
                pkg.first_sequence + index,
            )
        out.write_bytes(data)
        return out
    parts = []
    for period, key in enumerate(pkg.keys):
        first = period * pkg.period_segments
        indexes = range(first, min(first + pkg.period_segments, len(bits)))
        if not indexes:
            break
        joined = out.with_name(f"{out.stem}.p{period}.enc.mp4")
        data = (pkg.a / f"p{period}_init.mp4").read_bytes()
        for index in indexes:
            variant = bits[index] if carries_bit(index, pkg.every) else 0
            data += pkg.segment(index, variant).read_bytes()
        joined.write_bytes(data)
        clear = out.with_name(f"{out.stem}.p{period}.mp4")
        ffmpeg("-decryption_key", key.key.hex(), "-i", str(joined), "-c", "copy", str(clear))
        parts.append(clear)
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(out))
    return out


# name: (filters, x264 preset); every one at a third of the top rung's bitrate
LAUNDERINGS = {
    "third": ("scale=1280:720", "veryfast"),
    "fps25": ("fps=25,scale=1280:720", "veryfast"),
    "crop4": ("crop=iw*0.92:ih*0.92,scale=1280:720", "veryfast"),
    "ultrafast": ("scale=1280:720", "ultrafast"),
}


def launder(src: Path, out: Path, kind: str, kbps: int, seconds: float | None) -> Path:
    """The leak as a pirate publishes it (its first ``seconds``, if given)."""
    filters, preset = LAUNDERINGS[kind]
    ffmpeg(
        "-i", str(src), *(["-t", f"{seconds:g}"] if seconds else []),
        "-vf", filters, "-c:v", "libx264", "-preset", preset,
        "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k", "-an", str(out),
    )  # fmt: skip
    return out


def features(path: Path, reference: Reference) -> list[list[float]]:
    frames = watermark.frame_cells(path, reference.frame_rate)
    return watermark.segment_features(frames, reference.frame_rate, SEGMENT_SECONDS)


def shortest(seen: list[list[float]], reference: Reference, pool: list[Candidate], who: str) -> int:
    """The fewest leading segments that name ``who``; one past the capture if none do."""
    for k in range(1, len(seen) + 1):
        if identify(seen[:k], reference, pool).session_id == who:
            return k
    return len(seen) + 1


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


@dataclass(frozen=True)
class Encoded:
    result: EncodeResult
    cpu: float
    plan: LadderPlan

    def files(self) -> dict[str, Path]:
        return {r.output_name: r.path for r in self.result.renditions}


def encode(probe: ProbeResult, work: Path, every: int | None) -> Encoded:
    profile = (
        PROFILE
        if every is None
        else PROFILE.model_copy(update={"watermark": WatermarkSpec(every=every)})
    )
    plan = plan_ladder(probe, profile)
    marking = (
        None
        if every is None
        else watermark.prepare_marking(
            "bench-release", 2.0, work / "marks", every=every, segment_seconds=SEGMENT_SECONDS
        )
    )
    name = "plain" if every is None else f"every{every}"
    result, cpu = measured(lambda: encode_ladder(probe, plan, work / name, marking=marking))
    return Encoded(result, cpu, plan)


def make_reference(encoded: Encoded, every: int) -> tuple[Reference, float]:
    files = encoded.files()
    ref, cpu = measured(
        lambda: watermark.reference(
            files["180p"],
            files["180p.b"],
            frame_rate=encoded.plan.frame_rate,
            segment_seconds=SEGMENT_SECONDS,
            folders=[TOP, video_folder("180p")],
            every=every,
        )
    )
    frame_rate = encoded.plan.frame_rate
    return Reference("bench", frame_rate, SEGMENT_SECONDS, ref["a"], ref["b"], every), cpu


@dataclass
class Copy:
    leaker: str | None  # None: the unmarked film
    scheme: str
    laundering: str
    every: int
    path: Path
    seen: list[list[float]]
    named: bool = False
    seconds: float = 0.0
    minimum: int = 0  # segments


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=136)
    parser.add_argument("--leaks", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--tries", type=int, default=1000)
    parser.add_argument("--every", type=int, default=2, help="the fraction to measure: 1/k")
    parser.add_argument("--period", type=int, default=32, help="cbcs key period, seconds")
    parser.add_argument("--capture", type=int, default=80, help="seconds of each full leak")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.leaks, args.sessions, args.tries, args.capture = 72, 4, 200, 200, 72
    target = detection.DEFAULT_TARGET_FPR
    load_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="bench-watermark-"))
    started_all = time.monotonic()
    try:
        master = make_master(work, args.seconds)
        probe = check_master(master)
        per_hour = 3600 / args.seconds

        # --- cost: one film, three encodes in this run
        plain = encode(probe, work, None)
        full = encode(probe, work, 1)
        part = encode(probe, work, args.every)
        plain_bytes = sum(r.path.stat().st_size for r in plain.result.renditions)
        reference, reference_cpu = make_reference(full, 1)
        part_reference, _ = make_reference(part, args.every)
        segments = len(reference.a)
        period_segments = max(1, round(args.period / SEGMENT_SECONDS))
        packages = {
            (scheme, every): package(
                scheme,
                encoded.result,
                work / f"pkg{every}",
                seconds=float(args.seconds),
                period_segments=period_segments,
                every=every,
            )
            for scheme in SCHEMES
            for every, encoded in ((1, full), (args.every, part))
        }

        # --- leaks: sessions' streams through their playlists, decrypted, laundered once
        top_kbps = full.plan.rungs[0].bitrate // 1000
        kbps = top_kbps // 3
        copies: list[Copy] = []

        def leak(n: int, scheme: str, every: int, launderings: tuple[str, ...]) -> None:
            sid = uuid.uuid4().hex
            pkg = packages[(scheme, every)]
            raw = capture(pkg, codeword(sid, segments), work / f"capture{n}-{scheme}-{every}.mp4")
            ref = reference if every == 1 else part_reference
            # Leaks of the fully marked film are cut to --capture seconds (twice the shortest
            # identifying capture: enough to measure it, and half the laundering work).
            seconds = args.capture if every == 1 else None
            for kind in launderings:
                out = launder(raw, work / f"leak{n}-{kind}.mp4", kind, kbps, seconds)
                started = time.monotonic()  # detection time: reading the capture and deciding
                seen = features(out, ref)
                copies.append(
                    Copy(sid, scheme, kind, every, out, seen, seconds=time.monotonic() - started)
                )
                out.unlink()
            raw.unlink()

        extra = {"aes128": 0, "cbcs": 0}
        for n in range(args.leaks):
            scheme = SCHEMES[n % 2]
            kinds = ("third", *(("fps25", "crop4", "ultrafast") if extra[scheme] < 1 else ()))
            extra[scheme] += 1
            leak(n, scheme, 1, kinds)
        if args.every > 1:
            for n in range(2):
                leak(args.leaks + n, SCHEMES[n % 2], args.every, ("third",))
        unmarked = work / "unmarked.mp4"
        launder(plain.files()["360p"], unmarked, "third", kbps, args.capture)
        copies.append(Copy(None, "none", "third", 1, unmarked, features(unmarked, reference)))

        # --- detection among --sessions issued sessions, the leaker one of them
        issued = [uuid.uuid4().hex for _ in range(args.sessions - 1)]
        now = datetime.now(UTC)
        for copy in copies:
            if copy.leaker is None:
                continue
            ref = reference if copy.every == 1 else part_reference
            pool = [Candidate(s, None, "viewer", now) for s in [*issued, copy.leaker]]
            seen = copy.seen
            found = identify(seen, ref, pool, target_fpr=target)
            copy.seconds += found.seconds
            copy.named = found.session_id == copy.leaker
            copy.minimum = shortest(seen, ref, pool, copy.leaker)

        # --- false positives: every copy against fresh sessions that did not make it
        false_positives, tries, checked = 0, 0, 0
        per_copy = max(1, -(-args.tries // len(copies)))
        for copy in copies:
            ref = reference if copy.every == 1 else part_reference
            decided = {
                i: b
                for i, b in detection.decided(detection.soft_bits(copy.seen, ref.a, ref.b)).items()
                if carries_bit(i, ref.every)
            }
            length = min(len(copy.seen), segments)
            for _ in range(per_copy):
                innocent = [uuid.uuid4().hex for _ in range(args.sessions)]
                words = [mask(codeword(s, length)) for s in innocent]
                hit = named_fast(decided, words, len(words), target)
                if checked < 4:  # the fast rule agrees with the detector's own
                    pool = [Candidate(s, None, "viewer", now) for s in innocent]
                    slow = identify(copy.seen, ref, pool, target_fpr=target)
                    assert (slow.session_id is not None) == hit
                    checked += 1
                false_positives += hit
                tries += 1
                assert copy.leaker not in innocent
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary = report(
        args, copies, packages, plain, full, part, plain_bytes, reference_cpu,
        segments, false_positives, tries, per_hour, kbps, top_kbps,
    )  # fmt: skip
    summary["load_average_start"] = round(load_start, 2)
    summary["load_average_end"] = round(os.getloadavg()[0], 2)
    summary["bench_wall_seconds"] = round(time.monotonic() - started_all)
    for key, value in summary.items():
        print(f"{key}: {value}")
    sys.stdout.write(json.dumps(summary) + "\n")


def report(
    args: argparse.Namespace,
    copies: list[Copy],
    packages: dict[tuple[str, int], Package],
    plain: Encoded,
    full: Encoded,
    part: Encoded,
    plain_bytes: int,
    reference_cpu: float,
    segments: int,
    false_positives: int,
    tries: int,
    per_hour: float,
    kbps: int,
    top_kbps: int,
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "benchmark": "watermark",
        "film_seconds": args.seconds,
        "segment_seconds": SEGMENT_SECONDS,
        "segments": segments,
        "sessions": args.sessions,
        "laundering": (
            f"third: x264 veryfast {kbps} kbit/s (1/3 of {top_kbps}), 1280x720; "
            "fps25: also 25 fps; crop4: also 8 % cropped (4 % a side); "
            "ultrafast: third with x264's ultrafast preset"
        ),
        "leaks": len({c.leaker for c in copies if c.leaker}),
    }
    for scheme in SCHEMES:
        for kind in LAUNDERINGS:
            tried = [
                c for c in copies if c.scheme == scheme and c.laundering == kind and c.every == 1
            ]
            if tried:
                summary[f"{scheme}_{kind}_named"] = f"{sum(c.named for c in tried)}/{len(tried)}"
        third = [
            c for c in copies if c.scheme == scheme and c.laundering == "third" and c.every == 1
        ]
        summary[f"{scheme}_min_capture_seconds"] = max(c.minimum for c in third) * SEGMENT_SECONDS
        summary[f"{scheme}_detection_seconds_median"] = round(
            statistics.median(c.seconds for c in third), 2
        )
        one, k = packages[(scheme, 1)], packages[(scheme, args.every)]
        summary[f"{scheme}_extra_storage_mb_per_film_hour"] = round(one.b_bytes * per_hour / 1e6, 1)
        summary[f"{scheme}_extra_storage_mb_per_film_hour_every{args.every}"] = round(
            k.b_bytes * per_hour / 1e6, 1
        )
        summary[f"{scheme}_b_package_cpu_seconds_per_film_hour"] = round(one.package_cpu * per_hour)
    fraction = [c for c in copies if c.every == args.every and c.every > 1]
    if fraction:
        summary[f"every{args.every}_named"] = f"{sum(c.named for c in fraction)}/{len(fraction)}"
        summary[f"every{args.every}_min_capture_seconds"] = (
            max(c.minimum for c in fraction) * SEGMENT_SECONDS
        )
    summary |= {
        "false_positive_tries": tries,
        "false_positives": false_positives,
        "target_false_positive_rate": detection.DEFAULT_TARGET_FPR,
        "unmarked_named": sum(c.named for c in copies if c.leaker is None),
        "plain_encode_cpu_seconds_per_film_hour": round(plain.cpu * per_hour),
        "extra_encode_cpu_seconds_per_film_hour": round((full.cpu - plain.cpu) * per_hour),
        f"extra_encode_cpu_seconds_per_film_hour_every{args.every}": round(
            (part.cpu - plain.cpu) * per_hour
        ),
        "encode_cpu_ratio": round(full.cpu / plain.cpu, 3),
        f"encode_cpu_ratio_every{args.every}": round(part.cpu / plain.cpu, 3),
        "plain_storage_mb_per_film_hour": round(plain_bytes * per_hour / 1e6, 1),
        "reference_cpu_seconds_per_film_hour": round(reference_cpu * per_hour),
    }
    return summary


if __name__ == "__main__":
    main()
