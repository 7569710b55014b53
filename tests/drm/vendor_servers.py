"""Loopback license servers that speak each vendor's documented request and response.

Each checks what the real one checks of us (the Widevine request signature, the PlayReady
SOAP action and envelope, the entitlement's signature and audience) and answers in the
vendor's format with a license derived from the challenge, so a test can tell that the
player got the answer to its own challenge. Every request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree as SafeElementTree
from jose import jwt

WIDEVINE_KEY = bytes(range(32))
WIDEVINE_IV = bytes(range(16, 32))
WIDEVINE_PROVIDER = "pocketcinema-test"
PLAYREADY_SECRET = "playready-entitlement-secret-for-tests-0123456789"
FAIRPLAY_SECRET = "fairplay-entitlement-secret-for-tests-0123456789"
SOAP_ACTION = '"http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense"'


def license_for(challenge: bytes) -> bytes:
    return b"LICENSE:" + hashlib.sha256(challenge).digest()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    decoded: dict[str, Any] = field(default_factory=dict)


@dataclass
class VendorServers:
    base_url: str
    received: list[Received]

    def of(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


def _widevine(body: bytes, seen: Received) -> tuple[int, str, bytes]:
    outer = json.loads(body)
    message = base64.b64decode(outer["request"])
    padder = padding.PKCS7(128).padder()
    digest = padder.update(hashlib.sha1(message).digest()) + padder.finalize()  # noqa: S324
    encryptor = Cipher(algorithms.AES(WIDEVINE_KEY), modes.CBC(WIDEVINE_IV)).encryptor()
    expected = encryptor.update(digest) + encryptor.finalize()
    if outer["signer"] != WIDEVINE_PROVIDER or base64.b64decode(outer["signature"]) != expected:
        return 200, "application/json", json.dumps({"status": "SIGNATURE_FAILED"}).encode()
    inner = json.loads(message)
    seen.decoded = inner
    challenge = base64.b64decode(inner["payload"])
    answer = {"status": "OK", "license": base64.b64encode(license_for(challenge)).decode()}
    return 200, "application/json", json.dumps(answer).encode()


def _entitlement(headers: dict[str, str], secret: str, seen: Received) -> bool:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme != "Bearer":
        return False
    try:
        seen.decoded = jwt.decode(
            token, secret, algorithms=["HS256"], audience="drm-license-server"
        )
    except Exception:
        return False
    return True


def _playready(body: bytes, headers: dict[str, str], seen: Received) -> tuple[int, str, bytes]:
    if headers.get("soapaction") != SOAP_ACTION or not _entitlement(
        headers, PLAYREADY_SECRET, seen
    ):
        return 403, "text/plain", b"forbidden"
    root = SafeElementTree.fromstring(body, forbid_dtd=True)
    assert root.tag.endswith("}Envelope")
    answer = (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope '
        'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '<AcquireLicenseResponse xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols">'
        "<AcquireLicenseResult><Response><LicenseResponse><Licenses><License>"
        f"{base64.b64encode(license_for(body)).decode()}"
        "</License></Licenses></LicenseResponse></Response></AcquireLicenseResult>"
        "</AcquireLicenseResponse></soap:Body></soap:Envelope>"
    )
    return 200, "text/xml; charset=utf-8", answer.encode()


def _fairplay(body: bytes, headers: dict[str, str], seen: Received) -> tuple[int, str, bytes]:
    if not _entitlement(headers, FAIRPLAY_SECRET, seen):
        return 403, "text/plain", b"forbidden"
    request = json.loads(body)
    seen.decoded["asset_id"] = request["asset_id"]
    spc = base64.b64decode(request["spc"])
    return (
        200,
        "application/json",
        json.dumps({"ckc": base64.b64encode(license_for(spc)).decode()}).encode(),
    )


@contextmanager
def vendor_servers() -> Iterator[VendorServers]:
    received: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen = Received(self.path, headers, body)
            received.append(seen)
            if self.path == "/widevine":
                status, kind, answer = _widevine(body, seen)
            elif self.path == "/playready":
                status, kind, answer = _playready(body, headers, seen)
            elif self.path == "/fairplay":
                status, kind, answer = _fairplay(body, headers, seen)
            else:
                status, kind, answer = 404, "text/plain", b"no"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield VendorServers(f"http://127.0.0.1:{server.server_address[1]}", received)
    finally:
        server.shutdown()
        server.server_close()
