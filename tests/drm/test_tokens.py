"""Playback token hardening: only a token we signed, for this audience, unexpired, passes."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from core.errors import NotAuthenticated
from core.security import KeyRing, issue_token
from core.settings import reset_settings_cache
from drm.tokens import AUDIENCE, decode_playback_token, issue_playback_token, playback_keyring


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    reset_settings_cache()
    yield
    reset_settings_cache()


def good() -> str:
    return issue_playback_token(viewer_id="v1", ticket_id="t1", session_id="s1", device_id="d1")[0]


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def refused(token: str) -> str:
    with pytest.raises(NotAuthenticated) as caught:
        decode_playback_token(token)
    return caught.value.code


def claims(**extra: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": "pocketcinema",
        "sub": "v1",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "tid": "t1",
        "sid": "s1",
        "dev": "d1",
    } | extra


def test_a_good_token_carries_ticket_session_and_device() -> None:
    decoded = decode_playback_token(good())
    assert (decoded.ticket_id, decoded.session_id, decoded.device_id) == ("t1", "s1", "d1")


def test_expired_forged_and_unsigned_tokens_are_refused() -> None:
    ring = playback_keyring()
    kid = ring.signing_kid
    secret = ring.keys[kid]
    expired = jwt.encode(
        claims(exp=int(time.time()) - 60), secret, algorithm="HS256", headers={"kid": kid}
    )
    assert refused(expired) == "token_expired"
    forged = jwt.encode(claims(), "not-our-secret", algorithm="HS256", headers={"kid": kid})
    assert refused(forged) == "invalid_token"
    header, _payload, _ = good().split(".")
    tampered = f"{header}.{b64(claims(tid='someone-elses-ticket'))}.{good().split('.')[2]}"
    assert refused(tampered) == "invalid_token"
    alg_none = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64(claims())}."
    assert refused(alg_none) == "invalid_token"


def test_hs256_signed_with_a_public_key_is_refused() -> None:
    # The classic confusion attack: an HS256 token whose HMAC key is a public RSA key.
    public = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    import hashlib
    import hmac

    header = b64({"alg": "HS256", "typ": "JWT", "kid": playback_keyring().signing_kid})
    body = b64(claims())
    sig = hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest()
    token = f"{header}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    assert refused(token) == "invalid_token"
    rs256 = f"{b64({'alg': 'RS256', 'typ': 'JWT', 'kid': playback_keyring().signing_kid})}.{body}.x"
    assert refused(rs256) == "invalid_token"


def test_wrong_audience_unknown_kid_and_login_tokens_are_refused() -> None:
    ring = playback_keyring()
    kid = ring.signing_kid
    other_audience = jwt.encode(
        claims(aud="pocketcinema-api"), ring.keys[kid], algorithm="HS256", headers={"kid": kid}
    )
    assert refused(other_audience) == "invalid_token"
    unknown_kid = jwt.encode(
        claims(), ring.keys[kid], algorithm="HS256", headers={"kid": "rotated-away"}
    )
    assert refused(unknown_kid) == "invalid_token"
    from accounts.service import login_keyring

    login_token = issue_token(
        login_keyring(),
        subject="v1",
        audience="pocketcinema-api",
        ttl=__import__("datetime").timedelta(minutes=5),
    )
    assert refused(login_token) == "invalid_token"
    # And the other way round: a playback token is no login token.
    from core.security import decode_token

    with pytest.raises(NotAuthenticated):
        decode_token(login_keyring(), good(), audience="pocketcinema-api")
    assert login_keyring().keys != ring.keys
    assert isinstance(KeyRing.single("x", "playback"), KeyRing)


def test_a_remembered_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    import drm.tokens

    ring = playback_keyring()
    exp = int(time.time()) + 600
    token = jwt.encode(
        claims(exp=exp), ring.keys[ring.signing_kid], algorithm="HS256",
        headers={"kid": ring.signing_kid},
    )  # fmt: skip
    assert decode_playback_token(token).session_id == "s1"  # verified, then remembered
    assert token in drm.tokens._verified
    monkeypatch.setattr("time.time", lambda: exp + 1.0)
    monkeypatch.setattr("jose.jwt.timegm", lambda _: exp + 1, raising=False)
    assert refused(token) == "token_expired"


def test_a_remembered_token_is_not_accepted_under_another_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = good()
    assert decode_playback_token(token).session_id == "s1"
    monkeypatch.setenv("POCKETCINEMA_PLAYBACK_SECRET_KEY", "another-playback-secret-0123456789abc")
    reset_settings_cache()
    assert refused(token) == "invalid_token"
