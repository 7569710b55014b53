"""The app stores on loopback, for tests: what Apple and Google sign, and HTTP servers that
speak their documented formats, so the real client libraries run over real HTTP.

* Apple: a certificate chain the tests make (root CA, intermediate with Apple's
  intermediate marker OID, leaf with Apple's leaf marker OID), JWS signed ES256 with the
  chain in ``x5c`` the way the App Store signs transactions and notifications, and the App
  Store Server API's "Send Consumption Information" (PUT /inApps/v2/transactions/consumption/
  {transactionId}) checking the ES256 bearer token made from our API key.
* Google: the OAuth 2.0 token endpoint (JWT-bearer grant, the assertion's RS256 signature
  checked against the service account's key), androidpublisher v3 purchases.products.get and
  :consume and purchases.voidedpurchases.list (bearer token checked), and the certificates
  endpoint Pub/Sub's OIDC push tokens are verified against; tokens are signed RS256 here.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

APPLE_LEAF_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.11.1")
APPLE_INTERMEDIATE_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.2.1")
BUNDLE_ID = "dev.pocketcinema.app"
APP_APPLE_ID = 1234567890
PACKAGE_NAME = "dev.pocketcinema.android"
PUBSUB_AUDIENCE = "https://cinema.example.com/v1/webhooks/google-play"
PUBSUB_SENDER = "rtdn-push@pocketcinema-test.iam.gserviceaccount.com"
ACCESS_TOKEN = "ya29.test-access-token"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    marker: x509.ObjectIdentifier | None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=365))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if marker is not None:
        # Apple marks its intermediate and leaf certificates with these extensions (an ASN.1
        # NULL); the verifier refuses a chain without them.
        builder = builder.add_extension(x509.UnrecognizedExtension(marker, b"\x05\x00"), False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class AppleChain:
    """A root CA, an intermediate and a leaf, like Apple's; JWS signed by the leaf."""

    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls, name: str = "Test Apple") -> AppleChain:
        root_key = ec.generate_private_key(ec.SECP256R1())
        mid_key = ec.generate_private_key(ec.SECP256R1())
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        root = _cert(f"{name} Root CA", root_key, f"{name} Root CA", root_key, ca=True, marker=None)
        mid = _cert(
            f"{name} WWDR",
            mid_key,
            f"{name} Root CA",
            root_key,
            ca=True,
            marker=APPLE_INTERMEDIATE_OID,
        )
        leaf = _cert(
            f"{name} StoreKit", leaf_key, f"{name} WWDR", mid_key, ca=False, marker=APPLE_LEAF_OID
        )
        return cls(root, mid, leaf, leaf_key)

    def root_der(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.DER)

    def sign(self, payload: dict[str, Any]) -> str:
        x5c = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
            for c in (self.leaf, self.intermediate, self.root)
        ]
        return jwt.encode(payload, self.leaf_key, algorithm="ES256", headers={"x5c": x5c})


def now_ms() -> int:
    return int(time.time() * 1000)


def apple_transaction(
    transaction_id: str,
    *,
    product_id: str = "film.the_film.us",
    price_milli: int = 12990,
    currency: str = "USD",
    storefront: str = "USA",
    bundle_id: str = BUNDLE_ID,
    environment: str = "Sandbox",
    revoked_ms: int | None = None,
    quantity: int = 1,
) -> dict[str, Any]:
    """A JWSTransactionDecodedPayload of a consumable, as StoreKit 2 reports it."""
    at = now_ms()
    payload: dict[str, Any] = {
        "transactionId": transaction_id,
        "originalTransactionId": transaction_id,
        "bundleId": bundle_id,
        "productId": product_id,
        "purchaseDate": at - 1000,
        "originalPurchaseDate": at - 1000,
        "quantity": quantity,
        "type": "Consumable",
        "inAppOwnershipType": "PURCHASED",
        "signedDate": at,
        "environment": environment,
        "transactionReason": "PURCHASE",
        "storefront": storefront,
        "storefrontId": "143441",
        "price": price_milli,
        "currency": currency,
    }
    if revoked_ms is not None:
        payload |= {"revocationDate": revoked_ms, "revocationReason": 0}
    return payload


