"""Sign in with Apple and with Google: verifying their ID tokens against their JWKS.

An ID token is an RS256 JWT signed by the provider. We accept one only if: the header says
RS256 (never ``none`` or an HMAC algorithm that would let the public key act as a secret),
its ``kid`` is in the provider's key set, the signature verifies, ``iss`` is the provider,
``aud`` is one of *our* client ids (a token minted for another app is refused), and it has
not expired. Key sets are cached for ``jwks_cache_seconds``; an unknown ``kid`` triggers one
early refetch (providers rotate keys) but at most every ``MIN_REFETCH_SECONDS``, so a flood
of forged kids cannot turn us into a traffic generator against the provider.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
from jose import ExpiredSignatureError, JWTError, jwt

from core.errors import NotAuthenticated, ServiceUnavailable
from core.settings import Settings

ALGORITHM = "RS256"
MIN_REFETCH_SECONDS = 30.0


class Provider(StrEnum):
    apple = "apple"
    google = "google"


@dataclass(frozen=True)
class ProviderConfig:
    provider: Provider
    audiences: tuple[str, ...]
    issuers: tuple[str, ...]
    jwks_url: str
    jwks_file: Path | None

    @property
    def source(self) -> str:
        return str(self.jwks_file) if self.jwks_file else self.jwks_url


def provider_config(provider: Provider, settings: Settings) -> ProviderConfig:
    if provider is Provider.apple:
        return ProviderConfig(
            provider,
            tuple(settings.apple_client_ids),
            (settings.apple_issuer,),
            settings.apple_jwks_url,
            settings.apple_jwks_file,
        )
    return ProviderConfig(
        provider,
        tuple(settings.google_client_ids),
        tuple(settings.google_issuers),
        settings.google_jwks_url,
        settings.google_jwks_file,
    )


@dataclass(frozen=True)
class ExternalClaims:
    provider: Provider
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


class JwksCache:
    """Key sets by source (URL or file), each kept for ``ttl`` seconds. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def key(self, config: ProviderConfig, kid: str, ttl: float) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            fetched_at, keys = self._entries.get(config.source, (-1e18, {}))
            stale = now - fetched_at > ttl
            may_refetch = kid not in keys and now - fetched_at > MIN_REFETCH_SECONDS
            if stale or may_refetch:
                keys = _load_jwks(config)
                self._entries[config.source] = (now, keys)
            return keys.get(kid)


_cache = JwksCache()


def jwks_cache() -> JwksCache:
    return _cache


def _load_jwks(config: ProviderConfig) -> dict[str, dict[str, Any]]:
    try:
        if config.jwks_file is not None:
            document = json.loads(config.jwks_file.read_text())
        else:
            response = httpx.get(config.jwks_url, timeout=5.0)
            response.raise_for_status()
            document = response.json()
    except (OSError, ValueError, httpx.HTTPError) as exc:
        raise ServiceUnavailable(
            f"cannot load {config.provider.value}'s signing keys",
            code="identity_provider_unavailable",
        ) from exc
    keys = document.get("keys", []) if isinstance(document, dict) else []
    return {
        str(k["kid"]): k
        for k in keys
        if isinstance(k, dict) and "kid" in k and k.get("kty") == "RSA"
    }


def _invalid(detail: str) -> NotAuthenticated:
    return NotAuthenticated(detail, code="invalid_id_token")


def verify_id_token(
    provider: Provider, token: str, settings: Settings, nonce: str | None = None
) -> ExternalClaims:
    config = provider_config(provider, settings)
    if not config.audiences:
        raise ServiceUnavailable(
            f"sign in with {provider.value} is not configured", code="provider_not_configured"
        )
    try:
        header = jwt.get_unverified_header(token)
    except JWTError:
        raise _invalid("malformed ID token") from None
    if header.get("alg") != ALGORITHM:
        raise _invalid("ID token algorithm not accepted")
    key = jwks_cache().key(config, str(header.get("kid", "")), settings.jwks_cache_seconds)
    if key is None:
        raise _invalid("ID token signed by an unknown key")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=list(config.issuers),
            # The audience is checked below against the list of our client ids (python-jose
            # takes only one); decoding never runs without that check.
            options={"verify_aud": False, "require_exp": True, "require_iat": True},
        )
    except ExpiredSignatureError:
        raise NotAuthenticated("ID token expired", code="id_token_expired") from None
    except JWTError:
        raise _invalid("invalid ID token") from None
    audiences = claims.get("aud")
    token_audiences = [audiences] if isinstance(audiences, str) else list(audiences or [])
    if not set(token_audiences) & set(config.audiences):
        raise _invalid("ID token was issued for another app")
    if nonce is not None and claims.get("nonce") != nonce:
        raise _invalid("ID token nonce does not match")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise _invalid("ID token has no subject")
    email = claims.get("email")
    # Apple sends email_verified as the string "true"; Google as a boolean.
    verified = claims.get("email_verified") in (True, "true")
    return ExternalClaims(
        provider=provider,
        subject=subject,
        email=email.strip().lower() if isinstance(email, str) and email else None,
        email_verified=verified,
        name=claims.get("name") if isinstance(claims.get("name"), str) else None,
    )
