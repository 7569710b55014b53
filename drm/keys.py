"""Content keys: create, read (unwrapped, cached by key id), and re-wrap after KEK rotation.

A content key never changes once created (KEK rotation changes only its envelope), so the
unwrapped bytes are cached by key id with no freshness rule: who may have a key is decided
by the playback grant, never by this cache."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from cachetools import TTLCache
from sqlalchemy.orm import Session

from core.db import read_only, utcnow
from core.errors import NotFound
from core.settings import get_settings
from drm import repository
from drm.envelope import KeyWrapper, make_wrapper
from drm.models import ContentKey

# The key route is a hot path and a KMS Decrypt per request would cost a network round trip
# and money. The TTL only bounds how long plaintext keys sit in memory; it is not freshness.
_CACHE_SECONDS = 3600.0
_CACHE_ENTRIES = 100_000


@dataclass(frozen=True)
class PlainKey:
    key_id: str
    key: bytes


_cache: TTLCache[str, tuple[bytes, str]] = TTLCache(_CACHE_ENTRIES, _CACHE_SECONDS)
_lock = threading.Lock()
_wrapper: KeyWrapper | None = None


def wrapper() -> KeyWrapper:
    global _wrapper
    if _wrapper is None:
        _wrapper = make_wrapper(get_settings())
    return _wrapper


def reset() -> None:
    """Forget the cached wrapper and keys (settings changed, or after a rotation in tests)."""
    global _wrapper
    _wrapper = None
    with _lock:
        _cache.clear()


def create_content_key(session: Session, release_id: str, key_id: str | None = None) -> PlainKey:
    """A new random key, envelope-encrypted at rest; its id is random unless an external
    packager chose it (the key exchange, drm/exchange.py)."""
    key = os.urandom(16)
    key_id = (key_id or os.urandom(16).hex()).lower()
    wrapped, ref = wrapper().wrap(key_id, key)
    session.add(ContentKey(release_id=release_id, key_id=key_id, wrapped_key=wrapped, kek_ref=ref))
    session.flush()
    return PlainKey(key_id, key)


def cached_key(key_id: str) -> tuple[bytes, str] | None:
    """The key and its release if they are in memory (no I/O: safe on the event loop)."""
    with _lock:
        return _cache.get(key_id.lower())


def load_key(key_id: str, session: Session | None = None) -> tuple[bytes, str]:
    """The key and its release, from memory or else from the database and the key wrapper
    (blocking: a database read, and a KMS call in production)."""
    key_id = key_id.lower()
    hit = cached_key(key_id)
    if hit is not None:
        return hit
    if session is None:
        with read_only() as own:
            return _load(own, key_id)
    return _load(session, key_id)


def _load(session: Session, key_id: str) -> tuple[bytes, str]:
    row = repository.get_by_key_id(session, key_id)
    if row is None:
        raise NotFound("no such key", code="key_not_found")
    plain = wrapper().unwrap(row.key_id, row.wrapped_key, row.kek_ref)
    with _lock:
        _cache[key_id] = (plain, row.release_id)
    return plain, row.release_id


def content_key(session: Session, key_id: str) -> PlainKey:
    return PlainKey(key_id, load_key(key_id, session)[0])


def release_key(session: Session, release_id: str) -> PlainKey:
    row = repository.get_for_release(session, release_id)
    if row is None:
        raise NotFound("release has no content key", code="key_not_found")
    return content_key(session, row.key_id)


def rewrap_all(session: Session, batch: int = 500) -> int:
    """Re-wrap every content key under the current key-encryption key. Segments are not
    touched: only the envelope changes, so rotation needs no re-encoding."""
    target = wrapper().current_ref()
    done = 0
    while rows := repository.not_wrapped_by(session, target, batch):
        for row in rows:
            plain = wrapper().unwrap(row.key_id, row.wrapped_key, row.kek_ref)
            row.wrapped_key, row.kek_ref = wrapper().wrap(row.key_id, plain)
            row.rewrapped_at = utcnow()
            done += 1
        session.flush()
    return done


def rotate_kek(session: Session) -> tuple[str, int]:
    """New key-encryption key, then re-wrap all content keys under it."""
    ref = wrapper().rotate()
    return ref, rewrap_all(session)


__all__ = [
    "ContentKey",
    "PlainKey",
    "cached_key",
    "content_key",
    "create_content_key",
    "load_key",
    "release_key",
    "rotate_kek",
]
