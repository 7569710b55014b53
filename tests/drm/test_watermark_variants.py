"""Which file a session gets for each segment of a watermarked rendition, in both
packages' naming, with every segment or every k-th carrying a bit, in HLS playlists and in
the DASH manifest's per-segment list."""

from __future__ import annotations

import re
from pathlib import Path

from drm import manifests, watermark
from drm.watermark import codeword
from transcoding.cmaf import list_segments

SESSION = "ab" * 16
MARKED = frozenset({"video_540p"})


def test_segment_numbers_are_places_on_the_timeline_in_both_packages() -> None:
    assert watermark.segment_index("seg_00001.m4s") == 0
    assert watermark.segment_index("p2_seg_00031.m4s") == 30
    assert watermark.segment_index("p2_init.mp4") is None
    assert watermark.segment_index("init.mp4") is None
    assert watermark.segment_index("x_seg_00001.m4s") is None


def test_every_kth_segment_carries_a_bit_and_the_others_are_variant_a() -> None:
    bits = codeword(SESSION, 90)
    for every in (1, 2, 3):
        picked = [
            watermark.session_path(SESSION, f"video_540p/seg_{n + 1:05d}.m4s", MARKED, every)
            for n in range(90)
        ]
        expected = [
            f"video_540p{'.b' if n % every == 0 and bits[n] else ''}/seg_{n + 1:05d}.m4s"
            for n in range(90)
        ]
        assert picked == expected
        assert watermark.marked_segments(90, every) == list(range(0, 90, every))
        # Unmarked renditions and init segments are never rewritten.
        assert watermark.session_path(SESSION, "video_270p/seg_00001.m4s", MARKED, every) == (
            "video_270p/seg_00001.m4s"
        )
        assert watermark.session_path(SESSION, "video_540p/p0_init.mp4", MARKED, every) == (
            "video_540p/p0_init.mp4"
        )


MPD = """<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">
  <Period id="p1" start="PT8S">
    <AdaptationSet contentType="video">
      <Representation id="0" bandwidth="900000">
        <SegmentTemplate timescale="12288" presentationTimeOffset="98304"
            initialization="video_540p/p1_init.mp4" media="video_540p/p1_seg_$Number%05d$.m4s"
            startNumber="5">
          <SegmentTimeline><S t="98304" d="24576" r="2"/><S d="12288"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
      <Representation id="1" bandwidth="300000">
        <SegmentTemplate timescale="12288" initialization="video_270p/p1_init.mp4"
            media="video_270p/p1_seg_$Number%05d$.m4s" startNumber="5">
          <SegmentTimeline><S t="98304" d="24576" r="3"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"""


def test_the_manifest_lists_marked_segments_and_each_session_gets_its_own(tmp_path: Path) -> None:
    path = tmp_path / "manifest.mpd"
    path.write_text(MPD)
    list_segments(path, ["video_540p"])
    text = path.read_text()
    listed = re.findall(r'<SegmentURL media="([^"]+)"', text)
    assert listed == [f"video_540p/p1_seg_{n:05d}.m4s" for n in range(5, 9)]
    assert 'sourceURL="video_540p/p1_init.mp4"' in text
    assert 'presentationTimeOffset="98304"' in text
    assert text.count("<S ") == 3  # the timeline moved over as it was
    assert 'media="video_270p/p1_seg_$Number%05d$.m4s"' in text  # unmarked: still a template

    bits = codeword(SESSION, 8)
    parts = manifests.split(text)
    rendered = manifests.render(
        parts, "/media/", lambda p: watermark.session_path(SESSION, p, MARKED)
    )
    served = re.findall(r'<SegmentURL media="(video_540p(?:\.b)?)/p1_seg_(\d+)\.m4s"', rendered)
    assert [int(folder.endswith(".b")) for folder, _ in served] == bits[4:8]
    assert "<BaseURL>/media/</BaseURL>" in rendered