def apple_notification(
    chain: AppleChain,
    notification_type: str,
    signed_transaction: str,
    *,
    notification_id: str | None = None,
    bundle_id: str = BUNDLE_ID,
    environment: str = "Sandbox",
    signed_ms: int | None = None,
    consumption_reason: str | None = None,
) -> bytes:
    """An App Store Server Notification V2 body: {"signedPayload": JWS}."""
    data: dict[str, Any] = {
        "appAppleId": APP_APPLE_ID,
        "bundleId": bundle_id,
        "bundleVersion": "1",
        "environment": environment,
        "signedTransactionInfo": signed_transaction,
        "status": 1,
    }
    if consumption_reason:
        data["consumptionRequestReason"] = consumption_reason
    payload = {
        "notificationType": notification_type,
        "notificationUUID": notification_id or str(uuid.uuid4()),
        "data": data,
        "version": "2.0",
        "signedDate": signed_ms if signed_ms is not None else now_ms(),
    }
    return json.dumps({"signedPayload": chain.sign(payload)}).encode()


# --- keys the tests write to files ---------------------------------------------------------


@dataclass
class Keys:
    apple_api_key: ec.EllipticCurvePrivateKey  # the App Store Server API's .p8 key
    service_account_key: rsa.RSAPrivateKey  # the Play service account's key
    pubsub_key: rsa.RSAPrivateKey  # Google's key that signs Pub/Sub push tokens
    pubsub_cert_pem: str
    pubsub_kid: str = "pubsub-kid-1"

    @classmethod
    def make(cls) -> Keys:
        pubsub_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("Google Pub/Sub test"))
            .issuer_name(_name("Google Pub/Sub test"))
            .public_key(pubsub_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(pubsub_key, hashes.SHA256())
        )
        return cls(
            apple_api_key=ec.generate_private_key(ec.SECP256R1()),
            service_account_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
            pubsub_key=pubsub_key,
            pubsub_cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        )

    def write(self, folder: Path, token_uri: str) -> tuple[Path, Path]:
        """The .p8 file and the service-account JSON file, as the stores hand them out."""
        p8 = folder / "AuthKey_TESTKEY01.p8"
        p8.write_bytes(
            self.apple_api_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        account = folder / "play-service-account.json"
        pem = self.service_account_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        account.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "pocketcinema-test",
                    "private_key_id": "sa-key-1",
                    "private_key": pem,
                    "client_email": "publisher@pocketcinema-test.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": token_uri,
                }
            )
        )
        return p8, account

    def pubsub_token(self, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": "https://accounts.google.com",
            "aud": PUBSUB_AUDIENCE,
            "email": PUBSUB_SENDER,
            "email_verified": True,
            "sub": "1234",
            "iat": now,
            "exp": now + 3600,
        } | claims
        return jwt.encode(
            body, self.pubsub_key, algorithm="RS256", headers={"kid": self.pubsub_kid}
        )


def pubsub_push(notification: dict[str, Any], message_id: str | None = None) -> bytes:
    """A Pub/Sub push request body carrying a real-time developer notification."""
    data = base64.b64encode(json.dumps(notification).encode()).decode()
    mid = message_id or str(uuid.uuid4().int)[:16]
    return json.dumps(
        {
            "message": {
                "data": data,
                "messageId": mid,
                "message_id": mid,
                "publishTime": datetime.now(UTC).isoformat(),
            },
            "subscription": "projects/pocketcinema-test/subscriptions/play-rtdn",
        }
    ).encode()


def voided_notification(order_id: str, token: str, package: str = PACKAGE_NAME) -> dict[str, Any]:
    return {
        "version": "1.0",
        "packageName": package,
        "eventTimeMillis": str(now_ms()),
        "voidedPurchaseNotification": {
            "purchaseToken": token,
            "orderId": order_id,
            "productType": 2,
            "refundType": 1,
        },
    }


# --- the HTTP side ----------------------------------------------------------------------------


