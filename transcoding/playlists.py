"""HLS playlists at packaging time, read and written through the ``m3u8`` library: parse,
change the objects, dump. No playlist is built or edited as text in transcoding/ (a test in
tests/test_house_lints.py fails if one is).

Two things the library does not do the way our playlists need, handled here once:

* A media segment may carry several ``EXT-X-KEY`` lines (the cbcs profile writes one per
  DRM system's KEYFORMAT); the library keeps one key per segment.
* ``EXT-X-MAP`` must come *before* the key lines of a key period: RFC 8216 (4.3.2.4) applies
  a key to every ``EXT-X-MAP`` that follows it, so a key written first would tell players
  to decrypt the clear init segment. The library writes the key first.

:class:`KeyedSegment` carries a list of keys and writes the map first; :func:`dump` writes a
playlist whose segments are (or are turned into) keyed segments.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import cast

import m3u8

# EXTINF with three decimals, as Shaka Packager writes it: durations keep their precision.
_INFSPEC = "milliseconds"


class KeyedSegment(m3u8.Segment):
    """A media segment with its key lines (any number, one per KEYFORMAT) written after the
    segment's ``EXT-X-MAP``, and only where they change."""

    keys: list[m3u8.Key]

    @classmethod
    def of(cls, segment: m3u8.Segment, keys: Iterable[m3u8.Key] | None = None) -> KeyedSegment:
        made = cast(KeyedSegment, copy.copy(segment))
        made.__class__ = cls
        made.keys = list(keys) if keys is not None else ([segment.key] if segment.key else [])
        return made

    def dumps(  # type: ignore[override]  # the stub says PartialSegment; it is a Segment
        self,
        last_segment: m3u8.Segment | None,
        timespec: str = "milliseconds",
        infspec: str = "auto",
    ) -> str:
        head: list[str] = []
        previous_map = last_segment.init_section if last_segment is not None else None
        if self.init_section is not None and (
            last_segment is None or self.init_section != previous_map
        ):
            head.append(str(self.init_section))
        now = _key_lines(self.keys)
        before = _key_lines(getattr(last_segment, "keys", None) or [])
        if now != before:
            # A clear stretch after an encrypted one must say so, or the last key applies.
            head += now or [str(m3u8.Key(method="NONE", base_uri=""))]
        # The library writes the rest (EXTINF, BYTERANGE, URI...) from a copy without the
        # map and the key, which it would otherwise write in its own order.
        rest = copy.copy(self)
        rest.key = None
        rest.init_section = None
        body: str = m3u8.Segment.dumps(rest, None, timespec, infspec)
        return "".join(f"{line}\n" for line in head) + body


def _key_lines(keys: Sequence[m3u8.Key]) -> list[str]:
    # Compared as written: the library's Key equality ignores KEYFORMAT.
    return [str(key) for key in keys]


def load(path: Path) -> m3u8.M3U8:
    return m3u8.load(str(path))


def loads(text: str) -> m3u8.M3U8:
    return m3u8.loads(text)


def dumps(playlist: m3u8.M3U8) -> str:
    """The playlist as text; media segments written as :class:`KeyedSegment`."""
    for n, segment in enumerate(playlist.segments):
        if not isinstance(segment, KeyedSegment):
            playlist.segments[n] = KeyedSegment.of(segment)
    text: str = playlist.dumps(infspec=_INFSPEC)
    return text


def dump(playlist: m3u8.M3U8, path: Path) -> None:
    path.write_text(dumps(playlist), encoding="utf-8")


def media_playlist(target_duration: int, segments: Iterable[m3u8.Segment]) -> m3u8.M3U8:
    """A new VOD media playlist (version 6: EXT-X-MAP in a playlist without I-frames-only)."""
    playlist = m3u8.M3U8()
    playlist.version = "6"
    playlist.target_duration = target_duration
    playlist.playlist_type = "vod"
    playlist.is_endlist = True
    for segment in segments:
        playlist.add_segment(segment)
    return playlist


def identity_key(method: str, uri: str) -> m3u8.Key:
    """A key line whose key a player fetches from ``uri`` as is (KEYFORMAT "identity")."""
    return m3u8.Key(method=method, base_uri="", uri=uri, keyformat="identity")


def uri_of(item: m3u8.Segment | m3u8.Media | m3u8.Playlist) -> str:
    """The URI of a segment, rendition or variant (ours always have one)."""
    if not item.uri:
        raise ValueError(f"an entry without a URI: {item}")
    return str(item.uri)
