"""Sign in with Apple and Google: ID tokens signed with RSA keys made here, verified against
a JWKS served over real HTTP on loopback (or read from a file)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jose import jwk, jwt

from accounts.identity import jwks_cache
from core.settings import reset_settings_cache
from tests.conftest import Configure
from tests.helpers import sign_up

APPLE_ISSUER = "https://appleid.apple.com"
GOOGLE_ISSUER = "https://accounts.google.com"
APP_ID = "dev.pocketcinema.app"


@dataclass
class Signer:
    kid: str
    private_pem: bytes = field(init=False)
    public_jwk: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_jwk = jwk.construct(public_pem, "RS256").to_dict() | {
            "kid": self.kid,
            "use": "sig",
        }

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": APPLE_ISSUER,
            "aud": APP_ID,
            "sub": "001234.apple-user",
            "email": "ana@privaterelay.appleid.com",
            "email_verified": "true",
            "iat": now,
            "exp": now + 600,
        } | overrides
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(
            claims, self.private_pem.decode(), algorithm="RS256", headers={"kid": self.kid}
        )


@dataclass
class JwksServer:
    url: str
    keys: list[dict[str, Any]]
    hits: list[str]


@pytest.fixture
def signer() -> Signer:
    return Signer(kid="key-2026")


@pytest.fixture
def jwks_server(signer: Signer) -> Iterator[JwksServer]:
    keys = [signer.public_jwk]
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = json.dumps({"keys": keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield JwksServer(f"http://127.0.0.1:{server.server_port}/keys", keys, hits)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def providers(configure: Configure, jwks_server: JwksServer) -> Iterator[JwksServer]:
    configure(
        apple_client_ids=f"{APP_ID},dev.pocketcinema.web",
        apple_jwks_url=jwks_server.url,
        google_client_ids="google-client-1.apps.example",
        google_jwks_url=jwks_server.url + "?google",
    )
    jwks_cache().clear()
    yield jwks_server
    jwks_cache().clear()


def apple(client: TestClient, token: str, **extra: Any) -> Any:
    return client.post("/v1/auth/apple", json={"id_token": token, **extra})


def test_sign_in_with_apple_creates_then_finds_the_account(
    client: TestClient, providers: JwksServer, signer: Signer
) -> None:
    first = apple(client, signer.token(), device_id="phone-1")
    assert first.status_code == 200, first.text
    assert (first.json()["created"], first.json()["device_id"]) == (True, "phone-1")
    again = apple(client, signer.token(email=None))  # Apple sends the email only sometimes
    assert (again.json()["created"], again.json()["user_id"]) == (False, first.json()["user_id"])
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {first.json()['access_token']}"})
    assert me.json()["email"] == "ana@privaterelay.appleid.com"
    assert providers.hits == ["/keys"]  # the key set was fetched once and cached


def test_sign_in_with_google(client: TestClient, providers: JwksServer, signer: Signer) -> None:
    token = signer.token(
        iss=GOOGLE_ISSUER, aud="google-client-1.apps.example", sub="1099", email_verified=True
    )
    response = client.post("/v1/auth/google", json={"id_token": token})
    assert response.status_code == 200, response.text
    # An Apple-issued token is not a Google token.
    apple_token = signer.token()
    refused = client.post("/v1/auth/google", json={"id_token": apple_token})
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_id_token")


def test_a_verified_email_links_to_the_existing_account(
    client: TestClient, providers: JwksServer, signer: Signer
) -> None:
    signup = sign_up(client, "ana@example.com")
    linked = apple(client, signer.token(email="ana@example.com"))
    assert linked.json()["user_id"] == signup["user_id"]
    # Unverified: a new account, never a takeover of the existing one.
    other = apple(
        client, signer.token(sub="other-sub", email="ana@example.com", email_verified="false")
    )
    assert other.json()["created"] is True
    assert other.json()["user_id"] != signup["user_id"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"aud": "some.other.app"}, "invalid_id_token"),
        ({"iss": "https://evil.example"}, "invalid_id_token"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "id_token_expired"),
        ({"sub": None}, "invalid_id_token"),
    ],
)
def test_bad_id_tokens_are_refused(
    client: TestClient,
    providers: JwksServer,
    signer: Signer,
    overrides: dict[str, Any],
    expected: str,
) -> None:
    response = apple(client, signer.token(**overrides))
    assert (response.status_code, response.json()["code"]) == (401, expected)


def test_forged_tokens_are_refused(
    client: TestClient, providers: JwksServer, signer: Signer
) -> None:
    stranger = Signer(kid=signer.kid)  # same kid, another key
    assert apple(client, stranger.token()).json()["code"] == "invalid_id_token"
    unknown_kid = Signer(kid="not-published")
    assert apple(client, unknown_kid.token()).json()["code"] == "invalid_id_token"
    # HS256 "signed" with the public key as the secret: the classic algorithm confusion.
    claims = jwt.get_unverified_claims(signer.token())
    confused = jwt.encode(
        claims, json.dumps(signer.public_jwk), algorithm="HS256", headers={"kid": signer.kid}
    )
    assert apple(client, confused).json()["code"] == "invalid_id_token"
    assert apple(client, "not.a.jwt").json()["code"] == "invalid_id_token"
    nonce = apple(client, signer.token(nonce="abc"), nonce="xyz")
    assert nonce.json()["code"] == "invalid_id_token"
    assert apple(client, signer.token(nonce="abc"), nonce="abc").status_code == 200


def test_jwks_from_a_file(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, signer: Signer
) -> None:
    path = tmp_path / "apple-jwks.json"
    path.write_text(json.dumps({"keys": [signer.public_jwk]}))
    monkeypatch.setenv("POCKETCINEMA_APPLE_CLIENT_IDS", APP_ID)
    monkeypatch.setenv("POCKETCINEMA_APPLE_JWKS_FILE", str(path))
    reset_settings_cache()
    jwks_cache().clear()
    try:
        assert apple(client, signer.token()).status_code == 200
    finally:
        monkeypatch.delenv("POCKETCINEMA_APPLE_CLIENT_IDS")
        monkeypatch.delenv("POCKETCINEMA_APPLE_JWKS_FILE")
        reset_settings_cache()
        jwks_cache().clear()


def test_an_unconfigured_provider_says_so(client: TestClient, signer: Signer) -> None:
    response = apple(client, signer.token())
    assert (response.status_code, response.json()["code"]) == (503, "provider_not_configured")


def test_an_unreachable_jwks_is_a_503(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, signer: Signer
) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("POCKETCINEMA_APPLE_CLIENT_IDS", APP_ID)
    monkeypatch.setenv("POCKETCINEMA_APPLE_JWKS_URL", f"http://127.0.0.1:{free_port()}/keys")
    reset_settings_cache()
    jwks_cache().clear()
    try:
        response = apple(client, signer.token())
        assert (response.status_code, response.json()["code"]) == (
            503,
            "identity_provider_unavailable",
        )
    finally:
        monkeypatch.delenv("POCKETCINEMA_APPLE_CLIENT_IDS")
        reset_settings_cache()
        jwks_cache().clear()
