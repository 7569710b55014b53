"""The watermark profile's ``every``: only every k-th segment carries a bit. Variant B of
the other segments is encoded as black (cheap for the encoder, dropped at packaging), in
a whole-film encode and in a chunk that starts part-way (the chunk's offset decides which
segments carry a bit, not the chunk's own clock); the detector's reference records no
contrast there, so nothing is read from them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from tests.transcoding.conftest import ffmpeg
from transcoding import watermark
from transcoding.chunking import Chunk
from transcoding.encode import encode_ladder
from transcoding.ladder import LadderProfile, RungSpec, WatermarkSpec, plan_ladder
from transcoding.policy import check_master

pytestmark = [pytest.mark.slow, pytest.mark.backend_agnostic]

SECONDS = 6
PROFILE = LadderProfile(
    name="fraction",
    preset="ultrafast",
    gop_seconds=1,
    segment_seconds=1,
    native_rung_min_gain=1000,
    rungs=(RungSpec(name="108p", height=108, bitrate_kbps=300),),
    watermark=WatermarkSpec(every=2),
)


def _segment_luma(path: Path, rate: Fraction) -> list[float]:
    """Each 1 s segment's mean luma."""
    frames = watermark.frame_cells(path, rate)
    return [sum(seg) / len(seg) for seg in watermark.segment_features(frames, rate, 1.0)]


@pytest.mark.parametrize(("chunk", "carrying"), [(None, [0, 2, 4]), (Chunk(1, 3.0, None), [4])])
def test_variant_b_is_black_where_no_bit_is_carried(
    tmp_path: Path, chunk: Chunk | None, carrying: list[int]
) -> None:
    master = tmp_path / "master.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=192x108:r=24:d={SECONDS}", "-vf", "noise=alls=6:allf=t",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "24", "-pix_fmt", "yuv420p", str(master),
    )  # fmt: skip
    probe = check_master(master)
    plan = plan_ladder(probe, PROFILE)
    marking = watermark.prepare_marking(
        "release-1", 2.0, tmp_path / "marks", every=2, segment_seconds=1.0
    )
    done = encode_ladder(probe, plan, tmp_path / "out", chunk=chunk, marking=marking)
    files = {r.output_name: r.path for r in done.renditions}
    a = _segment_luma(files["108p"], plan.frame_rate)
    b = _segment_luma(files["108p.b"], plan.frame_rate)
    first = 0 if chunk is None else round(chunk.start)
    assert len(a) == len(b) == SECONDS - first
    for local, (luma_a, luma_b) in enumerate(zip(a, b, strict=True)):
        index = first + local
        if index in carrying:  # the picture, marked the other way: means within a few values
            assert abs(luma_a - luma_b) < 3, index
            assert luma_b > 40, index
        else:  # black (limited range: 16): no picture left to mark
            assert luma_b < 20, index
            assert luma_a > 40, index

    if chunk is None:
        ref = watermark.reference(
            files["108p"],
            files["108p.b"],
            frame_rate=plan.frame_rate,
            segment_seconds=1.0,
            folders=["video_108p"],
            every=2,
        )
        assert ref["every"] == 2
        for index, (seg_a, seg_b) in enumerate(zip(ref["a"], ref["b"], strict=True)):
            # A carrying segment's references differ cell by cell; the others agree.
            assert (seg_a != seg_b) == (index in carrying), index
