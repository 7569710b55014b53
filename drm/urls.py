"""Signed, expiring media URLs for one playback session.

Three ways to hand out a segment, chosen by ``media_delivery``:

* ``api`` (embedded default): the API serves the object at
  ``/v1/playback/sessions/{sid}/media/{path}?exp=…&sig=…`` where ``sig`` is an HMAC over
  (session, expiry) under ``url_signing_key``: like the CloudFront policy below, one
  signature covers the session's release folder, so a 2-hour playlist costs one HMAC, not
  1,200 (measured: the playlist route was bound by per-segment HMACs). The media route maps
  the session to its release folder, keys cannot leave it (``check_key``), and segments are
  encrypted: the key route is where entitlement is enforced.
* ``s3``: an S3 presigned GET per object (``ObjectStore.presign_get``).
* ``cloudfront``: CloudFront signed URLs with a *custom policy* whose resource is the
  release's folder (``https://domain/hls/<release>/<attempt>/*``), signed once with
  botocore's ``CloudFrontSigner`` (RSA-SHA1, as CloudFront requires) and appended to every
  segment. One RSA signature per playlist instead of 1,200 keeps a long film's playlist
  cheap to sign; the policy still expires and is bound to one release.

Expiry is rounded up to a whole minute so that two playlists signed in the same minute are
byte-identical (cache-friendly for players that refetch) and the CloudFront signature can
be reused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from core.errors import Forbidden
from core.settings import MediaDelivery, Settings, get_settings
from core.storage import get_store

SIG_HEX = 32  # 128 bits of HMAC-SHA256: plenty against forgery, shorter playlists


class MediaSigner(Protocol):
    def __call__(self, rel_path: str) -> str:
        """The URL of ``<hls_prefix>/<rel_path>`` for this session."""
        ...


def expiry(now: float, ttl_seconds: int) -> int:
    return int(math.ceil((now + ttl_seconds) / 60.0) * 60)


# --- api: HMAC ---------------------------------------------------------------------------


def _mac(key: bytes, session_id: str, exp: int) -> str:
    message = f"media\x1f{session_id}\x1f{exp}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:SIG_HEX]


def media_path(session_id: str) -> str:
    return f"/v1/playback/sessions/{session_id}/media/"


def api_signer(session_id: str, *, settings: Settings, now: float | None = None) -> MediaSigner:
    key = settings.url_signing_key.get_secret_value().encode()
    exp = expiry(time.time() if now is None else now, settings.playback_url_ttl_seconds)
    base = media_path(session_id)

    query = f"?exp={exp}&sig={_mac(key, session_id, exp)}"

    def sign(rel_path: str) -> str:
        return f"{base}{rel_path}{query}"

    return sign


def verify_media_signature(
    session_id: str, exp: int, sig: str, *, now: float | None = None
) -> None:
    """Refuse a forged, altered or expired API-served media URL (403 with a code)."""
    key = get_settings().url_signing_key.get_secret_value().encode()
    expected = _mac(key, session_id, exp)
    # compare_digest refuses str with non-ASCII characters (TypeError): compare bytes.
    if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "surrogatepass")):
        raise Forbidden("this media URL is not signed by us", code="url_signature_invalid")
    if exp < (time.time() if now is None else now):
        raise Forbidden("this media URL has expired; fetch the playlist again", code="url_expired")


# --- s3: presigned -------------------------------------------------------------------------


def s3_signer(hls_prefix: str, *, settings: Settings) -> MediaSigner:
    store = get_store()
    ttl = settings.playback_url_ttl_seconds

    def sign(rel_path: str) -> str:
        url = store.presign_get(f"{hls_prefix}/{rel_path}", ttl)
        if url is None:
            raise RuntimeError("MEDIA_DELIVERY=s3 needs STORAGE_BACKEND=s3")
        return url

    return sign


# --- cloudfront: one custom policy per release folder ----------------------------------------


@lru_cache(maxsize=4)
def _rsa_signer(private_key_file: Path) -> Callable[[bytes], bytes]:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(private_key_file.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("CloudFront signing needs an RSA private key")

    def sign(message: bytes) -> bytes:
        # CloudFront verifies RSA-SHA1 signatures for trusted key groups.
        return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303

    return sign


@dataclass(frozen=True)
class _Policy:
    query: str
    exp: int


_policies: dict[tuple[str, str, int], _Policy] = {}
_policy_lock = threading.Lock()


def cloudfront_query(resource: str, exp: int, *, settings: Settings) -> str:
    """``Policy=…&Signature=…&Key-Pair-Id=…`` for every object under ``resource``."""
    from botocore.signers import CloudFrontSigner

    cache_key = (settings.cloudfront_key_pair_id, resource, exp)
    with _policy_lock:
        hit = _policies.get(cache_key)
    if hit is not None:
        return hit.query
    if settings.cloudfront_private_key_file is None or not settings.cloudfront_key_pair_id:
        raise RuntimeError(
            "MEDIA_DELIVERY=cloudfront needs CLOUDFRONT_KEY_PAIR_ID and CLOUDFRONT_PRIVATE_KEY_FILE"
        )
    signer = CloudFrontSigner(
        settings.cloudfront_key_pair_id, _rsa_signer(settings.cloudfront_private_key_file)
    )
    policy = json.dumps(
        {
            "Statement": [
                {"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": exp}}}
            ]
        },
        separators=(",", ":"),
    )
    signed = signer.generate_presigned_url(resource, policy=policy)
    query = signed.split("?", 1)[1]
    with _policy_lock:
        if len(_policies) > 10_000:  # bounded: one entry per (release folder, minute)
            _policies.clear()
        _policies[cache_key] = _Policy(query, exp)
    return query


def cloudfront_signer(
    hls_prefix: str, *, settings: Settings, now: float | None = None
) -> MediaSigner:
    base = f"https://{settings.cloudfront_domain.rstrip('/')}/{hls_prefix}/"
    exp = expiry(time.time() if now is None else now, settings.playback_url_ttl_seconds)
    query = cloudfront_query(base + "*", exp, settings=settings)

    def sign(rel_path: str) -> str:
        return f"{base}{quote(rel_path)}?{query}"

    return sign


def media_signer(
    session_id: str, hls_prefix: str, *, settings: Settings | None = None
) -> MediaSigner:
    settings = settings or get_settings()
    if settings.media_delivery is MediaDelivery.s3:
        return s3_signer(hls_prefix, settings=settings)
    if settings.media_delivery is MediaDelivery.cloudfront:
        return cloudfront_signer(hls_prefix, settings=settings)
    return api_signer(session_id, settings=settings)
