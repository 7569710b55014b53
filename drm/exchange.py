"""Key exchange with external packagers, encoders and DRM vendors: CPIX 2.3 documents, and a
SPEKE v2-compatible key endpoint.

A SPEKE v2 request is a CPIX document naming the content (``contentId``: one of our release
ids), the key ids the encryptor chose, the DRM systems it wants signalled, and its key
periods and usage rules. The answer is the same document with each key's value and each
system's signalling filled in. Keys are created on first request and stored
envelope-encrypted like every content key (drm/keys.py); a retried request gets the same
keys back. A key id that belongs to another release is refused.

The caller is authenticated by ``key_exchange_token`` (a bearer credential, compared in
constant time); the API route does that before any of this runs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from catalog import service as catalog
from core.errors import Conflict
from drm import cpix, keys, repository

SPEKE_VERSION = "2.0"


class KeyIdTaken(Conflict):
    code = "key_id_taken"


def _key_for(session: Session, release_id: str, kid: str) -> bytes:
    row = repository.get_by_key_id(session, kid)
    if row is None:
        return keys.create_content_key(session, release_id, kid).key
    if row.release_id != release_id:
        raise KeyIdTaken("this key id belongs to another content id; choose a new one")
    return keys.content_key(session, kid).key


def answer_speke(session: Session, request: cpix.Document) -> cpix.Document:
    """The SPEKE v2 answer to a CPIX request (keys created or found, signalling added)."""
    release = catalog.get_release(session, request.content_id)
    systems = sorted({s.system_id for s in request.systems}) or sorted(cpix.SYSTEMS)
    unknown = [s for s in systems if s not in cpix.SYSTEMS]
    if unknown:
        raise cpix.InvalidCpix(f"unknown DRM system id {unknown[0]}")
    filled = tuple(
        cpix.ContentKey(k.kid, _key_for(session, release.id, k.kid), k.scheme) for k in request.keys
    )
    scheme = {k.kid: k.scheme for k in filled}
    signals = tuple(
        cpix.signal(k.kid, system, release.id, scheme[k.kid]) for k in filled for system in systems
    )
    return cpix.Document(
        content_id=release.id,
        keys=filled,
        periods=request.periods,
        rules=request.rules,
        systems=signals,
    )


def release_document(session: Session, release_id: str) -> cpix.Document:
    """A packaged release's keys as CPIX: key ``n`` encrypts key period ``n`` of every video
    and audio track; signalling for Widevine, PlayReady, FairPlay and ClearKey."""
    release = catalog.get_release(session, release_id)
    outputs: dict[str, Any] = release.outputs or {}
    key_ids = [str(k) for k in (outputs.get("key_periods") or {}).get("key_ids", [])]
    if not key_ids and release.content_key_id:
        key_ids = [release.content_key_id]
    return cpix.release_document(
        release.id, [(kid, keys.content_key(session, kid).key) for kid in key_ids]
    )
