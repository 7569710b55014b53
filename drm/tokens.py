"""Playback tokens: short-lived JWTs that let one device play one ticket in one session.

They are signed with ``playback_secret_key`` for the audience ``playback``; login tokens use
another key *and* another audience, so neither can stand in for the other. Decoding goes
through :func:`core.security.decode_token`, which pins the algorithm, the audience, the
issuer and the ``kid`` (alg=none, an HS256 token "signed" with a public key, a token from an
unknown key: all refused before any claim is read).
"""

from __future__ import annotations

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
    return KeyRing.single(get_settings().playback_secret_key.get_secret_value(), "playback")


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
    claims = decode_token(playback_keyring(), token, audience=AUDIENCE)
    try:
        return PlaybackClaims(
            viewer_id=str(claims["sub"]),
            ticket_id=str(claims["tid"]),
            session_id=str(claims["sid"]),
            device_id=str(claims["dev"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except (KeyError, TypeError, ValueError):
        raise NotAuthenticated("not a playback token", code="invalid_token") from None


def require_session(claims: PlaybackClaims, session_id: str) -> None:
    """A token works only for the session it was issued for (not a neighbour's)."""
    if claims.session_id != session_id:
        raise NotAuthenticated(
            "this playback token belongs to another session", code="token_session_mismatch"
        )
