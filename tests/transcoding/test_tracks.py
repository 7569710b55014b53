"""Track detection rules: languages, roles, defaults, channel maps, warnings (no FFmpeg),
and the policy's answers for containers studios send (IMF, random bytes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import m3u8
import pytest

from catalog.locales import bcp47_from_media_tag
from catalog.models import TrackKind, TrackRole, TrackStatus
from core.errors import InvalidInput
from transcoding.package import AudioRole, RenditionLabel, relabel_master
from transcoding.policy import check_master
from transcoding.probe import ProbeResult, parse_probe_json
from transcoding.tracks import SidecarInfo, default_channel_map, detect_tracks, plan_audio_groups


def _probe(*streams: dict[str, Any]) -> ProbeResult:
    video = {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 320, "height": 180}
    indexed = [video, *({"index": n + 1, **s} for n, s in enumerate(streams))]
    return parse_probe_json(
        {"format": {"format_name": "matroska,webm", "duration": "6.0"}, "streams": indexed},
        Path("master.mkv"),
    )


def _audio(language: str | None = None, channels: int = 2, **disposition: int) -> dict[str, Any]:
    tags = {"language": language} if language else {}
    return {
        "codec_type": "audio",
        "codec_name": "pcm_s24le",
        "channels": channels,
        "tags": tags,
        "disposition": disposition,
    }


def _subtitle(codec: str, language: str | None, title: str | None = None, **d: int) -> Any:
    tags = {k: v for k, v in {"language": language, "title": title}.items() if v}
    return {"codec_type": "subtitle", "codec_name": codec, "tags": tags, "disposition": d}


@pytest.mark.parametrize(
    ("tag", "title", "expected"),
    [
        ("zho", None, "zh"),
        ("chi", None, "zh"),
        ("eng", None, "en"),
        ("ger", None, "de"),
        ("fre", None, "fr"),
        ("chi", "简体中文", "zh-Hans"),
        ("zho", "Traditional Chinese", "zh-Hant"),
        ("zh-Hant", None, "zh-Hant"),
        ("yue", None, "yue"),
        ("und", None, None),
        ("qaa", None, None),
        ("xyz", None, None),
        (None, None, None),
    ],
)
def test_container_language_tags_become_bcp47(
    tag: str | None, title: str | None, expected: str | None
) -> None:
    assert bcp47_from_media_tag(tag, title=title) == expected


def test_two_tagged_audio_tracks_keep_their_own_languages_and_roles() -> None:
    probe = _probe(_audio("zho"), _audio("eng"), _subtitle("subrip", "chi", "简体中文", forced=1))
    tracks, warnings = detect_tracks(probe, [], original_language="zh")
    assert [(t.kind, t.language, t.role, t.is_default) for t in tracks] == [
        (TrackKind.audio, "zh", TrackRole.original, True),
        (TrackKind.audio, "en", TrackRole.dub, False),
        (TrackKind.subtitle, "zh-Hans", None, False),
    ]
    assert tracks[2].forced
    assert warnings == []


def test_untagged_audio_gets_the_title_language_and_a_warning() -> None:
    tracks, warnings = detect_tracks(_probe(_audio(None)), [], original_language="ko")
    assert tracks[0].language == "ko"
    assert tracks[0].detected_language is None
    assert [w.code for w in warnings] == ["audio_language_untagged"]


def test_bitmap_subtitles_are_listed_with_a_warning_not_published() -> None:
    probe = _probe(_audio("eng"), _subtitle("hdmv_pgs_subtitle", "fre"))
    tracks, warnings = detect_tracks(probe, [], original_language="en")
    pgs = tracks[-1]
    assert (pgs.kind, pgs.language, pgs.status) == (
        TrackKind.subtitle,
        "fr",
        TrackStatus.unsupported,
    )
    assert [w.code for w in warnings] == ["subtitle_needs_ocr"]


def test_dispositions_and_sdh_and_sidecars() -> None:
    probe = _probe(
        _audio("eng", comment=1, default=1),
        _audio("eng", visual_impaired=1),
        _audio("eng"),
        _subtitle("ass", "eng", "English SDH", hearing_impaired=1),
    )
    sidecars = [
        SidecarInfo("a1", "audio", "de", "Deutsch"),
        SidecarInfo("s1", "subtitle", "fr", None),
    ]
    tracks, _ = detect_tracks(probe, sidecars, original_language="en")
    audio = [t for t in tracks if t.kind is TrackKind.audio]
    assert [t.role for t in audio] == [
        TrackRole.commentary,
        TrackRole.description,
        TrackRole.original,
        TrackRole.dub,
    ]
    # A commentary is never the default, whatever its disposition says.
    assert [t.is_default for t in audio] == [False, False, True, False]
    assert audio[3].source == "asset:a1"
    subs = [t for t in tracks if t.kind is TrackKind.subtitle]
    assert [(t.language, t.sdh) for t in subs] == [("fr", False), ("en", True)]


def test_default_channel_map_groups_mono_streams() -> None:
    mono = _audio(None, channels=1)
    assert default_channel_map(_probe(mono, mono).audio) == [[1, 2]]
    assert default_channel_map(_probe(*[mono] * 4).audio) == [[1, 2], [3, 4]]
    assert default_channel_map(_probe(*[mono] * 6).audio) == [[1, 2, 3, 4, 5, 6]]
    assert default_channel_map(_probe(*[mono] * 8).audio) == [[1, 2, 3, 4, 5, 6], [7, 8]]
    # Streams that are already tracks stay tracks.
    assert default_channel_map(_probe(_audio("eng"), mono).audio) == [[1], [2]]
    groups, _ = plan_audio_groups(_probe(*[mono] * 8), None)
    assert [(g.layout, g.channels, g.source) for g in groups] == [
        ("5.1", 6, "streams:1+2+3+4+5+6"),
        ("stereo", 2, "streams:7+8"),
    ]


def test_a_studio_channel_map_is_checked_against_the_master() -> None:
    mono = _audio(None, channels=1)
    four = _probe(*[mono] * 4)
    groups, warnings = plan_audio_groups(four, [[1, 2]])
    assert [g.source for g in groups] == ["streams:1+2"]
    assert [w.code for w in warnings] == ["audio_not_in_channel_map"] * 2
    bad_maps: list[list[list[int]]] = [[[1, 5]], [[1, 1]], [[1, 2, 3]], [[]]]
    for bad in bad_maps:
        with pytest.raises(InvalidInput) as info:
            plan_audio_groups(four, bad)
        assert info.value.code == "channel_map_invalid"
    with pytest.raises(InvalidInput):
        plan_audio_groups(_probe(_audio("eng"), mono), [[1, 2]])  # stereo is not a channel


def test_relabel_master_changes_only_the_named_renditions() -> None:
    master = (
        "#EXTM3U\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,URI="audio_0_zh.m3u8",GROUP-ID="audio",LANGUAGE="zh",'
        'NAME="Chinese",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2"\n'
        '#EXT-X-MEDIA:TYPE=AUDIO,URI="audio_1_en.m3u8",GROUP-ID="audio",LANGUAGE="en",'
        'NAME="English",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO="audio"\nvideo_270p.m3u8\n'
    )
    out = relabel_master(
        master,
        {
            "audio_1_en.m3u8": RenditionLabel(
                "en", 'Director\'s "cut", commentary', role=AudioRole.commentary
            )
        },
    )
    before, after = m3u8.loads(master), m3u8.loads(out)
    assert vars(after.media[0]) == vars(before.media[0])
    relabelled = after.media[1]
    assert relabelled.name == "Director's 'cut', commentary"  # no quote inside a quoted string
    assert relabelled.characteristics == "public.auxiliary-content"
    assert (relabelled.default, relabelled.autoselect) == ("NO", "NO")
    assert (relabelled.uri, relabelled.group_id, relabelled.channels) == (
        "audio_1_en.m3u8",
        "audio",
        "2",
    )
    assert [str(v) for v in after.playlists] == [str(v) for v in before.playlists]


def test_relabel_master_keeps_attributes_it_does_not_change() -> None:
    """VIDEO and CLOSED-CAPTIONS groups, STABLE-* ids, ASSOC-LANGUAGE and I-frame variants
    survive a relabel (the hand-written attribute table this replaced dropped them)."""
    master = (
        "#EXTM3U\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,URI="a.m3u8",GROUP-ID="aud",LANGUAGE="en",NAME="English",'
        'ASSOC-LANGUAGE="en-GB",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="6",'
        'STABLE-RENDITION-ID="audio-en"\n'
        '#EXT-X-MEDIA:TYPE=VIDEO,URI="angle2.m3u8",GROUP-ID="vid",NAME="Angle 2",'
        "DEFAULT=NO,AUTOSELECT=NO\n"
        '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC",LANGUAGE="en",'
        'INSTREAM-ID="CC1",DEFAULT=NO,AUTOSELECT=YES\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=800000,CODECS="avc1.64001f,'
        'mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=23.976,AUDIO="aud",VIDEO="vid",'
        'CLOSED-CAPTIONS="cc",STABLE-VARIANT-ID="v720",VIDEO-RANGE=SDR,HDCP-LEVEL=TYPE-0\n'
        "video_720p.m3u8\n"
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=40000,CODECS="avc1.64001f",RESOLUTION=1280x720,'
        'STABLE-VARIANT-ID="v720-trick",URI="video_720p_iframes.m3u8"\n'
    )
    out = m3u8.loads(
        relabel_master(master, {"a.m3u8": RenditionLabel("en-US", "English (US)", default=True)})
    )
    audio, video, captions = out.media
    assert (audio.language, audio.name, audio.assoc_language) == ("en-US", "English (US)", "en-GB")
    assert (audio.channels, audio.stable_rendition_id) == ("6", "audio-en")
    assert (video.type, video.name, video.uri) == ("VIDEO", "Angle 2", "angle2.m3u8")
    assert (captions.type, captions.instream_id) == ("CLOSED-CAPTIONS", "CC1")
    info = out.playlists[0].stream_info
    assert (info.bandwidth, info.average_bandwidth) == (900000, 800000)
    assert (info.codecs, info.resolution) == ("avc1.64001f,mp4a.40.2", (1280, 720))
    assert info.frame_rate == pytest.approx(23.976)
    assert (info.stable_variant_id, info.video_range, info.hdcp_level) == (
        "v720",
        "SDR",
        "TYPE-0",
    )
    assert info.closed_captions == '"cc"'  # a group id, quoted as written
    assert {m.group_id for m in out.playlists[0].media} == {"aud", "vid"}
    trick = out.iframe_playlists[0]
    assert trick.uri == "video_720p_iframes.m3u8"
    assert trick.iframe_stream_info.stable_variant_id == "v720-trick"
    assert out.is_independent_segments


def test_imf_composition_playlist_is_refused_with_a_reason(tmp_path: Path) -> None:
    cpl = tmp_path / "CPL_film.xml"
    cpl.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<CompositionPlaylist xmlns="http://www.smpte-ra.org/schemas/2067-3/2016">\n'
        "<Id>urn:uuid:8e097bb0-cff7-4969-a692-bad47bfb528f</Id></CompositionPlaylist>\n"
    )
    with pytest.raises(InvalidInput) as info:
        check_master(cpl)
    assert info.value.code == "imf_not_supported"
    assert "MXF" in info.value.detail


def test_random_bytes_are_unreadable(tmp_path: Path) -> None:
    import random

    noise = tmp_path / "film.mpg"
    noise.write_bytes(random.Random(7).randbytes(256 * 1024))
    with pytest.raises(InvalidInput) as info:
        check_master(noise)
    assert info.value.code == "unreadable_media"
