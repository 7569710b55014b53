"""Playlists written through the m3u8 library keep the order RFC 8216 gives meaning to:
EXT-X-MAP, then the key lines of its key period, then the segments."""

from __future__ import annotations

import m3u8

from transcoding import playlists


def _segment(uri: str, init: str) -> m3u8.Segment:
    return m3u8.Segment(uri=uri, duration=4.0, init_section={"uri": init})


def _tags(text: str) -> list[str]:
    return [line.split(":", 1)[0] for line in text.splitlines() if line.startswith("#EXT")]


def test_each_key_period_writes_its_map_then_all_its_key_lines() -> None:
    fairplay = m3u8.Key("SAMPLE-AES", "", "skd://a", keyformat="com.apple.streamingkeydelivery")
    widevine = m3u8.Key("SAMPLE-AES", "", "data:a", keyformat="urn:uuid:edef8ba9")
    second = m3u8.Key("SAMPLE-AES", "", "skd://b", keyformat="com.apple.streamingkeydelivery")
    segments = [
        playlists.KeyedSegment.of(_segment("p0_1.m4s", "p0_init.mp4"), [fairplay, widevine]),
        playlists.KeyedSegment.of(_segment("p0_2.m4s", "p0_init.mp4"), [fairplay, widevine]),
        playlists.KeyedSegment.of(_segment("p1_1.m4s", "p1_init.mp4"), [second]),
        playlists.KeyedSegment.of(_segment("clear.m4s", "p1_init.mp4"), []),
    ]
    text = playlists.dumps(playlists.media_playlist(4, segments))
    assert _tags(text) == [
        "#EXTM3U",
        "#EXT-X-VERSION",
        "#EXT-X-TARGETDURATION",
        "#EXT-X-PLAYLIST-TYPE",
        "#EXT-X-MAP",
        "#EXT-X-KEY",
        "#EXT-X-KEY",
        "#EXTINF",
        "#EXTINF",
        "#EXT-X-MAP",
        "#EXT-X-KEY",
        "#EXTINF",
        "#EXT-X-KEY",  # METHOD=NONE: the last segment is clear
        "#EXTINF",
        "#EXT-X-ENDLIST",
    ]
    assert "#EXTINF:4.000," in text
    parsed = m3u8.loads(text)
    assert [s.uri for s in parsed.segments] == ["p0_1.m4s", "p0_2.m4s", "p1_1.m4s", "clear.m4s"]
    assert [s.init_section.uri for s in parsed.segments if s.init_section] == [
        "p0_init.mp4",
        "p0_init.mp4",
        "p1_init.mp4",
        "p1_init.mp4",
    ]
    assert [k.keyformat for k in parsed.keys if k] == [
        "com.apple.streamingkeydelivery",
        "urn:uuid:edef8ba9",
        "com.apple.streamingkeydelivery",
        None,
    ]
    assert parsed.segments[-1].key is not None
    assert parsed.segments[-1].key.method == "NONE"


def test_a_parsed_playlist_is_written_with_its_map_before_its_key() -> None:
    """The library alone would write the key first, applying it to the init segment."""
    source = (
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        '#EXT-X-MAP:URI="init.mp4"\n#EXT-X-KEY:METHOD=AES-128,URI="https://k/1"\n'
        "#EXTINF:4.000,\nseg_1.m4s\n#EXT-X-ENDLIST\n"
    )
    assert _tags(m3u8.loads(source).dumps())[4:6] == ["#EXT-X-KEY", "#EXT-X-MAP"]
    assert _tags(playlists.dumps(playlists.loads(source)))[4:6] == ["#EXT-X-MAP", "#EXT-X-KEY"]
