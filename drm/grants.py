"""Playback grants: what one device may fetch of one release, for the next few seconds.

Every playback decision made against the database (session start, heartbeat, refresh)
issues a grant. Keys, playlists and media trust the grant alone, so they need no database
read and no cache of anything that can change; revocation (a refund, a closed window, a
stream taken by another device) takes effect when the current grant expires
(``playback_grant_seconds``, 60 by default), because the next decision refuses.

The format is small enough for a header and simple enough for a CDN edge function
(``infra/edge/grant-check.js`` verifies it with nothing but the shared secret)::

    <payload>.<mac>

``payload`` is base64url (no padding) of compact JSON; ``mac`` is base64url of the first
16 bytes of HMAC-SHA256 over ``"pcg1." + payload`` under ``playback_secret_key``. The
payload names the session, ticket, viewer, title, release (and its storage folder), the
licensed country, the device, the rendition folders media may come from, the key periods
and their key ids, the expiry in Unix seconds, and (``wm``, only when the release is
watermarked) the rendition folders whose segments the session gets in its own A/B
sequence.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from core.errors import Forbidden, NotAuthenticated
from core.settings import get_settings

VERSION = "pcg1"
MAC_BYTES = 16  # 128 bits: plenty against forgery for a token that lives a minute
MAX_LIFETIME_SECONDS = 3600  # above the longest playback_grant_seconds allowed (600)


@dataclass(frozen=True, slots=True)
class Grant:
    session_id: str
    ticket_id: str
    viewer_id: str
    title_id: str
    release_id: str
    hls_prefix: str  # the release's storage folder
    master: str  # the master playlist, relative to hls_prefix
    country: str  # the licensed country this session plays in
    device_id: str
    renditions: tuple[str, ...]  # folders under hls_prefix that media may come from
    key_periods: tuple[int, int]  # first and last key period this grant opens
    key_ids: tuple[str, ...]  # the key ids of those periods (lower-case hex)
    expires_at: int  # Unix seconds
    # Rendition folders whose segments come in two watermark variants (drm/watermark.py):
    # the session gets, per segment, the one its codeword names. Their ".b" folders are
    # listed in ``renditions`` too.
    marked: tuple[str, ...] = ()
    # Only every ``mark_every``-th segment of those folders carries a bit (the others are
    # variant A for everyone).
    mark_every: int = 1
    # When the ticket's rental clock runs out (Unix seconds), if it has started: DRM
    # licenses issued under this grant last no longer (drm/license.py).
    watch_until: int | None = None
    # The release's protection profile: under "cbcs" keys go out only in DRM licenses,
    # never as raw bytes from the key route.
    protection: str = "aes128"

    def allows_media(self, rel_path: str) -> bool:
        """``rel_path`` is one file directly inside one of the granted rendition folders:
        nothing else of the release (posters, other folders), nothing of another release."""
        folder, sep, name = rel_path.partition("/")
        return (
            bool(sep)
            and folder in self.renditions
            and name not in ("", ".", "..")
            and "/" not in name
            and "\\" not in name
        )

    def allows_key(self, key_id: str) -> bool:
        return key_id.lower() in self.key_ids


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> str:
    digest = hmac.digest(secret, f"{VERSION}.{payload}".encode("ascii"), "sha256")
    return _b64(digest[:MAC_BYTES])


def _secret() -> bytes:
    return get_settings().playback_secret_key.get_secret_value().encode()


def encode(grant: Grant, *, secret: bytes | None = None) -> str:
    body: dict[str, Any] = {
        "sid": grant.session_id,
        "tid": grant.ticket_id,
        "vid": grant.viewer_id,
        "tt": grant.title_id,
        "rel": grant.release_id,
        "pre": grant.hls_prefix,
        "mst": grant.master,
        "c": grant.country,
        "dev": grant.device_id,
        "ren": list(grant.renditions),
        "kp": list(grant.key_periods),
        "keys": list(grant.key_ids),
        "exp": grant.expires_at,
    }
    if grant.marked:
        body["wm"] = list(grant.marked)
    if grant.mark_every != 1:
        body["wme"] = grant.mark_every
    if grant.watch_until is not None:
        body["wu"] = grant.watch_until
    if grant.protection != "aes128":
        body["pr"] = grant.protection
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    key = secret or _secret()
    token = f"{payload}.{_mac(key, payload)}"
    # The requests that follow at once (a start's or refresh's playlists and keys) carry
    # this token: it is remembered as issued, read back from what was signed exactly as
    # verifying the token would read it, so its first use is not verified again.
    _remember((token, key), _grant_of(body))
    return token


class GrantExpired(NotAuthenticated):
    code = "grant_expired"


class InvalidGrant(NotAuthenticated):
    code = "invalid_grant"


# A player sends the same grant with every request for its whole life, and a token's
# content never changes: verified tokens are remembered (by token and secret; the expiry is
# still checked on every call). A plain dict read without a lock (one atomic lookup on the
# key route); writes and the eviction of the oldest tenth when it is full take the lock.
# An evicted token is simply verified again (14 us). Kept small on purpose: every remembered
# grant is an object the garbage collector walks in each full collection, and 50,000 of
# them made each one last 26-32 ms. A premiere issues a grant per heartbeat (about 670 a
# second at 20,000 viewers), so 4,096 hold the last six seconds of grants issued: the
# requests that follow an answer at once (a start's playlists and keys) find theirs. A
# player's next heartbeat, 30 s later, usually does not, and its grant is verified; the
# decisions (``grace_seconds`` > 0) do not remember a grant they verified, as it is about to
# be replaced by the one they issue.
_VERIFIED_MAX = 4_096
_verified: dict[tuple[str, bytes], Grant] = {}
_verified_lock = threading.Lock()


def _remember(key: tuple[str, bytes], grant: Grant) -> None:
    with _verified_lock:
        if len(_verified) >= _VERIFIED_MAX:
            for old in list(itertools.islice(_verified, _VERIFIED_MAX // 10)):
                del _verified[old]
        _verified[key] = grant


def decode(
    token: str, *, now: float | None = None, grace_seconds: float = 0.0, secret: bytes | None = None
) -> Grant:
    """The grant, if we signed it and it has not expired (``grace_seconds`` past expiry are
    accepted by the calls that go to the database anyway: heartbeat, refresh, stop)."""
    key = (token, secret or _secret())
    grant = _verified.get(key)
    if grant is None:
        grant = _verify(token, key[1])
        if not grace_seconds:
            _remember(key, grant)
    at = time.time() if now is None else now
    if grant.expires_at + grace_seconds <= at:
        raise GrantExpired("this playback grant has expired; refresh it (POST …/token)")
    if grant.expires_at > at + MAX_LIFETIME_SECONDS:  # we never issue one that long
        raise InvalidGrant("not a playback grant")
    return grant


def _verify(token: str, secret: bytes) -> Grant:
    payload, dot, mac = token.partition(".")
    if not dot or not payload or not hmac.compare_digest(mac, _mac(secret, payload)):
        raise InvalidGrant("this playback grant is not signed by us; start playback again")
    try:
        return _grant_of(json.loads(_unb64(payload)))
    except (ValueError, KeyError, TypeError, IndexError, OverflowError, binascii.Error):
        raise InvalidGrant("not a playback grant") from None


def _grant_of(body: dict[str, Any]) -> Grant:
    """The grant a signed payload says (types and bounds as :func:`decode` guarantees)."""
    kp = body["kp"]
    return Grant(
        session_id=str(body["sid"]),
        ticket_id=str(body["tid"]),
        viewer_id=str(body["vid"]),
        title_id=str(body["tt"]),
        release_id=str(body["rel"]),
        hls_prefix=str(body["pre"]),
        master=str(body["mst"]),
        country=str(body["c"]),
        device_id=str(body["dev"]),
        renditions=tuple(str(r) for r in body["ren"]),
        key_periods=(int(kp[0]), int(kp[1])),
        key_ids=tuple(str(k) for k in body["keys"]),
        expires_at=int(body["exp"]),
        marked=tuple(str(f) for f in body.get("wm", ())),
        mark_every=max(1, int(body.get("wme", 1))),
        watch_until=None if body.get("wu") is None else int(body["wu"]),
        protection=str(body.get("pr", "aes128")),
    )


class GrantSessionMismatch(NotAuthenticated):
    code = "grant_session_mismatch"


def require_session(grant: Grant, session_id: str) -> None:
    """A grant works only for the session it was issued for (not a neighbour's)."""
    if grant.session_id != session_id:
        raise GrantSessionMismatch("this playback grant belongs to another session")


class DeviceMismatch(Forbidden):
    code = "device_mismatch"


class DeviceRequired(Forbidden):
    code = "device_required"


def require_device(grant: Grant, device_id: str | None, *, required: bool) -> None:
    """The grant names one device; a request that says which device it comes from must be
    that one, and key requests must say (``X-Device-Id``)."""
    if device_id is None:
        if required:
            raise DeviceRequired("send this device's id in the X-Device-Id header")
        return
    if device_id.strip() != grant.device_id:
        raise DeviceMismatch("this playback grant belongs to another device")
