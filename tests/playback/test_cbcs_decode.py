"""The cbcs package decodes frame-exact with its keys, period by period, and not without.

FFmpeg 8.1's MP4 demuxer decrypts cbcs with ``-decryption_key`` (one key per input), so
each key period of each rung (its init segment and its media segments, as a player joins
them) is decoded with that period's key: every frame of the film comes back exactly once,
at its time, in every rung; with another period's key or none, the decoder fails.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from core.settings import get_settings
from core.storage import get_store
from drm import keys as content_keys
from tests.playback.conftest import (
    CBCS_KEY_PERIOD_SECONDS,
    CBCS_PROFILE,
    CBCS_SECONDS,
    PackagedRelease,
    Viewing,
)

FPS = 24
RUNGS = [str(rung["name"]) for rung in CBCS_PROFILE["rungs"]]  # type: ignore[attr-defined]
DURATION = CBCS_SECONDS
KEY_PERIOD_SECONDS = CBCS_KEY_PERIOD_SECONDS


def _join(prefix: str, folder: str, period: int, dest: Path) -> Path:
    store = get_store()
    names = sorted(
        key.rsplit("/", 1)[1]
        for key in store.list_keys(f"{prefix}/{folder}/")
        if key.rsplit("/", 1)[1].startswith(f"p{period}_seg_")
    )
    data = store.get_bytes(f"{prefix}/{folder}/p{period}_init.mp4")
    data += b"".join(store.get_bytes(f"{prefix}/{folder}/{name}") for name in names)
    dest.write_bytes(data)
    return dest


def _frames(path: Path, key: bytes | None) -> subprocess.CompletedProcess[str]:
    argv = [get_settings().ffmpeg_path, "-nostdin", "-v", "error"]
    if key is not None:
        argv += ["-decryption_key", key.hex()]
    argv += ["-i", str(path), "-copyts", "-map", "0:v", "-f", "framemd5", "-"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.backend_agnostic  # the media, not the database: once is enough
def test_every_rung_decodes_frame_exact_with_each_period_key(
    drm_viewing: Viewing, cbcs_release: PackagedRelease, tmp_path: Path
) -> None:
    prefix = str(cbcs_release.release["hls_prefix"])
    kids = cbcs_release.key_ids
    assert len(kids) == DURATION // KEY_PERIOD_SECONDS
    period_frames = KEY_PERIOD_SECONDS * FPS
    for rung in RUNGS:
        folder = f"video_{rung}"
        timestamps: list[int] = []
        for period, kid in enumerate(kids):
            joined = _join(prefix, folder, period, tmp_path / f"{folder}_{period}.mp4")
            decoded = _frames(joined, content_keys.load_key(kid)[0])
            assert decoded.returncode == 0, decoded.stderr[-500:]
            assert decoded.stderr == "", decoded.stderr[-500:]
            frames = [x for x in decoded.stdout.splitlines() if x and not x.startswith("#")]
            assert len(frames) == period_frames, (folder, period)
            timestamps += [int(x.split(",")[2]) for x in frames]
            if period == 1:  # a period's segments with another period's key, or with none
                other = content_keys.load_key(kids[0])[0]
                for wrong in (None, other):
                    refused = _frames(joined, wrong)
                    assert refused.returncode != 0 or refused.stderr, (folder, period)
        # One continuous timeline: every frame once, in order, no gap at a key change.
        assert len(timestamps) == DURATION * FPS
        steps = {b - a for a, b in itertools.pairwise(timestamps)}
        assert len(steps) == 1, steps
