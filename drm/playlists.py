"""Per-session playlists: the packager's HLS rewritten with this session's URLs.

The packaged playlists in storage carry relative segment names and a key URI of the form
``…/v1/playback/keys/<key id>``. A viewer never sees those: every playlist is rewritten per
request so that

* variant, audio, subtitle and I-frame playlists point at this session's playlist route;
* every segment and init segment (``EXT-X-MAP``) is a media URL under the session's
  grant (:mod:`drm.urls`);
* every ``EXT-X-KEY`` URI points at this session's key route, which serves only the keys
  the grant opens. Key rotation (one key per key period) is kept as is.

Packaged playlists are immutable (a new transcode writes under a new prefix), so each is
parsed once into a template and cached (an LRU by storage key: the only state here, and it
never goes stale); rendering is string joining.
"""

from __future__ import annotations

import posixpath
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from cachetools import LRUCache

from core.errors import NotFound

KEY_ID = re.compile(r"/keys/([0-9a-fA-F]{32})(?:[/?#]|$)")
_URI_ATTR = re.compile(r'URI="([^"]*)"')

# Parts of a template: plain text, or something to fill in per session.
_TEXT, _SEGMENT, _PLAYLIST, _KEY = 0, 1, 2, 3
Part = tuple[int, str, str]  # (kind, value, suffix text after the URL)


@dataclass(frozen=True)
class Template:
    parts: tuple[Part, ...]
    key_ids: frozenset[str]
    playlists: frozenset[str]  # playlists this one refers to (rel paths)
    segments: int
    folders: frozenset[str]  # folders its segments live in (rel paths)


def resolve(base_dir: str, uri: str) -> str:
    """A URI from a packaged playlist as a path relative to the release folder. Anything
    absolute, with a scheme, or escaping the folder is refused (our packager writes none)."""
    if "://" in uri or uri.startswith("/") or "?" in uri or "#" in uri:
        raise ValueError(f"unexpected URI in a packaged playlist: {uri!r}")
    path = (
        posixpath.normpath(posixpath.join(base_dir, uri)) if base_dir else posixpath.normpath(uri)
    )
    if path.startswith("..") or path.startswith("/") or path == ".":
        raise ValueError(f"URI escapes the release folder: {uri!r}")
    return path


_KEYFORMAT = re.compile(r'KEYFORMAT="([^"]*)"')


def _drm_signalling(line: str) -> bool:
    found = _KEYFORMAT.search(line)
    return found is not None and found.group(1) != "identity"


def compile_playlist(text: str, rel_path: str) -> Template:
    """Parse a packaged playlist (master or media) found at ``rel_path`` in the release."""
    base_dir = posixpath.dirname(rel_path)
    parts: list[Part] = []
    key_ids: set[str] = set()
    playlists: set[str] = set()
    segments = 0
    folders: set[str] = set()
    buffer: list[str] = []
    next_is_playlist = False

    def flush() -> None:
        if buffer:
            parts.append((_TEXT, "".join(buffer), ""))
            buffer.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            match = _URI_ATTR.search(line)
            if match and line.startswith("#EXT-X-KEY:") and _drm_signalling(line):
                # A DRM system's key line (FairPlay skd://, PlayReady or Widevine data:
                # URIs): the player asks its CDM, which asks the license proxy. As is.
                buffer.append(line + "\n")
            elif match and line.startswith("#EXT-X-KEY:"):
                found = KEY_ID.search(match.group(1))
                if found is None:
                    raise ValueError(f"key URI not served by the key route: {match.group(1)!r}")
                key_id = found.group(1).lower()
                key_ids.add(key_id)
                buffer.append(line[: match.start(1)])
                flush()
                parts.append((_KEY, key_id, line[match.end(1) :] + "\n"))
            elif match and line.startswith("#EXT-X-MAP:"):
                buffer.append(line[: match.start(1)])
                flush()
                target = resolve(base_dir, match.group(1))
                folders.add(posixpath.dirname(target))
                parts.append((_SEGMENT, target, line[match.end(1) :] + "\n"))
            elif match and line.startswith(("#EXT-X-MEDIA:", "#EXT-X-I-FRAME-STREAM-INF:")):
                target = resolve(base_dir, match.group(1))
                playlists.add(target)
                buffer.append(line[: match.start(1)])
                flush()
                parts.append((_PLAYLIST, target, line[match.end(1) :] + "\n"))
            else:
                buffer.append(line + "\n")
            next_is_playlist = line.startswith("#EXT-X-STREAM-INF:") or (
                next_is_playlist and not line.startswith("#EXT")
            )
            continue
        flush()
        target = resolve(base_dir, line)
        if next_is_playlist or target.endswith(".m3u8"):
            playlists.add(target)
            parts.append((_PLAYLIST, target, "\n"))
        else:
            segments += 1
            folders.add(posixpath.dirname(target))
            parts.append((_SEGMENT, target, "\n"))
        next_is_playlist = False
    flush()
    return Template(
        tuple(parts), frozenset(key_ids), frozenset(playlists), segments, frozenset(folders)
    )


@dataclass(frozen=True)
class SessionUrls:
    """How this session's URLs look; ``token_query`` is appended to playlist and key URLs
    when the client authenticates by query string (players that cannot set headers)."""

    session_id: str
    sign_media: Callable[[str], str]
    token_query: str = ""

    def playlist(self, rel_path: str) -> str:
        return (
            f"/v1/playback/sessions/{self.session_id}/playlists/{quote(rel_path)}{self.token_query}"
        )

    def key(self, key_id: str) -> str:
        return f"/v1/playback/sessions/{self.session_id}/keys/{key_id}{self.token_query}"


def render(template: Template, urls: SessionUrls) -> str:
    sign = urls.sign_media
    out: list[str] = []
    append = out.append
    for kind, value, suffix in template.parts:
        if kind == _TEXT:
            append(value)
            continue
        if kind == _SEGMENT:
            append(sign(value))
        elif kind == _PLAYLIST:
            append(urls.playlist(value))
        else:
            append(urls.key(value))
        append(suffix)
    return "".join(out)


class TemplateCache:
    """Compiled templates by storage key (immutable objects), least recently used out."""

    def __init__(self, size: int = 2048) -> None:
        self._items: LRUCache[str, Template] = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def cached(self, storage_key: str) -> Template | None:
        """The template if it is in memory (no I/O: safe on the event loop)."""
        with self._lock:
            return self._items.get(storage_key)

    def get(self, storage_key: str, rel_path: str, load: Callable[[str], bytes]) -> Template:
        """The template, reading and compiling the playlist on a miss (blocking I/O)."""
        hit = self.cached(storage_key)
        if hit is not None:
            return hit
        try:
            text = load(storage_key).decode("utf-8")
        except NotFound:
            raise NotFound("no such playlist in this release", code="playlist_not_found") from None
        template = compile_playlist(text, rel_path)
        with self._lock:
            self._items[storage_key] = template
        return template

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


templates = TemplateCache()
