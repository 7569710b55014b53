"""Artwork (posters) uploaded by studios: checked by their first bytes, kept in object storage.

A studio sends the image itself; the declared Content-Type must be one we accept *and* agree
with the file's magic bytes, so a renamed HTML or SVG file (script in an image's clothing)
never lands in storage as a poster. The stored key is content-addressed (a hash of the
bytes), so a new poster never overwrites one a CDN may still cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy.orm import Session

from catalog.locales import canonical_locale
from catalog.models import Title, TitleLocalization
from catalog.service import artwork_prefix
from core.errors import AppError, NotFound
from core.storage import get_store

MAX_ARTWORK_BYTES = 10 * 1024 * 1024

# media type -> (file extension, magic-byte test)
_FORMATS: dict[str, tuple[str, bytes, bytes | None]] = {
    "image/jpeg": ("jpg", b"\xff\xd8\xff", None),
    "image/png": ("png", b"\x89PNG\r\n\x1a\n", None),
    # RIFF....WEBP: the four bytes in between are the file's length.
    "image/webp": ("webp", b"RIFF", b"WEBP"),
}
ACCEPTED_TYPES = tuple(_FORMATS)


class ArtworkTooLarge(AppError):
    status: ClassVar[int] = 413
    code: ClassVar[str] = "artwork_too_large"
    title: ClassVar[str] = "Payload too large"


class ArtworkTypeUnsupported(AppError):
    status: ClassVar[int] = 415
    code: ClassVar[str] = "artwork_type_unsupported"
    title: ClassVar[str] = "Unsupported media type"


@dataclass(frozen=True)
class Artwork:
    key: str
    content_type: str
    data: bytes


def media_type(content_type: str | None, data: bytes) -> str:
    """The accepted media type of ``data``, which must match what the client declared."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in _FORMATS:
        raise ArtworkTypeUnsupported(
            f"send a JPEG, PNG or WebP image (Content-Type {', '.join(ACCEPTED_TYPES)})"
        )
    _, magic, marker = _FORMATS[declared]
    if not data.startswith(magic) or (marker is not None and data[8:12] != marker):
        raise ArtworkTypeUnsupported(f"the file is not a {declared} image")
    return declared


def _localization(title: Title, locale: str) -> TitleLocalization:
    tag = canonical_locale(locale)
    row = next((loc for loc in title.localizations if loc.locale == tag), None)
    if row is None:
        raise NotFound(
            f"no {tag} metadata for this title: set its name first",
            code="localization_not_found",
        )
    return row


def store_artwork(
    session: Session, title: Title, locale: str, data: bytes, content_type: str | None
) -> TitleLocalization:
    """Check the image, store it and make it the localization's artwork (replacing a URL)."""
    if len(data) > MAX_ARTWORK_BYTES:
        raise ArtworkTooLarge(f"artwork may be at most {MAX_ARTWORK_BYTES // 1_000_000} MB")
    kind = media_type(content_type, data)
    row = _localization(title, locale)
    extension = _FORMATS[kind][0]
    digest = hashlib.sha256(data).hexdigest()[:32]
    key = f"{_key_prefix(title)}{row.locale}-{digest}.{extension}"
    get_store().put_bytes(key, data, content_type=kind)
    row.artwork_key = key
    row.artwork_url = None
    session.flush()
    return row


def _key_prefix(title: Title) -> str:
    return artwork_prefix(title.id)


def artwork(title: Title, locale: str) -> Artwork:
    """The stored artwork of one localization (uploaded ones only; a URL is fetched by clients).

    Only keys under this title's artwork prefix are read: a localization's ``artwork_key``
    can also be set by hand, and must not become a way to read any object in storage."""
    row = _localization(title, locale)
    if row.artwork_key is None or not row.artwork_key.startswith(_key_prefix(title)):
        raise NotFound("this localization has no uploaded artwork", code="artwork_not_found")
    data = get_store().get_bytes(row.artwork_key)
    kind = next((t for t, (ext, _, _) in _FORMATS.items() if row.artwork_key.endswith(ext)), None)
    return Artwork(row.artwork_key, kind or "application/octet-stream", data)
