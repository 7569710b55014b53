"""Password hashing and signed tokens.

Tokens are JWTs signed with HS256 under a key chosen by ``kid``. Every decode pins the
algorithm list and the audience, so an ``alg=none`` token, a token for another audience
(a playback token offered as a login token) or one signed by an unknown key is refused.
Login and playback tokens use different keys *and* audiences.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from jose import ExpiredSignatureError, JWTError, jwt

from core.db import new_id, utcnow
from core.errors import NotAuthenticated
from core.settings import PasswordHashCost, get_settings

ALGORITHM = "HS256"
ISSUER = "pocketcinema"


@lru_cache(maxsize=4)
def _hasher(cost: PasswordHashCost) -> PasswordHasher:
    return PasswordHasher(
        time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism
    )


def password_hasher() -> PasswordHasher:
    """argon2id with the settings' cost (cheap only in test mode, see core/settings.py)."""
    return _hasher(get_settings().password_hash)


def hash_password(password: str) -> str:
    return password_hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    # The hash carries its own parameters; the hasher's cost only matters for new hashes.
    try:
        return password_hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class KeyRing:
    """Signing keys by ``kid``; the first one signs, all of them verify (for rotation)."""

    keys: Mapping[str, str]

    @classmethod
    def single(cls, secret: str, purpose: str) -> KeyRing:
        # The kid is a short fingerprint, so rotating the secret changes it automatically.
        kid = hashlib.sha256(f"{purpose}:{secret}".encode()).hexdigest()[:12]
        return cls({kid: secret})

    @property
    def signing_kid(self) -> str:
        return next(iter(self.keys))


def issue_token(
    ring: KeyRing,
    *,
    subject: str,
    audience: str,
    ttl: timedelta,
    claims: Mapping[str, Any] | None = None,
) -> str:
    now = utcnow()
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "sub": subject,
        "aud": audience,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()) - 5,
        "exp": int((now + ttl).timestamp()),
        "jti": new_id(),
        **(claims or {}),
    }
    kid = ring.signing_kid
    return jwt.encode(payload, ring.keys[kid], algorithm=ALGORITHM, headers={"kid": kid})


def decode_token(ring: KeyRing, token: str, *, audience: str) -> dict[str, Any]:
    """Verify signature, algorithm, audience, issuer and expiry; raise NotAuthenticated."""
    try:
        header = jwt.get_unverified_header(token)
    except JWTError:
        raise NotAuthenticated("malformed token", code="invalid_token") from None
    if header.get("alg") != ALGORITHM:
        raise NotAuthenticated("token algorithm not accepted", code="invalid_token")
    secret = ring.keys.get(str(header.get("kid", "")))
    if secret is None:
        raise NotAuthenticated("token signed by an unknown key", code="invalid_token")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            options={"require_exp": True, "require_aud": True, "require_sub": True},
        )
    except ExpiredSignatureError:
        raise NotAuthenticated("token expired", code="token_expired") from None
    except JWTError:
        raise NotAuthenticated("invalid token", code="invalid_token") from None
    return claims


def hmac_sign(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()