@dataclass
class FakeStores:
    keys: Keys
    # purchase token -> the ProductPurchase resource androidpublisher returns
    purchases: dict[str, dict[str, Any]] = field(default_factory=dict)
    voided: list[dict[str, Any]] = field(default_factory=list)
    consumed: list[str] = field(default_factory=list)
    consumption: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.purchases.clear()
            self.voided.clear()
            self.consumed.clear()
            self.consumption.clear()
            self.requests.clear()

    def add_google_purchase(
        self,
        token: str,
        order_id: str,
        *,
        product_id: str = "film.the_film",
        region: str = "US",
        state: int = 0,
        purchase_type: int | None = None,
    ) -> None:
        resource: dict[str, Any] = {
            "kind": "androidpublisher#productPurchase",
            "purchaseTimeMillis": str(now_ms() - 1000),
            "purchaseState": state,
            "consumptionState": 0,
            "orderId": order_id,
            "acknowledgementState": 0,
            "productId": product_id,
            "quantity": 1,
            "regionCode": region,
        }
        if purchase_type is not None:
            resource["purchaseType"] = purchase_type
        self.purchases[token] = resource

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for m, p in self.requests if m == method and re.search(pattern, p))

    # Answers: (status, JSON body)
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path))
        if method == "POST" and path == "/token":
            return self._token(body)
        if method == "GET" and path == "/oauth2/v1/certs":
            return 200, {self.keys.pubsub_kid: self.keys.pubsub_cert_pem}
        if path.startswith("/inApps/"):
            return self._apple(method, path, headers, body)
        if path.startswith("/androidpublisher/"):
            if headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
                return 401, {"error": {"code": 401, "message": "Request had invalid credentials"}}
            return self._android(method, path, query)
        return 404, {"error": "not found"}

    def _token(self, body: bytes) -> tuple[int, Any]:
        form = parse_qs(body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return 400, {"error": "unsupported_grant_type"}
        try:
            jwt.decode(
                form["assertion"][0],
                self.keys.service_account_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False},
            )
        except (KeyError, jwt.PyJWTError):
            return 400, {"error": "invalid_grant"}
        return 200, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}

    def _apple(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        auth = str(headers.get("Authorization") or "")
        try:
            claims = jwt.decode(
                auth.removeprefix("Bearer "),
                self.keys.apple_api_key.public_key(),
                algorithms=["ES256"],
                audience="appstoreconnect-v1",
            )
        except jwt.PyJWTError:
            return 401, None
        if claims.get("bid") != BUNDLE_ID:
            return 401, None
        found = re.fullmatch(r"/inApps/v2/transactions/consumption/([^/]+)", path)
        if method == "PUT" and found:
            with self.lock:
                self.consumption.append((found.group(1), json.loads(body)))
            return 202, None
        return 404, {"errorCode": 4040010, "errorMessage": "Transaction id not found."}

    def _android(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        prefix = f"/androidpublisher/v3/applications/{PACKAGE_NAME}/purchases"
        products = re.fullmatch(prefix + r"/products/([^/]+)/tokens/([^/:]+)(:consume)?", path)
        if products:
            product_id, token, consume = products.groups()
            with self.lock:
                found = self.purchases.get(token)
            if found is None or found["productId"] != product_id:
                return 404, {"error": {"code": 404, "message": "The purchase token was not found."}}
            if consume and method == "POST":
                with self.lock:
                    self.consumed.append(token)
                    found["consumptionState"] = 1
                return 204, None
            if method == "GET":
                return 200, found
        if method == "GET" and path == prefix + "/voidedpurchases":
            start = int(query.get("startTime", ["0"])[0])
            items = [v for v in self.voided if int(v["voidedTimeMillis"]) >= start]
            return 200, {"voidedPurchases": items}
        return 404, {"error": {"code": 404, "message": "not found"}}


@contextmanager
def running(keys: Keys) -> Iterator[tuple[FakeStores, str]]:
    fake = FakeStores(keys)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            status, answer = fake.handle(
                self.command, url.path, parse_qs(url.query), self.headers, body
            )
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
