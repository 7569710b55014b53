"""Content keys: create, read (unwrapped, cached briefly), and re-wrap after KEK rotation."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.db import read_only, utcnow
from core.errors import NotFound
from core.settings import get_settings
from drm import repository
from drm.envelope import KeyWrapper, make_wrapper
from drm.models import ContentKey

# Unwrapped keys stay in process memory for a short while: the key route is a hot path and
# a KMS Decrypt per request would cost a network round trip and money.
_CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class PlainKey:
    key_id: str
    key: bytes


_cache: dict[str, tuple[float, bytes, str]] = {}  # key id -> (until, key, release id)
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


def create_content_key(session: Session, release_id: str) -> PlainKey:
    key = os.urandom(16)
    key_id = os.urandom(16).hex()
    wrapped, ref = wrapper().wrap(key_id, key)
    session.add(ContentKey(release_id=release_id, key_id=key_id, wrapped_key=wrapped, kek_ref=ref))
    session.flush()
    return PlainKey(key_id, key)


def _cached(session: Session | None, key_id: str) -> tuple[bytes, str]:
    """The key and its release, from memory or else from the database (``session``, or a
    read-only one of its own when None)."""
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key_id)
    if hit and hit[0] > now:
        return hit[1], hit[2]
    if session is None:
        with read_only() as own:
            return _load(own, key_id, now)
    return _load(session, key_id, now)


def _load(session: Session, key_id: str, now: float) -> tuple[bytes, str]:
    row = repository.get_by_key_id(session, key_id)
    if row is None:
        raise NotFound("no such key", code="key_not_found")
    plain = wrapper().unwrap(row.key_id, row.wrapped_key, row.kek_ref)
    with _lock:
        _cache[key_id] = (now + _CACHE_SECONDS, plain, row.release_id)
    return plain, row.release_id


def content_key(session: Session, key_id: str) -> PlainKey:
    return PlainKey(key_id, _cached(session, key_id)[0])


def key_for_release(key_id: str, release_id: str) -> bytes:
    """The 16 key bytes, only if ``key_id`` is one of ``release_id``'s keys: a session for
    one film can never be used to fetch another film's key. Reads the database (its own
    read-only session) only when the key is not in memory."""
    plain, owner = _cached(None, key_id.lower())
    if owner != release_id:
        raise NotFound("no such key", code="key_not_found")
    return plain


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
    "content_key",
    "create_content_key",
    "key_for_release",
    "release_key",
    "rotate_kek",
]
