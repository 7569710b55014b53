"""Per-session DASH manifests: the packaged MPD with a ``BaseURL`` that puts every segment
under this session's grant.

The packaged MPD (cbcs profile, transcoding/cmaf.py) names its segments relative to the
release folder (``video_540p/p0_seg_$Number%05d$.m4s``). A viewer's copy gets one
``BaseURL`` in front of its first ``Period``: the session's media route (``api`` delivery)
or the CDN folder (``cloudfront``), so templates resolve to URLs the grant opens. Players
send the grant as a header (Shaka Player's request filter). Packaged MPDs never change, so
each is split once around the insertion point and kept (an LRU by storage key).

Watermarked renditions (drm/watermark.py) are listed segment by segment in the packaged
MPD (a ``SegmentList`` of ``SegmentURL``s, transcoding/cmaf.py: a template cannot pick a
folder per segment); a session's copy names, for each, the variant its codeword picks.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from xml.sax.saxutils import escape

from cachetools import LRUCache

from core.errors import NotFound

MANIFEST = "manifest.mpd"
_parts: LRUCache[str, tuple[str, str]] = LRUCache(maxsize=512)
_lock = threading.Lock()
_SEGMENT_URL = re.compile(r'(<SegmentURL media=")([^"]+)(")')


def split(text: str) -> tuple[str, str]:
    at = text.find("<Period")
    if at < 0:
        raise ValueError("not a packaged MPD: no Period")
    return text[:at], text[at:]


def cached(storage_key: str) -> tuple[str, str] | None:
    with _lock:
        return _parts.get(storage_key)


def load(storage_key: str, read: Callable[[str], bytes]) -> tuple[str, str]:
    """The MPD split for rendering (blocking on a miss: reads storage)."""
    hit = cached(storage_key)
    if hit is not None:
        return hit
    try:
        parts = split(read(storage_key).decode("utf-8"))
    except NotFound:
        raise NotFound("this release has no DASH manifest", code="manifest_not_found") from None
    with _lock:
        _parts[storage_key] = parts
    return parts


def render(
    parts: tuple[str, str], media_base: str, media: Callable[[str], str] | None = None
) -> str:
    """The session's MPD; ``media`` picks the file it gets for each listed segment (its
    own watermark variant), if the release has any."""
    head, tail = parts
    if media is not None:
        tail = _SEGMENT_URL.sub(lambda m: m.group(1) + media(m.group(2)) + m.group(3), tail)
    return f"{head}<BaseURL>{escape(media_base)}</BaseURL>\n  {tail}"


def clear() -> None:
    with _lock:
        _parts.clear()
