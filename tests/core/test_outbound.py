"""The guarded outbound client: every SSRF bypass form refused, at save time and send time,
against real loopback receivers that record whether anything reached them."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from accounts.models import Role, Studio
from core import outbound
from core.db import unit_of_work
from core.settings import Mode, Settings
from tests.helpers import auth_header, create_studio, create_user
from transcoding import notify


class Receiver:
    """A real HTTP server on a loopback address; answers with what the test sets."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.hits: list[dict[str, str]] = []
        self.status = 204
        self.location: str | None = None
        self.body = b""
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.hits.append(dict(self.headers))
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def settings(allowed: Sequence[str] = (), mode: Mode = Mode.test) -> Settings:
    return Settings(mode=mode, outbound_allowed_networks=list(allowed))


BYPASSES = [
    "http://169.254.169.254/latest/meta-data/iam/",  # cloud metadata
    "http://127.0.0.1/",
    "http://[::1]/",  # IPv6 loopback
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/",  # mapped metadata address in hex
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 around the metadata address
    "http://0x7f000001/",  # hex
    "http://2130706433/",  # decimal
    "http://0177.0.0.1/",  # octal
    "http://127.1/",  # short form
    "http://0/",  # 0.0.0.0
    "http://localhost:6379/",
    "http://LOCALHOST./",
    "http://redis.localhost/",
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://[fe80::1]/",  # link-local
    "http://[fc00::1]/",  # unique local
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://user:secret@hooks.example.com/",  # credentials
    "http://hooks.example.com@127.0.0.1/",  # credentials hiding the real host
    "ftp://hooks.example.com/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "http:///no-host",
]


@pytest.mark.parametrize("url", BYPASSES)
def test_every_bypass_form_is_refused_without_touching_the_network(url: str) -> None:
    with pytest.raises(outbound.UnsafeUrl):
        outbound.check_url(url, settings())


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/pocketcinema", "http://93.184.216.34:8080/x?y=1"]
)
def test_public_urls_pass(url: str) -> None:
    target = outbound.check_url(url, settings())
    assert target.host in url


def test_production_takes_https_only() -> None:
    prod = Settings.model_construct(
        **{**settings().__dict__, "mode": Mode.production, "outbound_allowed_networks": []}
    )
    with pytest.raises(outbound.UnsafeUrl, match="https"):
        outbound.check_url("http://hooks.example.com/", prod)
    assert outbound.check_url("https://hooks.example.com/", prod).port == 443


def test_the_allow_list_admits_an_on_premises_receiver() -> None:
    assert outbound.check_url("http://10.1.2.3/x", settings(["10.0.0.0/8"])).host == "10.1.2.3"
    with pytest.raises(outbound.UnsafeUrl):
        outbound.check_url("http://10.1.2.3/x", settings(["192.168.0.0/16"]))


def test_dns_answering_a_private_address_is_refused_at_send_time(receiver: Receiver) -> None:
    def rebinding(host: str, port: int) -> Sequence[str]:
        return ["127.0.0.1"]

    with pytest.raises(outbound.OutboundRefused, match="loopback"):
        outbound.send(
            "POST",
            f"http://hooks.example.com:{receiver.port}/hook",
            resolve=rebinding,
            settings=settings(),
        )
    assert receiver.hits == []


def test_one_private_answer_among_public_ones_is_enough_to_refuse() -> None:
    def mixed(host: str, port: int) -> Sequence[str]:
        return ["93.184.216.34", "10.0.0.7"]

    with pytest.raises(outbound.OutboundRefused, match="private"):
        outbound.send("POST", "http://hooks.example.com/", resolve=mixed, settings=settings())


def test_connects_to_the_checked_address_and_keeps_the_host_name(receiver: Receiver) -> None:
    # receiver.test exists in no DNS: the request can only arrive if the client connected to
    # the address the resolver answered (and checked) once, with the name kept in Host.
    calls: list[str] = []

    def resolver(host: str, port: int) -> Sequence[str]:
        calls.append(host)
        return ["127.0.0.1"]

    reply = outbound.send(
        "POST",
        f"http://receiver.test:{receiver.port}/hook",
        content=b"{}",
        resolve=resolver,
        settings=settings(["127.0.0.1/32"]),
    )
    assert reply.status == 204
    assert calls == ["receiver.test"]
    assert receiver.hits[0]["Host"] == f"receiver.test:{receiver.port}"


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (and nothing else), as a private CA would."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_keeps_the_name_for_sni_and_the_certificate_check(tmp_path: Path) -> None:
    cert_file, key_file = _certificate(tmp_path, "hooks.studio.test")
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert_file, key_file)
    names: list[str | None] = []
    server_side.sni_callback = lambda sock, name, ctx: names.append(name)
    receiver = Receiver(tls=server_side)
    trust = ssl.create_default_context(cafile=str(cert_file))

    def resolver(host: str, port: int) -> Sequence[str]:
        return ["127.0.0.1"]

    reply = outbound.send(
        "POST",
        f"https://hooks.studio.test:{receiver.port}/hook",
        resolve=resolver,
        settings=settings(["127.0.0.1/32"]),
        verify=trust,
    )
    assert reply.status == 204
    assert names == ["hooks.studio.test"]
    assert receiver.hits[0]["Host"] == f"hooks.studio.test:{receiver.port}"
    # The certificate is checked against the name, not the address we connected to.
    try:
        with pytest.raises(httpx.ConnectError):
            outbound.send(
                "POST",
                f"https://other.studio.test:{receiver.port}/hook",
                resolve=resolver,
                settings=settings(["127.0.0.1/32"]),
                verify=trust,
            )
    finally:
        receiver.close()


def test_a_redirect_to_a_private_address_is_not_followed(receiver: Receiver) -> None:
    inner = Receiver("127.0.0.2")  # stands for the private target behind the redirect
    try:
        receiver.status = 302
        receiver.location = inner.url
        with pytest.raises(outbound.OutboundRefused, match="redirect"):
            outbound.send("POST", receiver.url, settings=settings(["127.0.0.1/32"]))
        assert len(receiver.hits) == 1
        assert inner.hits == []
    finally:
        inner.close()


def test_the_answer_is_read_only_up_to_the_cap(receiver: Receiver) -> None:
    receiver.status = 200
    receiver.body = b"x" * (1024 * 1024)
    capped = Settings(outbound_allowed_networks=["127.0.0.1/32"], outbound_max_response_bytes=4096)
    reply = outbound.send("POST", receiver.url, settings=capped)
    assert reply.status == 200
    assert len(reply.body) == 4096


def test_a_slow_receiver_times_out(receiver: Receiver) -> None:
    receiver.delay = 2.0
    with pytest.raises(httpx.TimeoutException):
        outbound.send("POST", receiver.url, timeout=0.3, settings=settings(["127.0.0.1/32"]))


# --- where URLs come in, and where the worker sends -----------------------------------------


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest", "http://2130706433:6379/", "http://u:p@x.example/"]
)
def test_a_studio_cannot_save_a_private_webhook_url(client: TestClient, url: str) -> None:
    studio = create_studio("Harbour Pictures")
    headers = auth_header(create_user("ops@harbour.example", Role.studio, studio.id))
    response = client.put("/v1/studio/webhook", headers=headers, json={"url": url})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unsafe_url"
    assert client.get("/v1/studio/webhook", headers=headers).json()["url"] is None


def test_an_admin_cannot_create_a_studio_with_a_private_webhook_url(client: TestClient) -> None:
    admin = create_user("root@pocketcinema.example", Role.admin)
    response = client.post(
        "/v1/admin/studios",
        headers=auth_header(admin),
        json={"name": "Mirage", "webhook_url": "http://[::ffff:169.254.169.254]/"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unsafe_url"


def test_the_worker_refuses_a_stored_private_url_and_sends_nothing(
    db: None, receiver: Receiver
) -> None:
    # A URL saved before the check existed (or written straight into the database) is
    # still refused when the worker sends.
    from tests.helpers import create_title

    studio = create_studio("Old Reel")
    title = create_title(studio.id)
    with unit_of_work() as session:
        session.get_one(Studio, studio.id).webhook_url = receiver.url
        from catalog.models import Release

        release = Release(title_id=title.id, studio_id=studio.id)
        session.add(release)
        session.flush()
        release_id = release.id
    with unit_of_work() as session, pytest.raises(outbound.UnsafeUrl):
        notify.deliver(session, release_id, "release.ready")
    assert receiver.hits == []
